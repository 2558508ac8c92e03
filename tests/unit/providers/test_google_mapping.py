"""Google Event resources <-> calsync events, on hand-written samples of Google's JSON."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.domain.models import (
    Attendee,
    Event,
    EventStatus,
    EventTime,
    Reminder,
    ReminderMethod,
    Reminders,
    ResponseStatus,
)
from calsync.providers.google.mapping import event_from_google, event_to_google
from tests.strategies import events

CAL_TZ = "America/New_York"

TIMED_SINGLE: dict[str, Any] = {
    "kind": "calendar#event",
    "etag": '"3418277411462000"',
    "id": "0123456789abcdefghijklmnop",
    "status": "confirmed",
    "htmlLink": "https://www.google.com/calendar/event?eid=abc",
    "created": "2024-02-01T09:00:00.000Z",
    "updated": "2024-02-01T10:05:05.731Z",
    "summary": "Contract review",
    "description": "Bring the draft",
    "location": "Room 4",
    "creator": {"email": "owner@example.com", "self": True},
    "organizer": {"email": "Owner@Example.com", "self": True},
    "start": {"dateTime": "2024-03-05T09:00:00+01:00", "timeZone": "Europe/Berlin"},
    "end": {"dateTime": "2024-03-05T10:30:00+01:00", "timeZone": "Europe/Berlin"},
    "iCalUID": "0123456789abcdefghijklmnop@google.com",
    "sequence": 2,
    "attendees": [
        {
            "email": "owner@example.com",
            "organizer": True,
            "self": True,
            "responseStatus": "accepted",
        },
        {
            "email": "guest@example.org",
            "displayName": "Guest",
            "optional": True,
            "responseStatus": "tentative",
            "comment": "may be late",
        },
    ],
    "extendedProperties": {
        "private": {
            "calsync_id": "5f0c3b0e-8a0b-4c43-9d7f-1c1ad2f0b1a2",
            "calsync_category": "legal",
            "calsync_meta_matter_id": "M-1001",
            "other_app_key": "keep-out",
        },
        "shared": {"calsync_meta_shared": "not ours"},
    },
    "reminders": {
        "useDefault": False,
        "overrides": [{"method": "email", "minutes": 1440}, {"method": "popup", "minutes": 10}],
    },
    "eventType": "default",
}

RECURRING_MASTER: dict[str, Any] = {
    "kind": "calendar#event",
    "etag": '"3418277411462001"',
    "id": "series1abc",
    "status": "confirmed",
    "updated": "2024-02-01T10:05:05Z",
    "summary": "Standup",
    "organizer": {"email": "owner@example.com"},
    "start": {"dateTime": "2024-03-04T09:00:00-05:00", "timeZone": "America/New_York"},
    "end": {"dateTime": "2024-03-04T09:15:00-05:00", "timeZone": "America/New_York"},
    "recurrence": [
        "RRULE:FREQ=WEEKLY;WKST=SU;UNTIL=20240630T035959Z;BYDAY=MO,WE,FR",
        "EXDATE;TZID=America/New_York:20240311T090000",
    ],
    "sequence": 0,
    "reminders": {"useDefault": True},
}

ALL_DAY: dict[str, Any] = {
    "kind": "calendar#event",
    "etag": '"1"',
    "id": "allday001",
    "status": "tentative",
    "updated": "2024-02-01T10:05:05.000Z",
    "summary": "Offsite",
    "start": {"date": "2024-04-10"},
    "end": {"date": "2024-04-12"},
    "reminders": {"useDefault": False},
}

MOVED_EXCEPTION: dict[str, Any] = {
    "kind": "calendar#event",
    "etag": '"7"',
    "id": "series1abc_20240306T140000Z",
    "status": "confirmed",
    "updated": "2024-03-01T08:00:00.000Z",
    "summary": "Standup (later today)",
    "start": {"dateTime": "2024-03-06T11:00:00-05:00", "timeZone": "America/New_York"},
    "end": {"dateTime": "2024-03-06T11:15:00-05:00", "timeZone": "America/New_York"},
    "recurringEventId": "series1abc",
    "originalStartTime": {"dateTime": "2024-03-06T09:00:00-05:00", "timeZone": "America/New_York"},
    "sequence": 1,
    "reminders": {"useDefault": True},
}

CANCELLED_EXCEPTION: dict[str, Any] = {
    "kind": "calendar#event",
    "etag": '"8"',
    "id": "series1abc_20240308T140000Z",
    "status": "cancelled",
    "recurringEventId": "series1abc",
    "originalStartTime": {"dateTime": "2024-03-08T09:00:00-05:00", "timeZone": "America/New_York"},
}

CANCELLED_ALL_DAY_EXCEPTION: dict[str, Any] = {
    "id": "birthday1_20240501",
    "status": "cancelled",
    "recurringEventId": "birthday1",
    "originalStartTime": {"date": "2024-05-01"},
}

DELETED_SINGLE: dict[str, Any] = {
    "kind": "calendar#event",
    "etag": '"9"',
    "id": "gone01",
    "status": "cancelled",
}

NO_SUMMARY_OFFSET_ONLY: dict[str, Any] = {
    "id": "nosummary1",
    "status": "confirmed",
    "start": {"dateTime": "2024-03-05T09:00:00-05:00"},
    "end": {"dateTime": "2024-03-05T09:30:00-05:00"},
}


def test_timed_single_event() -> None:
    event = event_from_google(TIMED_SINGLE, CAL_TZ)
    assert event.title == "Contract review"
    assert (event.description, event.location) == ("Bring the draft", "Room 4")
    assert event.start == EventTime.at(datetime(2024, 3, 5, 9), "Europe/Berlin")
    assert event.end.instant == datetime(2024, 3, 5, 9, 30, tzinfo=UTC)
    assert event.timezone == "Europe/Berlin"
    assert not event.all_day
    assert event.organizer_email == "owner@example.com"
    assert event.attendees == (
        Attendee(
            email="guest@example.org",
            display_name="Guest",
            response_status=ResponseStatus.TENTATIVE,
            optional=True,
        ),
        Attendee(
            email="owner@example.com", response_status=ResponseStatus.ACCEPTED, organizer=True
        ),
    )
    assert event.reminders == Reminders(
        use_default=False,
        overrides=(Reminder(10, ReminderMethod.POPUP), Reminder(1440, ReminderMethod.EMAIL)),
    )
    assert event.category == "legal"
    assert dict(event.metadata) == {"matter_id": "M-1001"}
    assert event.calsync_id == "5f0c3b0e-8a0b-4c43-9d7f-1c1ad2f0b1a2"
    assert (event.provider_event_id, event.etag, event.sequence) == (
        "0123456789abcdefghijklmnop",
        '"3418277411462000"',
        2,
    )
    assert event.updated == datetime(2024, 2, 1, 10, 5, 5, 731000, tzinfo=UTC)
    assert event.status == EventStatus.CONFIRMED


def test_timed_single_event_body() -> None:
    event = event_from_google(TIMED_SINGLE, CAL_TZ)
    body = event_to_google(event, calsync_id="5f0c3b0e-8a0b-4c43-9d7f-1c1ad2f0b1a2")
    assert body["start"] == {"dateTime": "2024-03-05T09:00:00+01:00", "timeZone": "Europe/Berlin"}
    assert body["extendedProperties"] == {
        "private": {
            "calsync_id": "5f0c3b0e-8a0b-4c43-9d7f-1c1ad2f0b1a2",
            "calsync_category": "legal",
            "calsync_meta_matter_id": "M-1001",
        }
    }
    assert body["reminders"] == {
        "useDefault": False,
        "overrides": [{"method": "popup", "minutes": 10}, {"method": "email", "minutes": 1440}],
    }
    assert {
        "email": "guest@example.org",
        "displayName": "Guest",
        "responseStatus": "tentative",
        "optional": True,
    } in body["attendees"]
    assert "recurrence" not in body
    assert not {"organizer", "etag", "sequence", "updated", "id"} & set(body)
    json.dumps(body)


def test_recurring_master() -> None:
    event = event_from_google(RECURRING_MASTER, "Europe/Berlin")
    assert event.is_recurring
    assert event.recurrence == tuple(RECURRING_MASTER["recurrence"])
    assert event.start.local().replace(tzinfo=None) == datetime(2024, 3, 4, 9)
    assert event.timezone == "America/New_York"
    assert event.reminders == Reminders()
    assert event_to_google(event, calsync_id="x")["recurrence"] == RECURRING_MASTER["recurrence"]


def test_all_day_event_end_is_exclusive_and_takes_the_calendar_zone() -> None:
    event = event_from_google(ALL_DAY, CAL_TZ)
    assert event.all_day
    assert (event.start.day, event.end.day) == (date(2024, 4, 10), date(2024, 4, 12))
    assert event.duration == timedelta(days=2)
    assert event.timezone == CAL_TZ
    assert event.status == EventStatus.TENTATIVE
    assert event.reminders == Reminders(use_default=False)
    body = event_to_google(event, calsync_id="x")
    assert (body["start"], body["end"]) == ({"date": "2024-04-10"}, {"date": "2024-04-12"})
    assert body["reminders"] == {"useDefault": False, "overrides": []}


def test_moved_exception() -> None:
    event = event_from_google(MOVED_EXCEPTION, CAL_TZ)
    assert event.is_exception
    assert event.recurring_event_id == "series1abc"
    assert event.original_start == EventTime.at(datetime(2024, 3, 6, 9), "America/New_York")
    assert event.start.local().hour == 11


def test_cancelled_exception_with_only_the_guaranteed_fields() -> None:
    event = event_from_google(CANCELLED_EXCEPTION, CAL_TZ)
    assert event.status == EventStatus.CANCELLED
    assert event.recurring_event_id == "series1abc"
    assert event.original_start == EventTime.at(
        datetime(2024, 3, 8, 14, tzinfo=UTC), "America/New_York"
    )
    assert event.start == event.original_start
    assert event.title == ""


def test_cancelled_all_day_exception_uses_the_date() -> None:
    event = event_from_google(CANCELLED_ALL_DAY_EXCEPTION, CAL_TZ)
    assert event.original_start == EventTime.on(date(2024, 5, 1))
    assert event.all_day
    assert event.etag is None


def test_deleted_event_with_only_id_and_status() -> None:
    event = event_from_google(DELETED_SINGLE, CAL_TZ)
    assert (event.provider_event_id, event.status) == ("gone01", EventStatus.CANCELLED)


def test_event_without_summary_and_without_time_zone_uses_the_calendar_zone() -> None:
    event = event_from_google(NO_SUMMARY_OFFSET_ONLY, CAL_TZ)
    assert event.title == ""
    assert event.timezone == CAL_TZ
    assert event.start.instant == datetime(2024, 3, 5, 14, tzinfo=UTC)
    assert event.reminders == Reminders()


@pytest.mark.parametrize(
    "resource",
    [
        {"status": "confirmed"},
        {"id": "x1234", "status": "confirmed"},
        {"id": "x1234", "start": {"timeZone": "UTC"}, "end": {"date": "2024-01-01"}},
        {
            "id": "x1234",
            "status": "bogus",
            "start": {"date": "2024-01-01"},
            "end": {"date": "2024-01-02"},
        },
    ],
)
def test_malformed_resources_raise_value_error(resource: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - ValidationError is a ValueError too
        event_from_google(resource, CAL_TZ)


def test_patch_body_clears_what_the_event_dropped() -> None:
    previous = event_from_google(TIMED_SINGLE, CAL_TZ)
    event = dataclasses.replace(
        previous,
        category=None,
        metadata={"new": "1"},
        start=EventTime.on(date(2024, 3, 5)),
        end=EventTime.on(date(2024, 3, 6)),
        timezone=None,
    )
    body = event_to_google(
        event,
        calsync_id="c1",
        previous=dataclasses.replace(previous, recurrence=("RRULE:FREQ=DAILY",)),
    )
    assert body["extendedProperties"]["private"] == {
        "calsync_id": "c1",
        "calsync_category": None,
        "calsync_meta_matter_id": None,
        "calsync_meta_new": "1",
    }
    assert body["start"] == {"date": "2024-03-05", "dateTime": None, "timeZone": None}
    assert body["recurrence"] == []


def test_insert_body_carries_the_client_id() -> None:
    event = event_from_google(ALL_DAY, CAL_TZ)
    assert event_to_google(event, calsync_id="c1", event_id="abcde12345")["id"] == "abcde12345"


OWNED = (
    "title",
    "description",
    "location",
    "start",
    "end",
    "timezone",
    "category",
    "recurrence",
    "attendees",
    "reminders",
    "metadata",
    "status",
    "transparency",
    "visibility",
    "color_id",
)


@settings(max_examples=200, deadline=None)
@given(event=events(), calsync_id=st.uuids())
def test_round_trip_is_lossless_for_owned_fields(event: Event, calsync_id: object) -> None:
    # Given the body calsync would send, as Google would store and return it (through JSON)
    body = json.loads(json.dumps(event_to_google(event, calsync_id=str(calsync_id))))
    resource = {**body, "id": "abcde12345", "etag": '"1"', "updated": "2024-01-01T00:00:00.000Z"}
    # When read back
    back = event_from_google(resource, event.timezone or "UTC")
    # Then every field calsync owns is unchanged, and the tag is there
    assert {name: getattr(back, name) for name in OWNED} == {
        name: getattr(event, name) for name in OWNED
    }
    assert back.calsync_id == str(calsync_id)
