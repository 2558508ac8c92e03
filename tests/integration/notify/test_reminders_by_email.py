"""Reminders end to end on real databases and a real SMTP server, time injected.

Given events stored as the events API and the sync engine store them, when reminders are
planned and due deliveries are sent at chosen moments, then the SMTP server receives the
right emails, once, and the delivery records say what happened.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, time, timedelta

import icalendar
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import Event, EventStatus, EventTime, Reminders
from calsync.notify.deliveries import deliver_due
from calsync.notify.on_event_change import reschedule_reminders
from calsync.notify.preferences import Preferences, QuietHours, save_preferences
from calsync.notify.reminders import refresh_reminders
from calsync.store.tables import NotificationDelivery
from tests.integration.notify.conftest import (
    BOX,
    SmtpServer,
    add_calendar,
    add_event,
    add_user,
    dispatcher_for,
    update_event,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
START = datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # 09:00 in Berlin (summer time)


def berlin(year: int, month: int, day: int, hour: int, minute: int) -> EventTime:
    return EventTime.at(datetime(year, month, day, hour, minute), "Europe/Berlin")


REVIEW = Event(
    start=berlin(2026, 3, 30, 9, 0),
    end=berlin(2026, 3, 30, 10, 0),
    title="Design review",
    location="Room 4",
    description="Bring the mock-ups.",
    reminders=Reminders.minutes(30, 10),
    provider_event_id="review1",
)


def setup_event(
    sessions: sessionmaker[Session], event: Event = REVIEW, *, timezone: str = "Europe/Berlin"
) -> tuple[uuid.UUID, uuid.UUID]:
    with sessions.begin() as session:
        user_id = add_user(session, "alice@example.com", timezone)
        calendar_id = add_calendar(session, user_id)
        event_id = add_event(session, event, user_id=user_id, calendar_id=calendar_id)
        reschedule_reminders(session, event_id, now=NOW)
    return user_id, event_id


def deliveries(sessions: sessionmaker[Session]) -> list[NotificationDelivery]:
    with sessions() as session:
        return list(
            session.scalars(
                sa.select(NotificationDelivery).order_by(
                    NotificationDelivery.due_at, NotificationDelivery.lead_minutes
                )
            )
        )


def test_each_reminder_is_emailed_once_when_due(
    sessions: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    _, event_id = setup_event(sessions)
    dispatcher = dispatcher_for(smtp=smtp_server)

    # Nothing is due the minute before the first reminder
    assert deliver_due(sessions, dispatcher, now=START - timedelta(minutes=31)).sent == 0
    # The 30-minute reminder goes at 08:30 local, the 10-minute one at 08:50
    assert deliver_due(sessions, dispatcher, now=START - timedelta(minutes=30)).sent == 1
    assert deliver_due(sessions, dispatcher, now=START - timedelta(minutes=10)).sent == 1
    # and running again sends nothing more
    assert deliver_due(sessions, dispatcher, now=START).sent == 0

    messages = smtp_server.mailbox.messages
    assert len(messages) == 2
    first = messages[0]
    assert first["To"] == "Alice <alice@example.com>"
    assert first["Subject"].startswith("Reminder: Design review, Mon 30 Mar 2026, 09:00 CEST")
    text = first.get_body(("plain",))
    assert text is not None
    assert "Where: Room 4" in text.get_content()
    assert "Bring the mock-ups." in text.get_content()
    [attachment] = list(first.iter_attachments())
    calendar = icalendar.Calendar.from_ical(attachment.get_content())
    assert calendar["method"] == "PUBLISH"
    [vevent] = calendar.walk("VEVENT")
    assert vevent["summary"] == "Design review"
    assert vevent.decoded("dtstart") == START
    assert vevent["uid"] == "review1@calsync"

    rows = deliveries(sessions)
    assert [(r.lead_minutes, r.status, r.attempts) for r in rows] == [
        (30, "sent", 1),
        (10, "sent", 1),
    ]
    assert all(r.event_id == event_id and r.channel == "email" for r in rows)
    assert rows[0].sent_at == START - timedelta(minutes=30)


def test_an_event_moved_before_its_reminder_is_reminded_at_the_new_time(
    sessions: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    _, event_id = setup_event(sessions)
    dispatcher = dispatcher_for(smtp=smtp_server)
    moved = dataclasses.replace(
        REVIEW, start=berlin(2026, 3, 30, 11, 0), end=berlin(2026, 3, 30, 12, 0)
    )

    # When the event moves two hours later before any reminder went out
    with sessions.begin() as session:
        update_event(session, event_id, moved)
        reschedule_reminders(session, event_id, now=NOW)

    # Then nothing goes at the old times, and both go at the new ones
    assert deliver_due(sessions, dispatcher, now=START).sent == 0
    new_start = START + timedelta(hours=2)
    assert deliver_due(sessions, dispatcher, now=new_start - timedelta(minutes=30)).sent == 1
    assert deliver_due(sessions, dispatcher, now=new_start - timedelta(minutes=10)).sent == 1
    subjects = [m["Subject"] for m in smtp_server.mailbox.messages]
    assert all("11:00 CEST" in s for s in subjects)
    assert len(deliveries(sessions)) == 2


def test_after_one_reminder_went_out_a_move_sends_the_new_ones_only(
    sessions: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    _, event_id = setup_event(sessions)
    dispatcher = dispatcher_for(smtp=smtp_server)
    assert deliver_due(sessions, dispatcher, now=START - timedelta(minutes=30)).sent == 1

    moved = dataclasses.replace(
        REVIEW, start=berlin(2026, 3, 30, 9, 15), end=berlin(2026, 3, 30, 10, 0)
    )
    with sessions.begin() as session:
        update_event(session, event_id, moved)
        reschedule_reminders(session, event_id, now=START - timedelta(minutes=29))

    # The new time gets its own reminders; the old 10-minute one is gone
    new_start = START + timedelta(minutes=15)
    assert deliver_due(sessions, dispatcher, now=new_start - timedelta(minutes=31)).sent == 0
    assert deliver_due(sessions, dispatcher, now=new_start - timedelta(minutes=30)).sent == 1
    assert deliver_due(sessions, dispatcher, now=new_start - timedelta(minutes=10)).sent == 1
    assert [r.status for r in deliveries(sessions)] == ["sent", "sent", "sent"]
    assert len(smtp_server.mailbox.messages) == 3


def test_a_cancelled_event_is_not_reminded(
    sessions: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    _, event_id = setup_event(sessions)
    with sessions.begin() as session:
        update_event(session, event_id, dataclasses.replace(REVIEW, status=EventStatus.CANCELLED))
        reschedule_reminders(session, event_id, now=NOW)

    assert deliver_due(sessions, dispatcher_for(smtp=smtp_server), now=START).sent == 0
    assert deliveries(sessions) == []
    assert smtp_server.mailbox.messages == []


def test_a_deleted_event_loses_its_pending_reminders(
    sessions: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    _, event_id = setup_event(sessions)
    with sessions.begin() as session:
        session.execute(sa.text("DELETE FROM events WHERE id = :id"), {"id": event_id.hex})
        reschedule_reminders(session, event_id, now=NOW)

    assert deliveries(sessions) == []


def test_after_downtime_only_the_last_reminder_goes_and_only_if_still_useful(
    sessions: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    setup_event(sessions)
    dispatcher = dispatcher_for(smtp=smtp_server)

    # Back during the event: the 10-minute reminder is still worth sending, once
    report = deliver_due(sessions, dispatcher, now=START + timedelta(minutes=20))
    assert (report.sent, report.skipped) == (1, 1)
    rows = deliveries(sessions)
    assert [(r.lead_minutes, r.status) for r in rows] == [(30, "skipped"), (10, "sent")]
    assert rows[0].reason is not None
    assert "superseded" in rows[0].reason


def test_after_downtime_past_the_end_the_reminders_are_skipped_with_a_reason(
    sessions: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    setup_event(sessions)

    report = deliver_due(sessions, dispatcher_for(smtp=smtp_server), now=START + timedelta(hours=1))

    assert (report.sent, report.skipped) == (0, 2)
    assert all(
        r.status == "skipped" and r.reason and "over" in r.reason for r in deliveries(sessions)
    )
    assert smtp_server.mailbox.messages == []


def test_quiet_hours_hold_a_reminder_until_they_end(
    sessions: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    # Given an event at 07:30 Berlin and quiet hours until 07:00
    early = dataclasses.replace(
        REVIEW,
        start=berlin(2026, 3, 30, 7, 30),
        end=berlin(2026, 3, 30, 8, 30),
        reminders=Reminders.minutes(60),
    )
    with sessions.begin() as session:
        user_id = add_user(session, "alice@example.com", "Europe/Berlin")
        save_preferences(
            session,
            user_id,
            Preferences(quiet_hours=QuietHours(time(22), time(7))),
            BOX,
        )
        event_id = add_event(
            session, early, user_id=user_id, calendar_id=add_calendar(session, user_id)
        )
        reschedule_reminders(session, event_id, now=NOW)
    dispatcher = dispatcher_for(smtp=smtp_server)
    due = datetime(2026, 3, 30, 4, 30, tzinfo=UTC)  # 06:30 local

    # When it falls due inside quiet hours, it is held
    assert deliver_due(sessions, dispatcher, now=due).held == 1
    assert deliver_due(sessions, dispatcher, now=due + timedelta(minutes=29)).sent == 0
    # and sent when they end, at 07:00 local
    assert deliver_due(sessions, dispatcher, now=due + timedelta(minutes=30)).sent == 1


def test_the_periodic_refresh_plans_what_enters_the_horizon(
    sessions: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    # Given a daily series, planned now for the next 48 hours
    series = dataclasses.replace(
        REVIEW, recurrence=("RRULE:FREQ=DAILY;COUNT=5",), reminders=Reminders.minutes(10)
    )
    setup_event(sessions, series)
    assert len(deliveries(sessions)) == 2  # 30 and 31 March

    # When time passes and the refresh runs, the next occurrences are planned too
    assert refresh_reminders(sessions, now=NOW + timedelta(days=2)) == 1
    assert refresh_reminders(sessions, now=NOW + timedelta(days=2)) == 1  # idempotent
    starts = sorted({r.occurrence_start for r in deliveries(sessions) if r.occurrence_start})
    assert starts == [START + timedelta(days=d) for d in range(4)]

    # and after that downtime, the ended ones are skipped and the coming ones sent
    later = START + timedelta(days=2, minutes=-10)
    report = deliver_due(sessions, dispatcher_for(smtp=smtp_server), now=later)
    assert (report.sent, report.skipped) == (1, 2)
    assert deliver_due(sessions, dispatcher_for(smtp=smtp_server), now=later).handled == 0
