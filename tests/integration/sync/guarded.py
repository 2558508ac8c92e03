"""Helpers of the deletion-guard and audit tests: two users on each database, Google
seeded as another client, both sides read back for comparison, metrics read by name."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from prometheus_client import REGISTRY

from calsync.domain.models import SYNCABLE_FIELDS, EventStatus
from calsync.providers.google.mapping import event_from_google
from calsync.store.events import attendees_by_event, to_event
from calsync.store.tables import Event as EventRow
from calsync.sync.audit import audit_calendar
from tests.integration.events.conftest import EventsApp, User
from tests.integration.sync.seed import timed


def seeded(app: EventsApp, email: str, events: int) -> User:
    """A connected user whose primary calendar holds `events` events, pulled once."""
    user = app.connect(email)
    remote = app.remote(user)
    for index in range(events):
        remote.insert(calendarId=user.primary, body=timed(index)).execute()
    pull(app, user)
    assert len(local_rows(app, user)) == events
    return user


def pull(app: EventsApp, user: User) -> None:
    """Pull the user's primary calendar a second after the last thing the test did (the
    clock stands still otherwise, and the sync log orders by time)."""
    app.clock.advance(seconds=1)
    app.pull(user)


def audit(app: EventsApp, user: User) -> None:
    """Audit the user's primary calendar now, as the audit job does."""
    audit_calendar(app.services, calendar_uuid(user))


def local_rows(app: EventsApp, user: User) -> dict[str, dict[str, Any]]:
    """The user's primary calendar as stored: Google id to the fields both sides change."""
    with app.services.sessions() as session:
        rows = list(
            session.scalars(sa.select(EventRow).where(EventRow.calendar_id == user.calendar_id))
        )
        attendees = attendees_by_event(session, [row.id for row in rows])
        return {
            str(row.google_event_id): _fields(to_event(row, attendees.get(row.id, ())))
            for row in rows
        }


def google_rows(app: EventsApp, user: User) -> dict[str, dict[str, Any]]:
    """What Google holds in the user's primary calendar, in the same shape."""
    answer = (
        app.remote(user)
        .list(calendarId=user.primary, showDeleted=True, singleEvents=False, maxResults=2500)
        .execute()
    )
    found = {}
    for item in answer.get("items", []):
        event = event_from_google(item, answer.get("timeZone", "UTC"))
        if event.status != EventStatus.CANCELLED or event.is_exception:
            found[item["id"]] = _fields(event)
    return found


def _fields(event: Any) -> dict[str, Any]:
    return {name: getattr(event, name) for name in SYNCABLE_FIELDS}


def calendar_json(app: EventsApp, user: User) -> dict[str, Any]:
    """The user's primary calendar as `GET /calendars` shows it."""
    answer = app.client.get("/calendars", headers=user.headers)
    assert answer.status_code == 200, answer.text
    [found] = [c for c in answer.json()["calendars"] if c["id"] == str(user.calendar_id)]
    return dict(found)


def logs(app: EventsApp, user: User, **params: str) -> list[dict[str, Any]]:
    """The user's sync log, newest first, as `GET /sync/logs` shows it."""
    answer = app.client.get("/sync/logs", headers=user.headers, params={"limit": 100, **params})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["logs"])


def counter(name: str, **labels: str) -> float:
    """The current value of an event counter of this process."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def set_title_behind_calsyncs_back(app: EventsApp, google_id: str, title: str) -> None:
    with app.services.sessions.begin() as session:
        session.execute(
            sa.update(EventRow).where(EventRow.google_event_id == google_id).values(title=title)
        )


def delete_behind_calsyncs_back(app: EventsApp, google_id: str) -> None:
    with app.services.sessions.begin() as session:
        session.execute(sa.delete(EventRow).where(EventRow.google_event_id == google_id))


def forget_sync_token(app: EventsApp, user: User) -> None:
    """Google answers the calendar's next incremental listing with 410."""
    app.control.invalidate_sync_tokens(user.primary)


def hide_events(app: EventsApp, user: User, *, keep: int, count: int | None = None) -> None:
    """Google's next `count` listings of the user's calendar (every one: None) come back
    with only `keep` events, though the others are still there."""
    app.control.add_fault(
        kind="drop_items",
        method="GET",
        path=f"/calendars/{user.primary}/events$",
        user=user.email,
        keep=keep,
        count=count,
    )


def calendar_uuid(user: User) -> uuid.UUID:
    assert user.calendar_id is not None
    return user.calendar_id
