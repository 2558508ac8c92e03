"""The per-calendar sync lease: one pull at a time per calendar, across processes.

A lease is a row-level compare-and-set on ``calendars`` (works the same on PostgreSQL and
SQLite) with an expiry, so a worker that dies mid-pull blocks its calendar only until the
lease runs out. Pulls are idempotent, so an expired lease taken over while the first
holder still runs costs work, not correctness: the sync token is written with a check
that the lease is still held.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.tables import Calendar

__all__ = [
    "acquire",
    "acquire_selected",
    "held",
    "release",
    "release_held_by_process",
    "released",
    "still_held",
]

_calendars = cast(sa.Table, Calendar.__table__)


def acquire(
    session: Session, calendar_id: uuid.UUID, *, owner: str, now: datetime, ttl: timedelta
) -> bool:
    """Take the lease of `calendar_id` for `owner` until `now + ttl`. False if held."""
    result = session.execute(_take(calendar_id, owner, now, ttl))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def acquire_selected(
    session: Session,
    calendar_id: uuid.UUID,
    *,
    owner: str,
    now: datetime,
    ttl: timedelta,
    also: Mapping[str, Any] | None = None,
    returning: Sequence[sa.ColumnElement[Any]] = (),
) -> sa.Row[Any] | None:
    """`acquire` for a calendar that is selected, in the same one statement that returns
    the calendar's columns (as updated) and `returning`, and sets the columns in `also`.
    None when the calendar is missing, not selected or held by another owner (nothing
    changed then; the caller reads the row to tell which)."""
    statement = (
        _take(calendar_id, owner, now, ttl)
        .where(_calendars.c.selected.is_(True))
        .values(**(also or {}))
        .returning(*_calendars.c, *returning)
    )
    return session.execute(statement).one_or_none()


def _take(calendar_id: uuid.UUID, owner: str, now: datetime, ttl: timedelta) -> sa.Update:
    return (
        sa.update(_calendars)
        .where(
            _calendars.c.id == calendar_id,
            sa.or_(
                _calendars.c.sync_lease_until.is_(None),
                _calendars.c.sync_lease_until < now,
                _calendars.c.sync_lease_owner == owner,
            ),
        )
        .values(sync_lease_owner=owner, sync_lease_until=now + ttl)
    )


def still_held(session: Session, calendar_id: uuid.UUID, *, owner: str) -> bool:
    """Whether `owner` still holds the lease; locks the row until the transaction ends
    (SQLite, which has no ``FOR UPDATE``, serialises writers by itself).

    The lock is ``FOR NO KEY UPDATE``: it keeps other pulls and kicks out, but not the
    foreign-key checks of event writes (``FOR KEY SHARE`` on the calendar row), which
    a plain ``FOR UPDATE`` would block - a push updating an event while this pull
    updates the same event deadlocked (tests/faults/test_regressions.py)."""
    return held(session, calendar_id, owner=owner) is not None


def held(
    session: Session,
    calendar_id: uuid.UUID,
    *,
    owner: str,
    also: Sequence[sa.ColumnElement[Any]] = (),
) -> sa.Row[Any] | None:
    """`still_held` (the same lock) that returns the values of `also` (columns of the
    calendar row, or subqueries correlated to it) read in the same statement when
    `owner` still holds the lease, else None."""
    query = (
        sa.select(_calendars.c.sync_lease_owner, *also)
        .where(_calendars.c.id == calendar_id)
        .with_for_update(key_share=True)
    )
    row = session.execute(query).one_or_none()
    return row if row is not None and row.sync_lease_owner == owner else None


def release(session: Session, calendar_id: uuid.UUID, *, owner: str) -> None:
    """Give the lease up (a no-op if someone else holds it by now)."""
    session.execute(
        sa.update(_calendars)
        .where(_calendars.c.id == calendar_id, _calendars.c.sync_lease_owner == owner)
        .values(sync_lease_owner=None, sync_lease_until=None)
    )


def released(owner: str) -> dict[str, sa.ColumnElement[Any]]:
    """The ``SET`` values that give the lease up if `owner` holds it (else leave it), for
    a caller that writes other columns of the calendar row in the same statement."""
    held = _calendars.c.sync_lease_owner == owner
    return {
        "sync_lease_owner": sa.case((held, None), else_=_calendars.c.sync_lease_owner),
        "sync_lease_until": sa.case((held, None), else_=_calendars.c.sync_lease_until),
    }


def release_held_by_process(session: Session, process: str) -> int:
    """Give up every lease held by the threads of `process` (owners ``<process>:<thread>``),
    for a worker that stops with pulls cut off; returns how many were held."""
    result = session.execute(
        sa.update(_calendars)
        .where(_calendars.c.sync_lease_owner.startswith(f"{process}:", autoescape=True))
        .values(sync_lease_owner=None, sync_lease_until=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
