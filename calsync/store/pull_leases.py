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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store import pull_queue
from calsync.store.events import UNRECORDED
from calsync.store.tables import Calendar, User

__all__ = [
    "NOW",
    "FinishedPull",
    "acquire_selected",
    "acquire_selected_statement",
    "finish_pull",
    "release",
    "release_held_by_process",
    "start_pull",
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


#: PostgreSQL's "Asynchronous Commit" for the transaction of the statement whose
#: condition it is: ``set_config(..., is_local => true)`` is ``SET LOCAL``, made by the
#: statement itself rather than by a round trip of its own (decision HP2). The commit
#: then returns before the WAL flush (an fsync), which follows within three
#: ``wal_writer_delay``s, or at once when a later transaction commits synchronously (the
#: WAL is flushed in order).
_NO_FLUSH_WAIT: Final = sa.func.set_config("synchronous_commit", "off", True) == "off"
_COMMIT_MODE: Final = sa.func.current_setting("synchronous_commit").label("commit_mode")


def without_flush_wait(statement: sa.Update) -> sa.Update:
    """`statement` (an ``UPDATE ... RETURNING``; PostgreSQL only), its transaction
    committing without waiting for the WAL flush (`_NO_FLUSH_WAIT`); its rows also say
    the mode then in force (``commit_mode``: ``off``)."""
    return statement.where(_NO_FLUSH_WAIT).returning(_COMMIT_MODE)


#: Taking the lease of a pull, which also starts it (`pull_queue.pull_started`); built once.
_START_PULL: Final = acquire_selected_statement(pull_queue.pull_started(NOW))
#: The same on PostgreSQL, committed without waiting for the WAL flush (decision HP2).
_START_PULL_NO_WAIT: Final = without_flush_wait(_START_PULL)


def start_pull(
    connection: Session | sa.Connection,
    calendar_id: uuid.UUID,
    *,
    owner: str,
    now: datetime,
    ttl: timedelta,
) -> sa.Row[Any] | None:
    """`acquire_selected` for a pull, which starts it on the calendar row (``dirty``
    cleared, ``last_pull_at`` set, the queue slot taken if free): the calendar's columns,
    or None when the lease was not taken.

    On PostgreSQL the statement commits without waiting for its WAL flush (decision
    HP2; its row also has ``commit_mode``): a crash that loses it loses a lease whose
    pull then cannot finish (`finish_pull` finds the lease not its own and writes
    nothing), as a lease that ran out does."""
    statement = _START_PULL_NO_WAIT if _is_postgresql(connection) else _START_PULL
    return acquire_selected(
        connection, calendar_id, owner=owner, now=now, ttl=ttl, statement=statement
    )


def _is_postgresql(connection: Session | sa.Connection) -> bool:
    bind = connection.get_bind() if isinstance(connection, Session) else connection
    return bind.dialect.name == "postgresql"


_NOW = sa.bindparam("now", type_=_calendars.c.last_synced_at.type)
#: The end of a pull, first thing in the transaction that stores the listing: if the
#: lease is still this pull's, the new sync token, the status, the lease given back, the
#: queue slot freed or kept (`pull_queue.pull_finished`); no row if another worker took
#: the lease over (the transaction then writes nothing). The update locks the calendar
#: row until the commit (``FOR NO KEY UPDATE``, as `still_held` does), so nothing it
#: decided can change before the events are stored. Built once.
_FINISH: Final = (
    sa.update(_calendars)
    .where(_calendars.c.id == _CALENDAR_ID, _calendars.c.sync_lease_owner == _OWNER)
    .values(
        sync_token=sa.bindparam("sync_token", type_=_calendars.c.sync_token.type),
        last_synced_at=_NOW,
        # The safety-net poll moves to the calendar's next slot (`kicks.poll_slot`): of
        # the long period while it has a live channel, else of the short one (`polling`).
        next_poll_at=pull_queue.next_poll_expression(
            _calendars.c.id,
            _NOW,
            sa.bindparam("poll_often", type_=_calendars.c.next_poll_at.type),
            sa.bindparam("poll_rarely", type_=_calendars.c.next_poll_at.type),
        ),
        # "held" stays while held deletions wait for a second listing (deletion_guard).
        last_sync_status=sa.case((_calendars.c.deletions_held_at.is_(None), "ok"), else_="held"),
        sync_lease_owner=None,
        sync_lease_until=None,
        **pull_queue.pull_finished(_NOW),
    )
    .returning(_calendars.c.last_pull_at, _calendars.c.dirty)
)


#: On PostgreSQL the pull's storing transaction commits asynchronously (decision HD1),
#: set by `_FINISH` itself (decision HP2: it was a ``SET LOCAL`` statement of its own);
#: the row also gives the owner's email, joined (``UPDATE ... FROM users``, which locks
#: no user row), for the change notices (decision IC1). SQLite's ``RETURNING`` may not
#: name a joined table, so there the email stays unread (None).
_FINISH_NO_WAIT: Final = (
    without_flush_wait(_FINISH)
    .where(_users.c.id == _calendars.c.user_id)
    .returning(_users.c.email.label("owner_email"))
)


@dataclass(frozen=True, slots=True)
class FinishedPull:
    """What `finish_pull` found: when the pull started (`last_pull_at`), whether the
    calendar became dirty meanwhile (`again`: one more pull must follow), and the email
    of the calendar's owner as the transaction reads it (`owner_email`; None when not
    read: SQLite)."""

    last_pull_at: datetime | None
    again: bool
    owner_email: str | None


def finish_pull(
    session: Session,
    calendar_id: uuid.UUID,
    *,
    owner: str,
    sync_token: str | None,
    now: datetime,
    poll_often: datetime,
    poll_rarely: datetime,
) -> FinishedPull | None:
    """End `owner`'s pull of the calendar (see `_FINISH`): what it found
    (`FinishedPull`), or None when another worker took the lease over (nothing is
    written then).

    On PostgreSQL the transaction then commits without waiting for its WAL to reach the
    disk (`_FINISH_NO_WAIT`, decisions HD1 and HP2): a crash that loses it leaves the
    calendar as a worker dying before its commit does (the lease runs out, the old sync
    token lists the same changes again), and the next synchronous commit of anything
    flushes it.
    """
    postgresql = _is_postgresql(session)
    finished = session.execute(
        _FINISH_NO_WAIT if postgresql else _FINISH,
        {
            _CALENDAR_ID.key: calendar_id,
            "sync_token": sync_token,
            "now": now,
            _OWNER.key: owner,
            "poll_often": poll_often,
            "poll_rarely": poll_rarely,
        },
        # a calendar row: the read model's triggers cannot record it (decision IK2)
        execution_options=UNRECORDED,
    ).one_or_none()
    if finished is None:
        return None
    email = finished.owner_email if postgresql else None
    return FinishedPull(finished.last_pull_at, bool(finished.dirty), email)
