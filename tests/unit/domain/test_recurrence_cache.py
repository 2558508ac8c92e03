"""The parsed-rule cache behind `occurrences`/`expand`, and the cheap expansion path."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from calsync.domain.errors import ValidationError
from calsync.domain.models import Event, EventStatus, EventTime
from calsync.domain.recurrence import (
    clear_rule_cache,
    expand,
    instance_of,
    occurrences,
)

JUNE = (datetime(2030, 6, 1, tzinfo=UTC), datetime(2030, 7, 1, tzinfo=UTC))


def series(rule: str, start: datetime, zone: str, master_id: str) -> Event:
    return Event(
        title=master_id,
        start=EventTime.at(start, zone),
        end=EventTime.at(start + timedelta(minutes=45), zone),
        recurrence=(rule,),
        provider_event_id=master_id,
    )


def fresh(master: Event, start: datetime, end: datetime) -> tuple[Event, ...]:
    clear_rule_cache()
    return expand(master, start, end)


def test_the_same_rule_text_in_other_series_never_shares_instances() -> None:
    # Given two series with the same rule text but other starts and zones
    rule = "RRULE:FREQ=WEEKLY;BYDAY=MO,WE"
    berlin = series(rule, datetime(2030, 3, 4, 9), "Europe/Berlin", "a")
    tokyo = series(rule, datetime(2030, 3, 4, 9), "Asia/Tokyo", "b")
    later = series(rule, datetime(2030, 6, 10, 9), "Europe/Berlin", "c")
    expected = {m.provider_event_id: fresh(m, *JUNE) for m in (berlin, tokyo, later)}
    # When all are expanded with a warm cache, in turn and again
    clear_rule_cache()
    for _ in range(2):
        for master in (berlin, tokyo, later):
            got = expand(master, *JUNE)
            # Then each gets exactly its own instances
            assert got == expected[master.provider_event_id]
            assert {e.recurring_event_id for e in got} == {master.provider_event_id}
    assert expected["a"][0].start.local().hour == 9
    assert expected["b"][0].start.local().hour == 9
    assert expected["a"][0].start.instant != expected["b"][0].start.instant
    assert expected["c"][0].start.instant == datetime(2030, 6, 10, 7, tzinfo=UTC)


def test_an_edited_series_expands_as_edited_after_a_cached_expansion() -> None:
    # Given a series expanded once (its rules are now cached)
    master = series("RRULE:FREQ=DAILY", datetime(2030, 5, 1, 8), "America/New_York", "m")
    before = expand(master, *JUNE)
    # When its rule, its start and its exclusions change, one after the other
    edits = [
        dataclasses.replace(master, recurrence=("RRULE:FREQ=WEEKLY;BYDAY=TU",)),
        dataclasses.replace(
            master,
            start=EventTime.at(datetime(2030, 5, 1, 10), "America/New_York"),
            end=EventTime.at(datetime(2030, 5, 1, 11), "America/New_York"),
        ),
        dataclasses.replace(master, recurrence=("RRULE:FREQ=DAILY", "EXDATE:20300603T120000Z")),
    ]
    for edited in edits:
        got = expand(edited, *JUNE)
        # Then each answer is the edited series' own, as a cold cache gives it
        assert got == fresh(edited, *JUNE)
        assert got != before
    # And the unedited series still expands as before
    assert expand(master, *JUNE) == before


def test_a_rule_that_does_not_validate_fails_the_same_way_every_time() -> None:
    master = series("RRULE:FREQ=DAILY;COUNT=3;UNTIL=20300301", datetime(2030, 1, 1), "UTC", "x")
    clear_rule_cache()
    errors = []
    for _ in range(3):
        with pytest.raises(ValidationError) as caught:
            expand(master, *JUNE)
        errors.append(caught.value)
    assert errors[0] == errors[1] == errors[2]
    assert errors[0].field == "recurrence"
    assert errors[0] is not errors[1]  # a fresh error each time, no growing traceback


def test_occurrences_and_instance_of_give_what_expand_gives() -> None:
    # Given an all-day series with an EXDATE, a moved and a cancelled instance
    master = Event(
        title="bins",
        start=EventTime.on(date(2030, 5, 28)),
        end=EventTime.on(date(2030, 5, 29)),
        timezone="Pacific/Auckland",
        recurrence=("RRULE:FREQ=WEEKLY", "EXDATE;VALUE=DATE:20300611"),
        provider_event_id="bins",
    )
    moved = dataclasses.replace(
        instance_of(master, "bins", EventTime.on(date(2030, 6, 4))),
        start=EventTime.on(date(2030, 6, 5)),
        end=EventTime.on(date(2030, 6, 6)),
        title="moved",
    )
    cancelled = dataclasses.replace(
        instance_of(master, "bins", EventTime.on(date(2030, 6, 18))),
        status=EventStatus.CANCELLED,
    )
    # When both paths expand June
    expanded = expand(master, *JUNE, [moved, cancelled])
    found = occurrences(
        master.recurrence,
        master.start,
        master.end,
        *JUNE,
        [moved, cancelled],
        series_id="bins",
        timezone=master.timezone,
    )
    # Then they agree, and the exclusions hold
    rebuilt = [instance_of(master, "bins", s) for s in found.starts] + list(found.exceptions)
    assert sorted(rebuilt, key=lambda e: e.start.day or date.min) == list(expanded)
    assert [(e.start.day, e.title) for e in expanded] == [
        (date(2030, 6, 5), "moved"),
        (date(2030, 6, 25), "bins"),
    ]
    assert found.complete


def test_a_capped_expansion_is_not_complete() -> None:
    master = series("RRULE:FREQ=HOURLY", datetime(2030, 5, 1), "UTC", "h")
    found = occurrences(
        master.recurrence,
        master.start,
        master.end,
        *JUNE,
        series_id="h",
        timezone="UTC",
        max_instances=100,
    )
    assert len(found.starts) == 100
    assert not found.complete


@pytest.mark.parametrize(
    "rule",
    [
        "RRULE:FREQ=DAILY;COUNT=400",
        "RRULE:FREQ=WEEKLY;BYDAY=MO,FR;COUNT=90",
        "RRULE:FREQ=MONTHLY;BYDAY=-1SU;COUNT=30",
        "RRULE:FREQ=DAILY;INTERVAL=3",
        "RRULE:FREQ=HOURLY;INTERVAL=7;UNTIL=20301231T000000Z",
    ],
)
def test_windows_after_warm_ones_expand_as_with_a_cold_cache(rule: str) -> None:
    # Given a series (COUNT rules keep all their starts, every rule its last windows)
    master = series(rule, datetime(2030, 1, 6, 9), "Europe/Berlin", "w")
    windows = [
        (datetime(2030, 3, 1, tzinfo=UTC), datetime(2030, 4, 1, tzinfo=UTC)),  # DST inside
        (datetime(2030, 3, 1, tzinfo=UTC), datetime(2030, 3, 5, tzinfo=UTC)),
        (datetime(2030, 10, 20, tzinfo=UTC), datetime(2030, 11, 10, tzinfo=UTC)),
        (datetime(2031, 2, 1, tzinfo=UTC), datetime(2031, 3, 1, tzinfo=UTC)),  # past COUNT
        (datetime(2030, 3, 1, tzinfo=UTC), datetime(2030, 4, 1, tzinfo=UTC)),
    ]
    expected = [fresh(master, *w) for w in windows]
    # When the windows are expanded in turn, twice, with the cache kept
    clear_rule_cache()
    got = [expand(master, *w) for w in windows + windows]
    # Then each answer is what a cold cache gives
    assert got == expected + expected
    assert expected[0]
    assert expected[0] != expected[2]


def test_exceptions_apply_to_remembered_windows() -> None:
    # Given a window expanded once without exceptions
    master = series("RRULE:FREQ=DAILY", datetime(2030, 5, 1, 8), "UTC", "d")
    plain = expand(master, *JUNE)
    # When an exception now moves the first June instance and another cancels the second
    moved = dataclasses.replace(
        plain[0],
        start=plain[0].start.shifted(timedelta(hours=3)),
        end=plain[0].end.shifted(timedelta(hours=3)),
    )
    cancelled = dataclasses.replace(plain[1], status=EventStatus.CANCELLED)
    got = expand(master, *JUNE, [moved, cancelled])
    # Then the remembered starts are still corrected by them
    assert got[0] == moved
    assert plain[1] not in got
    assert len(got) == len(plain) - 1
    assert got == fresh_with(master, [moved, cancelled])


def fresh_with(master: Event, exceptions: list[Event]) -> tuple[Event, ...]:
    clear_rule_cache()
    return expand(master, *JUNE, exceptions)
