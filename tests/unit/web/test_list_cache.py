"""The bounded memo behind the list memos, series entries, and the list body assembled
from item bodies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from calsync.domain.models import EventTime
from calsync.store.event_queries import SeriesOutline
from calsync.web.json_body import json_bytes, list_body
from calsync.web.list_cache import SERIES_WINDOWS, BoundedMemo, SeriesEntry, Window


def test_an_entry_used_since_the_last_turn_of_generations_stays() -> None:
    memo: BoundedMemo[bytes] = BoundedMemo(16, len)  # generations of 8 bytes
    memo.put_many([("a", b"aaaa"), ("b", b"bbbb")])  # young: a, b
    memo.put("c", b"cccc")  # a and b become old, c is young
    assert memo.get("a") == b"aaaa"  # a moves back to young (c, a)
    memo.put("d", b"dddd")  # c and a become old; b, unused since, goes; d is young
    memo.put("e", b"eeee")  # young: d, e
    # a comes back (d and e become old, c goes); d and e come back
    assert memo.get_many(["a", None, "b", "c", "d", "e"]) == [
        b"aaaa",
        None,
        None,
        None,
        b"dddd",
        b"eeee",
    ]
    assert memo.used == 12
    assert len(memo) == 3


def test_a_replaced_entry_is_counted_once_and_a_large_one_not_kept() -> None:
    memo: BoundedMemo[bytes] = BoundedMemo(16, len)
    memo.put("a", b"aaaa")
    memo.put("a", b"aaaaaa")
    assert memo.used == 6
    memo.put("big", b"x" * 9)  # over half the budget
    assert memo.get("big") is None
    assert memo.get("a") == b"aaaaaa"
    memo.clear()
    assert memo.used == 0
    assert memo.get("a") is None


def test_a_memo_never_holds_more_than_its_budget() -> None:
    memo: BoundedMemo[bytes] = BoundedMemo(100, len)
    for i in range(1000):
        memo.put(i % 37, b"x" * (i % 11))
        memo.get_many([(i * 7) % 37, (i * 3) % 37])
        assert memo.used <= 100
    assert memo.used == sum(len(v or b"") for v in memo.get_many(list(range(37))))


@pytest.mark.parametrize("cursor", [None, "MjAzMS0wMy0wMVQwMDowMDowMCswMDowMHxhYmM="])
@pytest.mark.parametrize("count", [0, 1, 3])
def test_the_list_body_is_the_document_rendered_whole(cursor: str | None, count: int) -> None:
    items: list[dict[str, Any]] = [
        {"id": f"e{i}", "title": 'é "quoted" \u2028', "attendees": [], "n": i, "x": None}
        for i in range(count)
    ]
    assert list_body([json_bytes(i) for i in items], cursor) == json_bytes(
        {"events": items, "next_cursor": cursor}
    )


def test_a_series_entry_keeps_the_items_of_its_last_windows() -> None:
    start = EventTime(instant=datetime(2031, 3, 3, 9, tzinfo=UTC), timezone="UTC")
    outline = SeriesOutline(
        id=uuid.uuid4(),
        calendar_id=uuid.uuid4(),
        series_id="s",
        start=start,
        end=start,
        timezone="UTC",
        recurrence=("RRULE:FREQ=DAILY",),
        category=None,
        has_exceptions=False,
        version="7:",
    )
    entry = SeriesEntry(outline)
    assert entry.key == (outline.id.int, "7:", False)
    assert entry.items("a") is None
    assert entry.size == 1
    grown = entry.with_items("a", (1, 2)).with_items("b", (3,))
    assert (grown.items("a"), grown.items("b"), grown.size) == ((1, 2), (3,), 4)
    assert entry.items("a") is None  # entries are never changed
    for n in range(SERIES_WINDOWS):  # "a" is re-added first, so "b" is the oldest
        grown = grown.with_items("a" if n == 0 else n, (n,))
    assert grown.items("b") is None
    assert grown.items("a") == (0,)
    assert len(grown.windows) == SERIES_WINDOWS
    assert grown.outline is outline


def test_windows_are_equal_by_their_bounds() -> None:
    bounds = (datetime(2031, 3, 1, tzinfo=UTC), UTC, datetime(2031, 4, 1, tzinfo=UTC))
    same = Window(tuple(bounds))
    assert Window(bounds) == same
    assert hash(Window(bounds)) == hash(same)
    assert {Window(bounds): 1}.get(same) == 1
    assert Window((*bounds[:2], datetime(2031, 4, 2, tzinfo=UTC))) != same
    assert same != bounds


def test_put_many_is_put_of_each() -> None:
    memo: BoundedMemo[bytes] = BoundedMemo(16, len)
    memo.put_many([("a", b"aaaa"), ("b", b"bbbb"), ("big", b"x" * 9), ("a", b"aa"), ("c", b"cc")])
    assert memo.get_many(["a", "b", "big", "c"]) == [b"aa", b"bbbb", None, b"cc"]
    assert memo.used == 8
