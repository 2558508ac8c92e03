"""Two replans of one user's reminders at once, or a replan beside a sender (PostgreSQL).

The sender claims a due reminder (``FOR UPDATE SKIP LOCKED``) and holds it while it
sends; a replan (an edit of an event) locks the rows it moves until it commits. A user
who removes a lead time at that moment replans their reminders, and the replan used to
skip the locked row (``SKIP LOCKED`` too): when the sender's transaction ended without an
outcome (the process died mid-send), or the edit committed its move, the row stayed
pending for the removed lead and was sent. The interleaving is made, not hoped for: the
test holds the other transaction open until the replan is seen waiting on a row lock (or
has finished, as it did before the fix), then commits it. SQLite has one writer at a
time: its replans never meet a held row (decision JP1).
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import Event, EventTime, Reminders
from calsync.notify import preferences
from calsync.notify.deliveries import deliver_due
from calsync.notify.reminders import reschedule_reminders, reschedule_user
from calsync.store import deliveries as store_deliveries
from calsync.store.tables import Event as EventRow
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

NOW = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)
USERS = 3


def standup(start: datetime, title: str) -> Event:
    return Event(
        start=EventTime.at(start, "UTC"),
        end=EventTime.at(start + timedelta(hours=1), "UTC"),
        title=title,
        reminders=Reminders.minutes(30, 10),
    )


def seed(sessions: sessionmaker[Session], *, start: datetime) -> list[uuid.UUID]:
    """USERS users, each with one event at `start` and reminders 30 and 10 minutes
    before it."""
    users = []
    with sessions.begin() as session:
        for u in range(USERS):
            user_id = add_user(session, f"replan{u}@example.com")
            calendar_id = add_calendar(session, user_id)
            event = standup(start, f"Standup {u}")
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


def drop_lead_30_beside(
    sessions: sessionmaker[Session], users: list[uuid.UUID], holder: Session
) -> None:
    """Every user drops lead 30 (the holder's user first) while `holder` is open; `holder`
    commits once that replan waits on a row lock or is done (it used to skip the row)."""
    errors: list[BaseException] = []

    def replan_all() -> None:
        try:
            for user_id in users:
                drop_lead_30(sessions, user_id)
        except BaseException as err:  # surfaced below
            errors.append(err)

    replanner = threading.Thread(target=replan_all)
    replanner.start()
    while replanner.is_alive() and not waiting_on_a_lock(sessions):
        time.sleep(0.01)
    holder.commit()
    replanner.join(60)
    assert not replanner.is_alive()
    assert errors == []


def pending_leads(sessions: sessionmaker[Session]) -> list[Any]:
    with sessions() as session:
        return sorted(
            session.execute(
                sa.select(NotificationDelivery.user_id, NotificationDelivery.lead_minutes).where(
                    NotificationDelivery.status == "pending"
                )
            ).all()
        )


def test_a_reminder_whose_lead_was_removed_while_a_sender_held_it_is_not_sent(
    pg_sessions: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    users = seed(pg_sessions, start=NOW + timedelta(minutes=30))
    with pg_sessions() as holder:
        held = store_deliveries.claim_due(holder, NOW)  # the sender's claim, held
        assert held is not None
        assert held.lead_minutes == 30
        held_user = held.user_id
        # ...and its process dies mid-send: the transaction ends with no outcome.
        drop_lead_30_beside(pg_sessions, sorted(users, key=lambda u: u != held_user), holder)

    report = deliver_due(
        pg_sessions, dispatcher_for(smtp=smtp_server), now=NOW + timedelta(minutes=1)
    )

    assert smtp_server.mailbox.messages == []  # no reminder of the removed lead time
    assert report.sent == 0
    assert pending_leads(pg_sessions) == sorted((user_id, 10) for user_id in users)


def test_a_lead_removed_while_an_edit_of_the_event_replans_it_is_not_sent(
    pg_sessions: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    start = NOW + timedelta(hours=2)
    users = seed(pg_sessions, start=start)
    with pg_sessions() as holder:
        # An edit of the first user's event (its title: both reminders' payloads move),
        # replanned in its transaction, not yet committed.
        event_id = holder.scalars(sa.select(EventRow.id).where(EventRow.user_id == users[0])).one()
        update_event(holder, event_id, standup(start, "Standup, new room"))
        reschedule_reminders(holder, event_id, now=NOW)
        drop_lead_30_beside(pg_sessions, users, holder)

    due = start - timedelta(minutes=30)
    report = deliver_due(pg_sessions, dispatcher_for(smtp=smtp_server), now=due)

    assert smtp_server.mailbox.messages == []  # no reminder of the removed lead time
    assert report.sent == 0
    assert pending_leads(pg_sessions) == sorted((user_id, 10) for user_id in users)
