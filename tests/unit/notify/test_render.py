"""Notices in words: subjects, bodies, and an iCalendar part that calendar clients read."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from email.message import EmailMessage
from typing import Any

import icalendar

from calsync.domain.models import Attendee, Event, EventStatus, EventTime
from calsync.notify.changes import describe_change
from calsync.notify.payloads import event_summary
from calsync.notify.render import email_message, icalendar_document, json_message, render
from calsync.notify.senders import Notice, Recipient

NOW = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
RECIPIENT = Recipient(uuid.uuid4(), "bob@example.com", "Europe/Berlin", "Bob")


def berlin(year: int, month: int, day: int, hour: int, minute: int) -> EventTime:
    return EventTime.at(datetime(year, month, day, hour, minute), "Europe/Berlin")


EVENT = Event(
    start=berlin(2026, 3, 30, 9, 0),
    end=berlin(2026, 3, 30, 10, 0),
    title="Design review",
    location="Room 4",
    organizer_email="alice@example.com",
    attendees=(Attendee(email="bob@example.com"),),
    provider_event_id="evt1",
    sequence=3,
)


def notice(kind: str, payload: dict[str, Any]) -> Notice:
    return Notice(uuid.uuid4(), kind, "email", RECIPIENT, payload, NOW)


def change_notice(before: Event | None, after: Event | None) -> Notice:
    change = describe_change(before, after)
    assert change is not None
    current = after or before
    assert current is not None
    return notice(
        "change",
        {
            "change": change[0],
            "changed": change[1],
            "source": "api",
            "event": event_summary(current, uid="evt1"),
            "before": event_summary(before, uid="evt1") if before else None,
            "after": event_summary(after, uid="evt1") if after else None,
            "recurrence_id": None,
        },
    )


def parse_ics(data: bytes) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(data)


def test_a_reminder_says_what_when_and_where_in_the_recipients_zone() -> None:
    reminder = notice(
        "reminder",
        {
            "event": event_summary(EVENT, uid="evt1"),
            "occurrence_start": "2026-03-30T07:00:00+00:00",
            "occurrence_end": "2026-03-30T08:00:00+00:00",
            "lead_minutes": 10,
            "recurrence_id": None,
        },
    )

    rendered = render(reminder)

    assert rendered.subject == "Reminder: Design review, Mon 30 Mar 2026, 09:00 CEST"
    assert "When: Mon 30 Mar 2026, 09:00 CEST to Mon 30 Mar 2026, 10:00 CEST" in rendered.lines
    assert "Where: Room 4" in rendered.text
    body = json_message(reminder, now=NOW)
    assert body["type"] == "reminder"
    assert body["lead_minutes"] == 10


def test_an_update_lists_old_and_new_values() -> None:
    moved = replace(
        EVENT,
        start=berlin(2026, 3, 30, 11, 0),
        end=berlin(2026, 3, 30, 12, 0),
        location="Room 5",
    )

    rendered = render(change_notice(EVENT, moved))

    assert rendered.type == "event.updated"
    assert "Starts: Mon 30 Mar 2026, 09:00 CEST -> Mon 30 Mar 2026, 11:00 CEST" in rendered.lines
    assert "Where: Room 4 -> Room 5" in rendered.lines


def test_the_email_has_text_html_and_a_calendar_request() -> None:
    moved = replace(EVENT, title="Design review v2")
    item = change_notice(EVENT, moved)

    message = email_message(item, sender="calsync@example.com", now=NOW)

    assert message["Message-ID"] == f"<{item.id}@example.com>"
    assert message["To"] == "Bob <bob@example.com>"
    assert isinstance(message.get_body(("plain",)), EmailMessage)
    html = message.get_body(("html",))
    assert html is not None
    assert "Design review v2" in html.get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "REQUEST"
    calendar = parse_ics(attachment.get_content())
    assert calendar["method"] == "REQUEST"
    [vevent] = calendar.walk("VEVENT")
    assert vevent["summary"] == "Design review v2"
    assert vevent.decoded("dtstart") == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    assert str(vevent["organizer"]) == "mailto:alice@example.com"
    assert vevent.decoded("sequence") == 3


def test_a_cancellation_is_a_calendar_cancel() -> None:
    cancelled = replace(EVENT, status=EventStatus.CANCELLED)
    item = change_notice(EVENT, cancelled)

    assert render(item).subject.startswith("Cancelled: Design review")
    method, data = icalendar_document(item, now=NOW)
    assert method == "CANCEL"
    [vevent] = parse_ics(data).walk("VEVENT")
    assert vevent["status"] == "CANCELLED"


def test_a_series_carries_its_rule_and_zone() -> None:
    series = replace(
        EVENT,
        recurrence=(
            "RRULE:FREQ=WEEKLY;BYDAY=MO",
            "EXDATE;TZID=Europe/Berlin:20260406T090000",
        ),
    )
    item = change_notice(None, series)

    calendar = parse_ics(icalendar_document(item, now=NOW)[1])

    [vevent] = calendar.walk("VEVENT")
    assert vevent.decoded("rrule")["FREQ"] == ["WEEKLY"]
    assert vevent["dtstart"].params["TZID"] == "Europe/Berlin"
    assert [tz["tzid"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]


def test_an_all_day_event_is_dated() -> None:
    day = Event(
        start=EventTime.on(date(2026, 12, 24)),
        end=EventTime.on(date(2026, 12, 26)),
        title="Holidays",
    )
    item = change_notice(None, day)

    assert render(item).subject == "Invitation: Holidays, Thu 24 Dec 2026 (all day)"
    assert "When: Thu 24 Dec 2026 to Fri 25 Dec 2026 (all day)" in render(item).lines
    [vevent] = parse_ics(icalendar_document(item, now=NOW)[1]).walk("VEVENT")
    assert vevent.decoded("dtstart") == date(2026, 12, 24)


def test_what_counts_as_a_change() -> None:
    zone_only = replace(
        EVENT,
        timezone="UTC",
        start=EventTime(instant=datetime(2026, 3, 30, 7, 0, tzinfo=UTC), timezone="UTC"),
        end=EventTime(instant=datetime(2026, 3, 30, 8, 0, tzinfo=UTC), timezone="UTC"),
    )
    described = replace(EVENT, description="new agenda")
    cancelled = replace(EVENT, status=EventStatus.CANCELLED)

    assert describe_change(EVENT, zone_only) is None  # same instants
    assert describe_change(EVENT, described) is None
    assert describe_change(EVENT, cancelled) == ("cancelled", ["status"])
    assert describe_change(EVENT, None) == ("cancelled", ["status"])
    assert describe_change(cancelled, None) is None
    assert describe_change(None, EVENT) == ("created", [])
