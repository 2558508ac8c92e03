"""Event model invariants and the input validation rules."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from calsync.domain.errors import ValidationError
from calsync.domain.models import (
    SYNCABLE_FIELDS,
    Attendee,
    Event,
    EventTime,
    Metadata,
    Reminder,
    ReminderMethod,
    Reminders,
)
from calsync.domain.validation import event_problems, validate_event

BERLIN = "Europe/Berlin"


def timed(hour: int, *, day: int = 6) -> EventTime:
    return EventTime.at(datetime(2024, 5, day, hour), BERLIN)


def valid_event(**changes: object) -> Event:
    event = Event(title="Review", start=timed(9), end=timed(10))
    return dataclasses.replace(event, **changes)  # type: ignore[arg-type]


def test_naive_time_is_wall_clock_in_the_zone_and_stored_in_utc() -> None:
    value = EventTime.at(datetime(2024, 7, 1, 9), BERLIN)
    assert value.instant == datetime(2024, 7, 1, 7, tzinfo=UTC)
    assert value.local().hour == 9


def test_aware_time_keeps_its_instant() -> None:
    value = EventTime.at(datetime(2024, 7, 1, 9, tzinfo=timezone(timedelta(hours=-4))), BERLIN)
    assert value.instant == datetime(2024, 7, 1, 13, tzinfo=UTC)
    assert value.local().hour == 15


def test_equal_instants_in_the_repeated_hour_are_told_apart() -> None:
    first = EventTime.at(datetime(2024, 10, 27, 0, 30, tzinfo=UTC), BERLIN)
    second = EventTime.at(datetime(2024, 10, 27, 1, 30, tzinfo=UTC), BERLIN)
    assert first.local().replace(tzinfo=None) == second.local().replace(tzinfo=None)
    assert first != second


@pytest.mark.parametrize(
    "build",
    [
        lambda: EventTime.at(datetime(2024, 1, 1), "Mars/Olympus"),
        lambda: EventTime.at(datetime(2024, 1, 1), "../../etc/passwd"),
        lambda: EventTime.at(datetime(2024, 1, 1), ""),
        lambda: EventTime.on(datetime(2024, 1, 1)),
        lambda: EventTime(),
        lambda: EventTime(instant=datetime(2024, 1, 1), timezone="UTC"),
        lambda: EventTime(day=date(2024, 1, 1), timezone="UTC"),
    ],
)
def test_malformed_times_are_refused(build: object) -> None:
    with pytest.raises(ValidationError):
        build()  # type: ignore[operator]


def test_start_and_end_must_be_of_one_kind() -> None:
    with pytest.raises(ValidationError) as caught:
        Event(start=EventTime.on(date(2024, 1, 1)), end=timed(9))
    assert caught.value.field == "end"


def test_timed_event_timezone_is_the_start_zone() -> None:
    assert valid_event().timezone == BERLIN
    with pytest.raises(ValidationError, match="start's time zone"):
        Event(start=timed(9), end=timed(10), timezone="UTC")


def test_collections_are_canonical() -> None:
    event = valid_event(
        attendees=(Attendee(email=" Zed@Example.com "), Attendee(email="amy@example.com")),
        metadata={"b": "2", "a": "1"},
        recurrence=[" RRULE:FREQ=DAILY "],
        reminders=Reminders.minutes(30, 10, 10),
    )
    assert [a.email for a in event.attendees] == ["amy@example.com", "zed@example.com"]
    assert isinstance(event.metadata, Metadata)
    assert list(event.metadata) == ["a", "b"]
    assert event.recurrence == ("RRULE:FREQ=DAILY",)
    assert event.reminders.overrides == (Reminder(10), Reminder(30))
    hash(event)


def test_reminders_are_default_or_overrides() -> None:
    with pytest.raises(ValidationError, match="not both"):
        Reminders(use_default=True, overrides=(Reminder(10, ReminderMethod.EMAIL),))


def test_metadata_is_an_immutable_mapping() -> None:
    meta = Metadata({"k": "v"})
    assert meta == {"k": "v"}
    assert hash(meta) == hash(Metadata({"k": "v"}))
    with pytest.raises(TypeError):
        meta["k"] = "w"  # type: ignore[index]
    with pytest.raises(ValidationError):
        Metadata({"k": 1})  # type: ignore[dict-item]


def test_all_day_duration_counts_days_and_end_is_exclusive() -> None:
    event = Event(start=EventTime.on(date(2024, 2, 28)), end=EventTime.on(date(2024, 3, 1)))
    assert event.all_day
    assert event.duration == timedelta(days=2)
    assert validate_event(event) is event


def test_syncable_fields_are_event_fields_and_exclude_provider_bookkeeping() -> None:
    names = {f.name for f in dataclasses.fields(Event)}
    assert names >= SYNCABLE_FIELDS
    assert not SYNCABLE_FIELDS & {"etag", "sequence", "updated", "provider_event_id", "calsync_id"}


def test_valid_event_has_no_problems() -> None:
    event = valid_event(
        attendees=(Attendee(email="a@example.com"),),
        reminders=Reminders.minutes(10),
        metadata={"matter_id": "42"},
        recurrence=("RRULE:FREQ=WEEKLY;COUNT=4",),
        category="work",
    )
    assert event_problems(event) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"end": timed(8)}, "end"),
        ({"start": EventTime.on(date(2024, 1, 2)), "end": EventTime.on(date(2024, 1, 2))}, "end"),
        ({"title": "x" * 1025}, "title"),
        ({"category": " "}, "category"),
        ({"attendees": (Attendee(email="not-an-email"),)}, "attendees"),
        ({"attendees": (Attendee(email="a@x.org"), Attendee(email="A@x.org"))}, "attendees"),
        ({"reminders": Reminders.minutes(1, 2, 3, 4, 5, 6)}, "reminders"),
        ({"reminders": Reminders.minutes(40321)}, "reminders"),
        ({"metadata": {"bad key": "v"}}, "metadata"),
        ({"metadata": {"k\n": "v"}}, "metadata"),
        ({"metadata": {"k" * 32: "v"}}, "metadata"),
        ({"metadata": {"k": "v" * 1025}}, "metadata"),
        ({"metadata": {f"k{i}": "v" for i in range(33)}}, "metadata"),
        ({"recurrence": ("RRULE:FREQ=DAILY;INTERVAL=0",)}, "recurrence"),
        ({"recurrence": ("RRULE:FREQ=DAILY",), "recurring_event_id": "m"}, "recurrence"),
    ],
)
def test_each_rule_names_its_field(changes: dict[str, object], field: str) -> None:
    event = valid_event(**changes)
    problems = event_problems(event)
    assert [p.field for p in problems] == [field]
    with pytest.raises(ValidationError) as caught:
        validate_event(event)
    assert caught.value == problems[0]


@pytest.mark.parametrize(
    "changes",
    [
        {"end": timed(9)},  # no length: Google accepts it for timed events
        {"original_start": EventTime.on(date(2024, 5, 6)), "recurring_event_id": "m"},
        {
            "start": EventTime.on(date(2024, 5, 6)),
            "end": EventTime.on(date(2024, 5, 7)),
            "original_start": timed(9),
            "recurring_event_id": "m",
        },
    ],
)
def test_what_google_accepts_is_no_problem(changes: dict[str, object]) -> None:
    """A timed event of no length, and an instance of one kind (timed, all-day) whose
    series is of the other (decisions G4)."""
    assert event_problems(valid_event(**changes)) == []


def test_a_trusted_event_needs_every_field_and_equals_the_checked_one() -> None:
    checked = Event(
        title="t",
        start=EventTime.at(datetime(2031, 3, 1, 9), "Europe/Berlin"),
        end=EventTime.at(datetime(2031, 3, 1, 10), "Europe/Berlin"),
    )
    values = {f.name: getattr(checked, f.name) for f in dataclasses.fields(Event)}
    assert Event.trusted(**values) == checked
    del values["title"]
    with pytest.raises(TypeError, match="exactly the fields"):
        Event.trusted(**values)
    with pytest.raises(TypeError, match="exactly the fields"):
        Event.trusted(**values, title="t", colour="red")
