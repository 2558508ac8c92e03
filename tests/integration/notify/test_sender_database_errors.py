"""A sender's statement that the database refuses, on real databases of both kinds.

A sender runs in the delivery's transaction (its lookups, its housekeeping). On
PostgreSQL a refused statement (a statement or lock timeout, a cancel) aborts that
transaction: what `deliver_due` then records of the row could not be stored, and the
run must still go on to the other rows, as for any other error of a sender.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import Event, EventTime, Reminders
from calsync.notify.deliveries import deliver_due
from calsync.notify.on_event_change import reschedule_reminders
from calsync.notify.senders import Dispatcher, Notice
from calsync.store.tables import NotificationDelivery
from tests.integration.notify.conftest import add_calendar, add_event, add_user

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
START = datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
USERS = 3


class RefusedFor:
    """An email sender whose lookup the server refuses for one user (a missing table
    fails on both databases, as a timeout or a cancel would on PostgreSQL); it records
    what it sent to the others."""

    def __init__(self, refused: uuid.UUID) -> None:
        self.refused = refused
        self.sent: list[uuid.UUID] = []

    def send(self, session: Session, notice: Notice, *, now: datetime) -> None:
        if notice.recipient.user_id == self.refused:
            session.execute(sa.text("SELECT 1 FROM no_such_table"))
        self.sent.append(notice.recipient.user_id)


def seed(sessions: sessionmaker[Session]) -> list[uuid.UUID]:
    """USERS users, each with one event reminded 30 minutes before START."""
    users = []
    with sessions.begin() as session:
        for n in range(USERS):
            user_id = add_user(session, f"user{n}@example.com")
            calendar_id = add_calendar(session, user_id)
            event = Event(
                start=EventTime.at(START, "UTC"),
                end=EventTime.at(START + timedelta(hours=1), "UTC"),
                title=f"Meeting {n}",
                reminders=Reminders.minutes(30),
            )
            event_id = add_event(session, event, user_id=user_id, calendar_id=calendar_id)
            reschedule_reminders(session, event_id, now=NOW)
            users.append(user_id)
    return users


def test_a_sender_statement_the_server_refuses_is_a_retry_and_the_others_are_sent(
    sessions: sessionmaker[Session],
) -> None:
    users = seed(sessions)
    for refused in users:  # first, middle and last in the run's order
        with sessions.begin() as session:
            session.execute(
                sa.update(NotificationDelivery).values(
                    status="pending", attempts=0, reason=None, due_at=START - timedelta(minutes=30)
                )
            )
        sender = RefusedFor(refused)
        report = deliver_due(sessions, Dispatcher({"email": sender}), now=START)
        assert (report.sent, report.retrying) == (USERS - 1, 1), refused
        assert sorted(sender.sent) == sorted(u for u in users if u != refused)
        with sessions() as session:
            rows = {r.user_id: r for r in session.scalars(sa.select(NotificationDelivery))}
        assert {u: rows[u].status for u in users if u != refused} == {
            u: "sent" for u in users if u != refused
        }
        failed = rows[refused]
        assert (failed.status, failed.attempts) == ("pending", 1)
        assert "unexpected error" in (failed.reason or "")
        assert failed.due_at.replace(tzinfo=UTC) > START
