"""The calls the events API and the sync engine make whenever event rows change.

They run inside the caller's transaction (they never commit, never touch the network and
never enqueue), so a rolled-back change leaves no notice behind and a committed one always
has its notices and reminders: the scheduler sends them.

- :func:`event_changed` records change notices for the people of the event other than the
  one who changed it (see :mod:`calsync.notify.changes`).
- :func:`reschedule_reminders` replans the event's reminders (see
  :mod:`calsync.notify.reminders`): moved occurrences get new reminders, removed ones lose
  their pending reminders, and nothing already sent is sent again.
- :func:`events_changed` and :func:`reschedule_many` do the same for many events at once
  (a pull may change thousands), in a few queries per batch instead of a few per event.

Typical use, after writing the row::

    event_changed(session, before=old, after=new, event_id=row.id,
                  actor_user_id=user.id, source="api")
    reschedule_reminders(session, row.id)
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from calsync.domain.models import Event
from calsync.notify.changes import Source, _change_id, _payload, describe_change, event_changed
from calsync.notify.payloads import instant_of
from calsync.notify.preferences import Preferences, load_many
from calsync.notify.reminders import (
    DEFAULT_HORIZON,
    _reschedule_row,
    _upcoming,
    reschedule_reminders,
)
from calsync.store.chunks import chunks
from calsync.store.tables import Event as EventRow
from calsync.store.tables import NotificationDelivery, User, utcnow

__all__ = [
    "EventChange",
    "event_changed",
    "events_changed",
    "reschedule_many",
    "reschedule_reminders",
]


@dataclass(frozen=True, slots=True)
class EventChange:
    """One changed event for :func:`events_changed`: its local id and both versions."""

    event_id: uuid.UUID
    before: Event | None
    after: Event | None


def events_changed(
    session: Session,
    changes: Sequence[EventChange],
    *,
    actor_user_id: uuid.UUID | None,
    source: Source,
    now: datetime | None = None,
) -> int:
    """:func:`event_changed` for each of ``changes`` (same recipients, payloads and dedupe
    keys), in three queries and one insert whatever their number. Call it while the rows
    still exist (before deleting them), so that their owners are found. Returns how many
    delivery rows were recorded. Does not commit.
    """
    noticed = []
    for change in changes:
        described = describe_change(change.before, change.after)
        if described is None or (described[0] == "created" and source != "api"):
            continue
        noticed.append((change, *described))
    if not noticed:
        return 0
    now = now or utcnow()
    owners: dict[uuid.UUID, uuid.UUID] = {}
    for chunk in chunks([c.event_id for c, _, _ in noticed]):
        owners.update(
            session.execute(
                sa.select(EventRow.id, EventRow.user_id).where(EventRow.id.in_(chunk))
            ).all()
        )
    emails: set[str] = set()
    for change, _, _ in noticed:
        for version in (change.before, change.after):
            if version is not None:
                emails |= {a.email for a in version.attendees}
                if version.organizer_email:
                    emails.add(version.organizer_email)
    users: dict[uuid.UUID, str] = {}
    conditions: list[sa.ColumnElement[bool]] = [User.id.in_(sorted(set(owners.values())))]
    for email_chunk in chunks(sorted(emails)):
        conditions.append(User.email.in_(email_chunk))
    users.update(
        session.execute(
            sa.select(User.id, User.email).where(sa.or_(*conditions), User.status != "disabled")
        ).all()
    )
    by_email = {email: user_id for user_id, email in users.items()}
    recipients_of = {
        change.event_id: _recipients(change, owners.get(change.event_id), users, by_email)
        - ({actor_user_id} if actor_user_id is not None else set())
        for change, _, _ in noticed
    }
    if actor_user_id is None and source == "sync":
        for change, _, _ in noticed:
            organizers = {v.organizer_email for v in (change.before, change.after) if v}
            recipients_of[change.event_id] -= {by_email[e] for e in organizers if e in by_email}
    prefs = load_many(session, set().union(*recipients_of.values()))
    rows: list[dict[str, Any]] = []
    for change, kind, fields in noticed:
        reference = change.after if change.after is not None else change.before
        assert reference is not None
        uid = reference.provider_event_id or str(change.event_id)
        payload = _payload(kind, fields, source, change.before, change.after, uid)
        change_id = _change_id(payload)
        occurrence = instant_of(reference.start, reference.timezone or "UTC")
        rows.extend(
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "event_id": change.event_id,
                "kind": "change",
                "channel": channel,
                "occurrence_start": occurrence,
                "lead_minutes": None,
                "dedupe_key": f"change|{change_id}|{user_id}|{channel}",
                "status": "pending",
                "due_at": now,
                "attempts": 0,
                "payload": payload,
                "created_at": now,
                "updated_at": now,
            }
            for user_id in sorted(recipients_of[change.event_id])
            if prefs[user_id].change_notices
            for channel in prefs[user_id].channels
        )
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = session.execute(
        insert(NotificationDelivery)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(NotificationDelivery.id),
        rows,
    )
    return len(result.all())


def _recipients(
    change: EventChange,
    owner: uuid.UUID | None,
    users: dict[uuid.UUID, str],
    by_email: dict[str, uuid.UUID],
) -> set[uuid.UUID]:
    """The active users among the event's owner, organizer and attendees."""
    found = {owner} if owner is not None and owner in users else set()
    for version in (change.before, change.after):
        if version is None:
            continue
        emails = {a.email for a in version.attendees}
        if version.organizer_email:
            emails.add(version.organizer_email)
        found |= {by_email[e] for e in emails if e in by_email}
    return found


def reschedule_many(
    session: Session,
    event_ids: Collection[uuid.UUID],
    *,
    now: datetime | None = None,
    horizon: timedelta = DEFAULT_HORIZON,
) -> None:
    """:func:`reschedule_reminders` for each of ``event_ids`` (inserted, changed or deleted
    rows, deleted ones included), with the same outcome. Events with nothing to plan and
    no pending reminder (most of a big pull: far in the past or the future) cost only
    their share of three batched queries. Call it after writing the rows. Does not commit.
    """
    now = now or utcnow()
    ids = list(dict.fromkeys(event_ids))
    upcoming: dict[uuid.UUID, EventRow] = {}
    pending: set[uuid.UUID] = set()
    exceptions: dict[tuple[uuid.UUID, str], list[uuid.UUID]] = {}
    for chunk in chunks(ids):
        upcoming.update(_upcoming_rows(session, chunk, now, horizon))
        pending |= _with_pending_reminders(session, chunk)
        for event_id, calendar_id, series_id in session.execute(
            sa.select(EventRow.id, EventRow.calendar_id, EventRow.recurring_event_id).where(
                EventRow.id.in_(chunk), EventRow.recurring_event_id.is_not(None)
            )
        ):
            exceptions.setdefault((calendar_id, str(series_id)), []).append(event_id)
    masters, orphans = _masters(session, exceptions)
    for chunk in chunks(masters):
        upcoming.update(_upcoming_rows(session, chunk, now, horizon))
        pending |= _with_pending_reminders(session, chunk)
    cache: dict[uuid.UUID, tuple[Preferences, str]] = {}
    for row in upcoming.values():
        _reschedule_row(session, row, now=now, horizon=horizon, cache=cache)
    for event_id in sorted((pending - upcoming.keys()) | set(orphans)):
        reschedule_reminders(session, event_id, now=now, horizon=horizon)


def _upcoming_rows(
    session: Session, event_ids: Sequence[uuid.UUID], now: datetime, horizon: timedelta
) -> dict[uuid.UUID, EventRow]:
    """The rows of ``event_ids`` that may have reminders to plan, freshly read (the
    caller may have changed them with Core statements since the session loaded them)."""
    query = _upcoming(now, horizon).where(EventRow.id.in_(event_ids))
    rows = session.scalars(query.execution_options(populate_existing=True))
    return {row.id: row for row in rows}


def _masters(
    session: Session, exceptions: dict[tuple[uuid.UUID, str], list[uuid.UUID]]
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """The local ids of the series masters of ``exceptions`` (by calendar and series id),
    and the exceptions whose master is not stored (planned on their own)."""
    by_calendar: dict[uuid.UUID, set[str]] = {}
    for calendar_id, series_id in exceptions:
        by_calendar.setdefault(calendar_id, set()).add(series_id)
    masters: list[uuid.UUID] = []
    orphans: list[uuid.UUID] = []
    for calendar_id, series_ids in by_calendar.items():
        found: set[str] = set()
        for chunk in chunks(sorted(series_ids)):
            for master_id, google_id in session.execute(
                sa.select(EventRow.id, EventRow.google_event_id).where(
                    EventRow.calendar_id == calendar_id, EventRow.google_event_id.in_(chunk)
                )
            ):
                masters.append(master_id)
                found.add(str(google_id))
        for series_id in series_ids - found:
            orphans.extend(exceptions[(calendar_id, series_id)])
    return masters, orphans


def _with_pending_reminders(session: Session, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    return {
        event_id
        for event_id in session.scalars(
            sa.select(NotificationDelivery.event_id)
            .where(
                NotificationDelivery.event_id.in_(event_ids),
                NotificationDelivery.kind == "reminder",
                NotificationDelivery.status == "pending",
            )
            .distinct()
        )
        if event_id is not None
    }
