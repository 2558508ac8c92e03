"""Body checking to domain events (`calsync.events.changes_input`, `changes_applied`),
and series splitting: pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from calsync.domain.errors import FieldErrors
from calsync.domain.models import Event, EventTime
from calsync.domain.splits import split_series
from calsync.events.changes_applied import apply_changes
from calsync.events.changes_input import read_changes


def build(body: dict[str, object], current: Event | None = None) -> Event:
    changes = read_changes(body, require_times=current is None)
    return apply_changes(current, changes, default_zone="UTC")


def fields_of(error: FieldErrors) -> set[str]:
    return {p.field for p in error.problems}


def test_wall_clock_times_are_read_in_the_given_zone() -> None:
    event = build(
        {
            "start_time": "2031-07-01T09:00:00",
            "end_time": "2031-07-01T10:00:00",
            "timezone": "Europe/Berlin",
        }
    )
    assert event.start.instant == datetime(2031, 7, 1, 7, 0, tzinfo=UTC)
    assert event.timezone == "Europe/Berlin"


def test_a_partial_update_keeps_what_it_does_not_name() -> None:
    before = build(
        {
            "title": "a",
            "start_time": "2031-07-01T09:00:00Z",
            "end_time": "2031-07-01T10:00:00Z",
            "metadata": {"k": "v"},
        }
    )
    after = build({"title": "b"}, before)
    assert (after.title, after.start, after.metadata) == ("b", before.start, before.metadata)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"start_time": "2031-07-01T09:00:00", "end_time": "2031-07-01T10:00:00"}, {"start_time"}),
        ({"start_time": "2031-07-01", "end_time": "2031-07-01"}, {"end_time"}),
        ({"start_time": "x", "end_time": "y", "id": "1", "foo": 2}, {"id", "foo"}),
        ({"end_time": "2031-07-01T10:00:00Z"}, {"start_time"}),
    ],
)
def test_problems_name_their_fields(body: dict[str, object], fields: set[str]) -> None:
    with pytest.raises(FieldErrors) as caught:
        build(body)
    assert fields <= fields_of(caught.value)


def test_a_split_cuts_the_rule_and_continues_it_with_the_rest_of_the_count() -> None:
    master = Event(
        start=EventTime.at(datetime(2031, 3, 3, 9), "Europe/Berlin"),
        end=EventTime.at(datetime(2031, 3, 3, 10), "Europe/Berlin"),
        recurrence=(
            "RRULE:FREQ=DAILY;COUNT=10",
            "RDATE;TZID=Europe/Berlin:20310301T090000,20310320T090000",
        ),
    )
    at = EventTime.at(datetime(2031, 3, 6, 9), "Europe/Berlin")
    halves = split_series(master, at)
    before, after = halves.before, halves.after
    assert before == (
        "RRULE:FREQ=DAILY;UNTIL=20310306T075959Z",
        "RDATE;TZID=Europe/Berlin:20310301T090000",
    )
    assert after == ("RRULE:FREQ=DAILY;COUNT=7", "RDATE;TZID=Europe/Berlin:20310320T090000")
