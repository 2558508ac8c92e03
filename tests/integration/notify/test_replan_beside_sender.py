"""A replan of a user's reminders while a sender holds one of them (PostgreSQL).

The sender claims a due reminder (``FOR UPDATE SKIP LOCKED``) and holds it while it
sends. A user who removes that reminder's lead time at that moment replans their
reminders; the replan used to skip the locked row (``SKIP LOCKED`` too), so when the
sender's transaction ended without recording an outcome (the process died mid-send, the
window calsync.notify.deliveries documents) the row stayed pending for the removed lead,
and the next run sent it. The interleaving is made, not hoped for: the test holds the
claim open in its own transaction until the replan is seen waiting on the row's lock (or
has finished, as it did before the fix), then ends it. SQLite has no row locks and one
writer: its replan never skips a row (decision JP1).
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import Event, EventTime, Reminders
from calsync.notify import preferences
from calsync.notify.deliveries import deliver_due
from calsync.notify.reminders import reschedule_reminders, reschedule_user
from calsync.store import deliveries as store_deliveries
from calsync.store.tables import NotificationDelivery
from tests.integration.notify.conftest import (
    BOX,
    SmtpServer,
    add_calendar,
    add_event,
    add_user,
    dispatcher_for,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)
USERS = 3


def seed(sessions: sessionmaker[Session]) -> list[uuid.UUID]:
    """USERS users, each with one event at NOW + 30 min and reminders 30 (due at NOW)
    and 10 minutes before it."""
    users = []
    with sessions.begin() as session:
        for u in range(USERS):
            user_id = add_user(session, f"replan{u}@example.com")
            calendar_id = add_calendar(session, user_id)
            start = NOW + timedelta(minutes=30)
            event = Event(
                start=EventTime.at(start, "UTC"),
                end=EventTime.at(start + timedelta(hours=1), "UTC"),
                title=f"Standup {u}",
                reminders=Reminders.minutes(30, 10),
            )
            event_id = add_event(session, event, user_id=user_id, calendar_id=calendar_id)
            reschedule_reminders(session, event_id, now=NOW - timedelta(hours=1))
            users.append(user_id)
    return users


def drop_lead_30(sessions: sessionmaker[Session], user_id: uuid.UUID) -> None:
    """What ``PUT /me/preferences {"reminder_minutes": [10]}`` does, in one transaction."""
    with sessions.begin() as session:
        current = preferences.load_preferences(session, user_id)
        updated = preferences.parse_update({"reminder_minutes": [10]}, current)
        preferences.save_preferences(session, user_id, updated, BOX)
        reschedule_user(session, user_id, now=NOW)


def waiting_on_a_lock(sessions: sessionmaker[Session]) -> bool:
    with sessions() as session:
        waiting = session.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


def test_a_reminder_whose_lead_was_removed_while_a_sender_held_it_is_not_sent(
    pg_sessions: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    users = seed(pg_sessions)
    errors: list[BaseException] = []
    holder = pg_sessions()
    try:
        held = store_deliveries.claim_due(holder, NOW)  # the sender's claim, held
        assert held is not None
        assert held.lead_minutes == 30
        held_user = held.user_id

        def replan_all() -> None:
            try:
                for user_id in sorted(users, key=lambda u: u != held_user):
                    drop_lead_30(pg_sessions, user_id)
            except BaseException as err:  # surfaced below
                errors.append(err)

        replanner = threading.Thread(target=replan_all)
        replanner.start()
        # Until the replan waits for the held row or is done (it used to skip the row).
        while replanner.is_alive() and not waiting_on_a_lock(pg_sessions):
            time.sleep(0.01)
        holder.rollback()  # the sender died mid-send: no outcome recorded
        replanner.join(60)
        assert not replanner.is_alive()
    finally:
        holder.close()
    assert errors == []

    report = deliver_due(
        pg_sessions, dispatcher_for(smtp=smtp_server), now=NOW + timedelta(minutes=1)
    )

    assert smtp_server.mailbox.messages == []  # no reminder of the removed lead time
    assert report.sent == 0
    with pg_sessions() as session:
        pending = session.execute(
            sa.select(NotificationDelivery.user_id, NotificationDelivery.lead_minutes).where(
                NotificationDelivery.status == "pending"
            )
        ).all()
    assert sorted(pending) == sorted((user_id, 10) for user_id in users)
