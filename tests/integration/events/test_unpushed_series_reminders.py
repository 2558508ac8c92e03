"""An instance of a series made in calsync and not yet on Google is reminded at once, and
exactly once (IJ1).

Users in three zones create series through the API while Google is unreachable (every
request fails): one that ended a week ago and one that begins in a month, each with an
instance moved to this afternoon. The moved instances' reminders are planned when the
edit is saved, as the per-event planner plans them from nothing; the periodic refresh,
the push once Google is back, the pull that reads the push's echo and a refresh after
it leave the same rows; the sender sends each reminder once. Both databases.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.notify.deliveries import deliver_due
from calsync.notify.on_event_change import reschedule_reminders
from calsync.notify.reminders import refresh_reminders
from calsync.store.tables import Event as EventRow
from calsync.store.tables import NotificationDelivery
from calsync.store.tables import User as UserRow
from tests.integration.events.conftest import EventsApp, User
from tests.integration.notify.conftest import SmtpServer, dispatcher_for, smtp_server

pytestmark = pytest.mark.integration

__all__ = ["smtp_server"]  # the fixture, used by name

EVENTS = r"/calendar/v3/calendars/[^/]+/events"
ZONES = ["UTC", "America/Los_Angeles", "Pacific/Kiritimati"]


def series(app: EventsApp, user: User, zone: str, start: datetime, rule: str) -> str:
    end = start + timedelta(hours=1)
    body = {
        "title": "series",
        "start_time": start.isoformat(),
        "end_time": end.isoformat(),
        "timezone": zone,
        "recurrence": [rule],
    }
    return str(app.create(user, body)["id"])


def move(app: EventsApp, user: User, series_id: str, original: datetime, to: datetime) -> None:
    """Move the instance of `series_id` that begins at `original` to begin at `to`."""
    instance = f"{series_id}_{original:%Y%m%dT%H%M%SZ}"
    body = {"start_time": to.isoformat(), "end_time": (to + timedelta(hours=1)).isoformat()}
    answer = app.put(user, instance, body, scope="this")
    assert answer.status_code == 200, answer.text


def reminders(app: EventsApp) -> set[tuple[Any, ...]]:
    with app.services.sessions() as session:
        return reminders_in(session)


def replanned_alone(app: EventsApp) -> set[tuple[Any, ...]]:
    """The rows the per-event planner makes from nothing for every event (rolled back)."""
    with app.services.sessions.begin() as session:
        session.execute(sa.delete(NotificationDelivery))
        for event_id in session.scalars(sa.select(EventRow.id)).all():
            reschedule_reminders(session, event_id, now=app.clock())
        found = reminders_in(session)
        session.rollback()
    return found


def reminders_in(session: Session) -> set[tuple[Any, ...]]:
    """(owner, event, dedupe key, occurrence start, due, status) of every reminder row."""
    rows = session.scalars(
        sa.select(NotificationDelivery).where(NotificationDelivery.kind == "reminder")
    ).all()
    return {
        (r.user_id, r.event_id, r.dedupe_key, r.occurrence_start, r.due_at, r.status) for r in rows
    }


def test_a_moved_instance_of_an_unpushed_series_is_reminded_once(
    any_app: EventsApp,
    smtp_server: SmtpServer,
) -> None:
    app = any_app
    now = app.clock()
    people = [app.connect(f"unpushed{n}-{uuid.uuid4().hex[:6]}@example.com") for n in range(3)]
    with app.services.sessions.begin() as session:
        for user, zone in zip(people, ZONES, strict=True):
            session.execute(sa.update(UserRow).where(UserRow.id == user.id).values(timezone=zone))
    # Given Google is unreachable
    app.control.add_fault(kind="status", status=503, count=None, path=EVENTS)
    # When each user makes a series that ended a week ago and one that begins in a month,
    # and moves an instance of each to this afternoon
    soon = now + timedelta(hours=5)
    for n, (user, zone) in enumerate(zip(people, ZONES, strict=True)):
        ended_from = now - timedelta(days=21, hours=n)
        ended = series(app, user, zone, ended_from, "RRULE:FREQ=WEEKLY;COUNT=3")
        move(app, user, ended, ended_from + timedelta(days=14), soon + timedelta(minutes=n))
        later_from = now + timedelta(days=30, hours=n)
        later = series(app, user, zone, later_from, "RRULE:FREQ=WEEKLY")
        move(app, user, later, later_from, soon + timedelta(hours=1, minutes=n))
    assert all(r.status.value != "synced" for r in app.push_all())
    # Then each moved instance has its reminder at once, as the per-event planner plans it
    saved = reminders(app)
    for user in people:
        assert len([r for r in saved if r[0] == user.id]) == 2, user.email
    assert saved == replanned_alone(app)
    refresh_reminders(app.services.sessions, now=now)
    assert reminders(app) == saved
    # And once Google is back, the push, its echo and a refresh change none of them
    app.control.clear_faults()
    app.clock.advance(hours=2)
    app.push_all()
    with app.services.sessions() as session:
        states = session.scalars(sa.select(EventRow.sync_state)).all()
    assert set(states) == {"synced"}
    for user in people:
        app.pull(user)
    refresh_reminders(app.services.sessions, now=app.clock())
    assert reminders(app) == saved
    # And the sender sends each reminder once
    dispatcher = dispatcher_for(smtp=smtp_server)
    first = deliver_due(app.services.sessions, dispatcher, now=soon + timedelta(minutes=55))
    again = deliver_due(app.services.sessions, dispatcher, now=soon + timedelta(minutes=55))
    assert (first.sent, again.sent) == (2 * len(people), 0)
    for user in people:
        assert len(smtp_server.mailbox.to(user.email)) == 2, user.email
