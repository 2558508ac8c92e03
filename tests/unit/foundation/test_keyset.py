"""Keyset cursors: what `encode` makes decodes back; anything else is a ValueError."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from calsync.store import keyset


def test_a_position_survives_the_round_trip_as_the_same_instant() -> None:
    at = datetime(2026, 11, 21, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    decoded_at, key = keyset.decode(keyset.encode(at, "abc_20261121"))
    assert decoded_at == at
    assert decoded_at.tzinfo is not None
    assert key == "abc_20261121"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


#: The tag of the default scope, so that the vectors below fail for what they hold.
TAG = json.loads(base64.urlsafe_b64decode(keyset.encode(datetime.now(UTC), "k") + "=="))[-1]


def _tagged(text: str) -> str:
    """`text`, a JSON list of an instant and a key, with the tag after them."""
    return _b64(text[:-1] + f', "{TAG}"]')


@pytest.mark.parametrize(
    "text",
    [
        "%%%",
        _b64("not json"),
        _b64('{"a": 1}'),
        _tagged('["2026-11-21T10:00:00", "naive"]'),
        _tagged('["2026-11-21T10:00:00+00:00", 7]'),
        _tagged('["yesterday", "x"]'),
        _b64('["2026-11-21T10:00:00+00:00"]'),
        _b64('["2026-11-21T10:00:00+00:00", "a", "b"]'),
        pytest.param(_b64("[" * 5_000 + "]" * 5_000), id="nested-arrays"),
        pytest.param(_b64('{"a":' * 3_000 + "1" + "}" * 3_000), id="nested-objects"),
        pytest.param(_b64("[" * 380 + "]" * 380), id="nested-within-the-length"),
        pytest.param(_tagged('[["' + "[" * 300 + '"], "k"]'), id="nested-instant"),
        pytest.param(_tagged('["9999-12-31T23:59:59-14:00", "k"]'), id="past-9999-in-utc"),
        pytest.param(_tagged('["0001-01-01T00:00:00+14:00", "k"]'), id="before-year-1-in-utc"),
        pytest.param(_tagged('["2026-11-21T10:00:00+01:00", "k"]'), id="not-utc"),
        pytest.param(_tagged('["2026-11-21T10:00:00+00:00", "k\\u0000"]'), id="nul-in-key"),
        pytest.param(_tagged('["2026-11-21T10:00:00+00:00", "\\ud800"]'), id="surrogate-in-key"),
        pytest.param(_tagged('["2026-11-21T10:00:00+00:00", "k\u00e9"]'), id="non-ascii-key"),
        pytest.param(_tagged('["2026-11-21T10:00:00+00:00", ""]'), id="empty-key"),
        pytest.param("A" * 1025, id="too-long"),
        pytest.param("\u00e9\ud800", id="not-ascii-text"),
    ],
)
def test_anything_encode_did_not_make_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        keyset.decode(text)


@pytest.mark.parametrize(
    "at",
    [datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)],
    ids=["year-1", "year-9999"],
)
def test_positions_at_the_ends_of_the_calendar_round_trip(at: datetime) -> None:
    assert keyset.decode(keyset.encode(at, "k")) == (at, "k")


def test_cursors_are_url_safe() -> None:
    text = keyset.encode(datetime(2026, 1, 1, tzinfo=UTC), "?&/+=" * 5)
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_cursor_is_refused_in_another_scope() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    text = keyset.encode(at, "k", scope="events alice")
    assert keyset.decode(text, scope="events alice") == (at, "k")
    with pytest.raises(ValueError, match="another list"):
        keyset.decode(text, scope="events bob")
    with pytest.raises(ValueError, match="another list"):
        keyset.decode_name(keyset.encode_name("a@b.c", scope="users"), scope="events")
    assert keyset.decode_name(keyset.encode_name("a@b.c", scope="users"), scope="users") == "a@b.c"


def test_a_cursor_of_the_format_before_scopes_is_refused() -> None:
    with pytest.raises(ValueError, match="cursor"):
        keyset.decode(_b64('["2026-11-21T10:00:00+00:00", "k"]'))
