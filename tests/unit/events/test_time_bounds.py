"""Times at the ends of the calendar: a problem naming the field (a clear 422), never a
crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from calsync.domain.errors import FieldErrors, ValidationError
from calsync.domain.models import EventTime
from calsync.events.changes_applied import apply_changes
from calsync.events.changes_input import read_changes


def refused_fields(body: dict[str, object]) -> set[str]:
    with pytest.raises(FieldErrors) as caught:
        apply_changes(None, read_changes(body, require_times=True), default_zone="UTC")
    return {p.field for p in caught.value.problems}


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        # before year 1 once converted to UTC: used to raise OverflowError (HTTP 500)
        ("0001-01-01T00:00:00+14:00", "0001-01-01T01:00:00Z", "start_time"),
        ("2031-03-04T10:00:00Z", "0001-01-01T00:00:00+14:00", "end_time"),
        ("1899-12-31T23:59:59Z", "1900-01-01T01:00:00Z", "start_time"),
        ("2199-12-31T23:00:00Z", "2200-01-01T00:00:01Z", "end_time"),
        ("9999-12-31T10:00:00-14:00", "9999-12-31T11:00:00-14:00", "start_time"),
        ("1899-12-31", "1900-01-01", "start_time"),
        ("2199-12-31", "2200-01-02", "end_time"),
    ],
)
def test_a_time_outside_the_supported_span_is_refused_by_name(
    start: str, end: str, field: str
) -> None:
    assert field in refused_fields({"start_time": start, "end_time": end})


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("1900-01-01T00:00:00Z", "1900-01-01T01:00:00Z"),
        ("2199-12-31T23:00:00Z", "2200-01-01T00:00:00Z"),
        ("2199-12-31", "2200-01-01"),
    ],
)
def test_the_ends_of_the_span_are_accepted(start: str, end: str) -> None:
    event = apply_changes(
        None,
        read_changes({"start_time": start, "end_time": end}, require_times=True),
        default_zone="UTC",
    )
    assert event.start.start_in("UTC") < event.end.start_in("UTC")


def test_the_model_refuses_an_instant_it_cannot_convert_to_utc() -> None:
    ahead = timezone(timedelta(hours=14))
    with pytest.raises(ValidationError) as caught:
        EventTime.at(datetime(1, 1, 1, tzinfo=ahead), "Pacific/Kiritimati")
    assert caught.value.field == "start"
    assert EventTime.at(datetime(1, 1, 1, 14, tzinfo=ahead), "UTC").instant == datetime(
        1, 1, 1, tzinfo=UTC
    )
