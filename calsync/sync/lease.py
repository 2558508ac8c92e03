"""The per-calendar sync lease: one pull at a time per calendar, across processes.

A lease is a row-level compare-and-set on ``calendars`` (works the same on PostgreSQL and
SQLite) with an expiry, so a worker that dies mid-pull blocks its calendar only until the
lease runs out. Pulls are idempotent, so an expired lease taken over while the first
holder still runs costs work, not correctness: the sync token is written with a check
that the lease is still held.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.tables import Calendar, User

__all__ = [
    "NOW",
    "acquire_selected",
    "acquire_selected_statement",
    "release",
    "release_held_by_process",
    "still_held",
]

_calendars = cast(sa.Table, Calendar.__table__)
_users = cast(sa.Table, User.__table__)

#: The parameters of the statements built once (`acquire_selected_statement`,
#: `still_held`'s); `NOW` is the time `acquire_selected` is given, for `also` values.
_CALENDAR_ID = sa.bindparam("lease_calendar_id", type_=_calendars.c.id.type)
_OWNER = sa.bindparam("lease_owner", type_=_calendars.c.sync_lease_owner.type)
NOW: Final = sa.bindparam("lease_now", type_=_calendars.c.sync_lease_until.type)
_UNTIL = sa.bindparam("lease_until", type_=_calendars.c.sync_lease_until.type)


def acquire_selected(
    session: Session | sa.Connection,
    calendar_id: uuid.UUID,
    *,
    owner: str,
    now: datetime,
    ttl: timedelta,
    also: Mapping[str, Any] | None = None,
    statement: sa.Update | None = None,
) -> sa.Row[Any] | None:
    """Take the lease of a selected calendar of an active user for `owner` until
    `now + ttl` (if it is free, expired or already `owner`'s), in one statement that
    also returns the calendar's columns (as updated) and sets the columns in `also`.
    None when the calendar is missing, not selected, its owner is not active (disabled,
    or must sign in again) or another owner holds it (nothing changed then; the caller
    reads the rows to tell which).

    `statement`: `acquire_selected_statement(also)` built once by a caller that takes
    leases often (its `also` may use `NOW` for `now`); `also` is then not given.

    It returns the calendar's own columns only: a subquery in ``RETURNING`` is not
    correlated on SQLite (it compiles column names unqualified, so ``oauth_tokens.user_id
    = calendars.user_id`` became ``user_id = user_id`` and read the first user's token
    for every calendar)."""
    if statement is None:
        statement = acquire_selected_statement(also)
    elif also:
        raise TypeError("give `also` to acquire_selected_statement")
    parameters = {
        _CALENDAR_ID.key: calendar_id,
        _OWNER.key: owner,
        NOW.key: now,
        _UNTIL.key: now + ttl,
    }
    return session.execute(statement, parameters).one_or_none()


#: The users whose calendars sync: not disabled, not waiting to sign in again.
_ACTIVE_USERS: Final = sa.select(_users.c.id).where(_users.c.status == "active")


def acquire_selected_statement(also: Mapping[str, Any] | None = None) -> sa.Update:
    """The statement of `acquire_selected`, with its calendar, owner and times as
    parameters, to build once (its compiled form is then reused)."""
    return (
        sa.update(_calendars)
        .where(
            _calendars.c.id == _CALENDAR_ID,
            sa.or_(
                _calendars.c.sync_lease_until.is_(None),
                _calendars.c.sync_lease_until < NOW,
                _calendars.c.sync_lease_owner == _OWNER,
            ),
            _calendars.c.selected.is_(True),
            _calendars.c.user_id.in_(_ACTIVE_USERS),
        )
        .values(sync_lease_owner=_OWNER, sync_lease_until=_UNTIL, **(also or {}))
        .returning(*_calendars.c)
    )


def still_held(session: Session, calendar_id: uuid.UUID, *, owner: str) -> bool:
    """Whether `owner` still holds the lease; locks the row until the transaction ends
    (SQLite, which has no ``FOR UPDATE``, serialises writers by itself).

    The lock is ``FOR NO KEY UPDATE``: it keeps other pulls and kicks out, but not the
    foreign-key checks of event writes (``FOR KEY SHARE`` on the calendar row), which
    a plain ``FOR UPDATE`` would block - a push updating an event while this pull
    updates the same event deadlocked (tests/faults/test_regressions.py)."""
    owner_now = session.execute(_HELD, {_CALENDAR_ID.key: calendar_id}).scalar_one_or_none()
    return owner_now == owner


#: `still_held`'s statement, built once.
_HELD: Final = (
    sa.select(_calendars.c.sync_lease_owner)
    .where(_calendars.c.id == _CALENDAR_ID)
    .with_for_update(key_share=True)
)


def release(session: Session, calendar_id: uuid.UUID, *, owner: str) -> None:
    """Give the lease up (a no-op if someone else holds it by now)."""
    session.execute(
        sa.update(_calendars)
        .where(_calendars.c.id == calendar_id, _calendars.c.sync_lease_owner == owner)
        .values(sync_lease_owner=None, sync_lease_until=None)
    )


def release_held_by_process(session: Session, process: str) -> int:
    """Give up every lease held by the threads of `process` (owners ``<process>:<thread>``),
    for a worker that stops with pulls cut off; returns how many were held."""
    result = session.execute(
        sa.update(_calendars)
        .where(_calendars.c.sync_lease_owner.startswith(f"{process}:", autoescape=True))
        .values(sync_lease_owner=None, sync_lease_until=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
