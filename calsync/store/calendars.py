"""The calendar rows the sync keeps: the user's calendar list, sync status, held deletions.

The statements of `calsync.sync.calendar_list` (the rows made to match Google's calendar
list), `calsync.sync.pull` (whether a calendar is pulled at all, its ``error`` status)
and `calsync.sync.deletion_guard` (the hold on the row). The queue and lease columns are
`calsync.store.pull_queue` and `calsync.store.pull_leases`; audit slots are
`calsync.store.audit_slots`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.tables import Calendar, User

__all__ = [
    "ListedCalendars",
    "delete",
    "is_pulled",
    "mark_sync_error",
    "match_calendar_list",
    "read_hold",
    "save_hold",
]


def is_pulled(session: Session, calendar_id: uuid.UUID) -> bool | None:
    """Whether the calendar is pulled: selected, and its owner active (not disabled, not
    waiting to sign in again). None when there is no such calendar."""
    row = session.execute(
        sa.select(Calendar.selected, User.status)
        .outerjoin(User, User.id == Calendar.user_id)
        .where(Calendar.id == calendar_id)
    ).one_or_none()
    if row is None:
        return None
    return bool(row.selected) and row.status == "active"


def mark_sync_error(session: Session, calendar_id: uuid.UUID) -> bool:
    """Set the calendar's sync status to ``error``; False when there is no such calendar."""
    result = session.execute(
        sa.update(Calendar)
        .where(Calendar.id == calendar_id)
        .values(last_sync_status="error")
        .returning(Calendar.id)
    )
    return result.first() is not None


@dataclass(frozen=True, slots=True)
class ListedCalendars:
    """What `match_calendar_list` did: the local ids of the calendars added and kept, and
    the local and Google ids of the user's calendars the list no longer has (not
    deleted yet: see `delete`)."""

    added: list[uuid.UUID]
    kept: list[uuid.UUID]
    gone: list[tuple[uuid.UUID, str]]


def match_calendar_list(
    session: Session, user_id: uuid.UUID, listed: Mapping[str, Mapping[str, object]]
) -> ListedCalendars:
    """Make the user's calendar rows hold `listed` (Google calendar id -> the row's
    described columns: ``summary``, ``timezone``, ``access_role``, ``is_primary``,
    ``selected``): a row added for each new calendar, the others described anew, in
    the order of `listed`."""
    existing = {
        row.provider_calendar_id: row
        for row in session.scalars(sa.select(Calendar).where(Calendar.user_id == user_id))
    }
    added: list[uuid.UUID] = []
    kept: list[uuid.UUID] = []
    for google_id, described in listed.items():
        row = existing.get(google_id)
        if row is None:
            row = Calendar(user_id=user_id, provider_calendar_id=google_id)
            session.add(row)
            _describe(row, described)
            session.flush()
            added.append(row.id)
        else:
            _describe(row, described)
            kept.append(row.id)
    gone = [(row.id, google_id) for google_id, row in existing.items() if google_id not in listed]
    return ListedCalendars(added, kept, gone)


def _describe(row: Calendar, described: Mapping[str, object]) -> None:
    for name, value in described.items():
        setattr(row, name, value)


def delete(session: Session, calendar_ids: Sequence[uuid.UUID]) -> None:
    """Delete the calendars (their events and channels go with them: ON DELETE CASCADE)."""
    if calendar_ids:
        session.execute(sa.delete(Calendar).where(Calendar.id.in_(calendar_ids)))


def read_hold(session: Session, calendar_id: uuid.UUID) -> tuple[frozenset[str], datetime] | None:
    """The deletions held on a calendar (their Google ids) and since when; None: none."""
    row = session.execute(
        sa.select(Calendar.held_deletions, Calendar.deletions_held_at).where(
            Calendar.id == calendar_id
        )
    ).one_or_none()
    if row is None or row.deletions_held_at is None:
        return None
    return frozenset(row.held_deletions or ()), row.deletions_held_at


def save_hold(
    session: Session,
    calendar_id: uuid.UUID,
    held: tuple[frozenset[str], datetime] | None,
    *,
    audit_at: datetime | None,
) -> None:
    """Store the deletions held on a calendar (None: none), with its sync status (``held``
    while a hold stands, else ``ok``); while one stands, the calendar's audit is due at
    `audit_at`."""
    values: Mapping[str, object]
    if held is None:
        values = {
            "held_deletions": sa.null(),
            "deletions_held_at": None,
            "last_sync_status": "ok",
        }
    else:
        ids, since = held
        values = {
            "held_deletions": sorted(ids),
            "deletions_held_at": since,
            "last_sync_status": "held",
            "next_audit_at": audit_at,
        }
    session.execute(sa.update(Calendar).where(Calendar.id == calendar_id).values(**values))
