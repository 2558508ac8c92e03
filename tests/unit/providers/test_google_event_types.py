"""Event types in the Google mapping and the domain's write rules (decisions K1-K3)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from typing import Any

import pytest

from calsync.domain.codec import event_from_document, event_to_document
from calsync.domain.event_props import Conference, Transparency, Visibility
from calsync.domain.event_types import creation_problems, update_problems
from calsync.domain.models import SYNCABLE_FIELDS, Attendee, Event, EventTime, Reminders
from calsync.providers.google.mapping import event_from_google, event_to_google

TIMED = {
    "start": {"dateTime": "2031-03-04T10:00:00Z"},
    "end": {"dateTime": "2031-03-04T11:00:00Z"},
}


def pulled(**resource: Any) -> Event:
    return event_from_google({"id": "ev1", "etag": '"1"'} | TIMED | resource, "UTC")


def test_a_type_calsync_does_not_know_is_stored_as_google_spells_it_and_is_read_only() -> None:
    event = pulled(eventType="appointmentSlot", summary="Office hours")
    assert event.event_type == "appointmentSlot"
    assert event_from_document(event_to_document(event)) == event
    renamed = dataclasses.replace(event, title="Mine")
    assert [p.status for p in update_problems(event, renamed)] == [403]
    body = event_to_google(renamed, calsync_id="x", previous=event)
    assert body == {}  # nothing Google might refuse for a type calsync cannot check


@pytest.mark.parametrize("kind", [["default"], 7, "two words", "x" * 40])
def test_a_type_that_cannot_be_a_type_name_makes_the_resource_malformed(kind: Any) -> None:
    with pytest.raises(ValueError, match="eventType"):
        pulled(eventType=kind)


def test_properties_are_kept_storable_and_a_missing_type_is_default() -> None:
    assert pulled().event_type == "default"
    event = pulled(
        eventType="outOfOffice", outOfOfficeProperties={"declineMessage": "a\x00b\ud800"}
    )
    assert event.type_properties == {"declineMessage": "a\ufffdb\ufffd"}


def test_a_from_gmail_patch_carries_only_the_fields_google_allows() -> None:
    before = pulled(eventType="fromGmail", summary="Flight\x00", location="LHR")
    after = dataclasses.replace(before, reminders=Reminders.minutes(30))
    assert update_problems(before, after) == []
    body = event_to_google(after, calsync_id="x", previous=before)
    assert set(body) == {"attendees", "reminders", "extendedProperties", "status"}


def test_a_birthday_patch_leaves_out_an_unchanged_date_and_its_other_fields() -> None:
    before = pulled(
        eventType="birthday",
        start={"date": "2031-03-06"},
        end={"date": "2031-03-07"},
        recurrence=["RRULE:FREQ=YEARLY"],
        birthdayProperties={"type": "birthday", "contact": "people/c1"},
    )
    after = dataclasses.replace(before, title="Ann")
    assert set(event_to_google(after, calsync_id="x", previous=before)) == {
        "summary",
        "reminders",
    }
    moved = dataclasses.replace(
        before, start=EventTime.on(date(2031, 3, 7)), end=EventTime.on(date(2031, 3, 8))
    )
    assert [(p.status, p.field) for p in update_problems(before, moved)] == [(403, "start_time")]


def test_status_events_need_the_primary_calendar_and_no_guests() -> None:
    away = pulled(eventType="outOfOffice", outOfOfficeProperties={})
    assert creation_problems(away, primary=True) == []
    assert [p.field for p in creation_problems(away, primary=False)] == ["calendar_id"]
    with_guest = dataclasses.replace(away, attendees=(Attendee(email="b@example.com"),))
    assert [p.field for p in creation_problems(with_guest, primary=True)] == ["attendees"]
    body = event_to_google(away, calsync_id="x", event_id="abcde")
    assert (body["eventType"], body["transparency"]) == ("outOfOffice", "opaque")
    assert body["outOfOfficeProperties"] == {}


#: A changed value of each field both sides can change (a field added to
#: SYNCABLE_FIELDS without one here fails the test below: add it).
CHANGED: dict[str, Any] = {
    "title": "Mine",
    "description": "notes",
    "location": "Room 4",
    "start": EventTime.at(datetime(2031, 3, 4, 9, tzinfo=UTC), "UTC"),
    "end": EventTime.at(datetime(2031, 3, 4, 12, tzinfo=UTC), "UTC"),
    "timezone": "Europe/Berlin",  # of an all-day event (a timed one's is its start's)
    "category": "work",
    "recurrence": ("RRULE:FREQ=DAILY",),
    "attendees": (Attendee(email="bob@example.com"),),
    "reminders": Reminders.minutes(30),
    "metadata": {"k": "v"},
    "status": "tentative",
    "type_properties": {"x": 1},
    "transparency": Transparency.TRANSPARENT,
    "visibility": Visibility.PRIVATE,
    "color_id": "5",
    "conference": Conference.meet_request("r1"),
}


@pytest.mark.parametrize("name", sorted(SYNCABLE_FIELDS))
def test_a_type_calsync_does_not_know_refuses_a_change_of_every_syncable_field(
    name: str,
) -> None:
    day = {"start": {"date": "2031-03-04"}, "end": {"date": "2031-03-05"}}
    event = pulled(eventType="appointmentSlot", **(day if name == "timezone" else {}))
    changed = dataclasses.replace(event, **{name: CHANGED[name]})
    assert getattr(changed, name) != getattr(event, name)
    assert [p.status for p in update_problems(event, changed)] == [403]
