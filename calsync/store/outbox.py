"""The outbox: local changes waiting to be written to Google, and who may write them now.

An API write adds its outbox row in the same transaction as the event change
(`add`), so nothing accepted is ever lost. Every writer adds it in the transaction that
also moves the event's ``version`` on (`calsync.store.event_changes`, the pull's merge):
a row always stands for a version of its event, and is committed with it.

The push (`calsync.sync.write_back`) works per event, not per row: it writes the event's
*current* state once, which is how several queued edits collapse into one Google write,
and then closes the event's rows (`close`) *if the event is still at the version it
wrote*: then every pending row stands for that version or an older one, whose edits the
written state holds. Otherwise nothing is closed and the push writes again. Row ids do
not say which version a row stands for: the push's reads of the event and of its rows
share no snapshot, and an edit can commit between them. Failed attempts move the rows'
`due_at` forward (`retry_later`) or fail them for good (`close(..., failed=True)`).

`claim_event` / `release_event` are a lease on the event row: one push job at a time
writes an event to Google, across processes; a crashed worker's lease expires. On
PostgreSQL their transactions commit without waiting for the WAL flush (decision IM2,
as the pull's lease, HP2): a server crash can lose a lease taken or given back just
before it, which is then as a lease that ran out or one still held until it runs out.

`attempts` counts the writes sent for a row. A failed write counts when it fails
(`retry_later`); an insert counts before it is sent (`count_attempt`), so that an insert
whose answer was lost (a crash, a database failure after Google accepted it) is still
known to have been tried: `never_sent` is then false, and the push deletes such an
event on Google instead of assuming Google never had it.

`due_events` is the scheduler sweep's query: events with pending rows that are due,
whose owner is active and not paused, that are not waiting for a manual conflict
decision and not leased by a running push.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.calendar_views import VIEW_COLUMNS, CalendarView, view_of_row
from calsync.store.events import KEEP_UPDATED_AT, UNRECORDED
from calsync.store.pull_leases import without_flush_wait
from calsync.store.tables import Calendar, OutboxEntry, User
from calsync.store.tables import Event as EventRow

__all__ = [
    "PendingWrites",
    "WriteState",
    "add",
    "claim_event",
    "close",
    "count_attempt",
    "defer_event",
    "defer_user",
    "due_events",
    "never_sent",
    "pause_user",
    "pending_writes",
    "push_context",
    "release_all_events",
    "release_event",
    "retry_later",
]

_outbox = cast(sa.Table, OutboxEntry.__table__)
_events = cast(sa.Table, EventRow.__table__)


@dataclass(frozen=True, slots=True)
class PendingWrites:
    """The pending outbox rows of one event, summarised.

    `last_id` is the newest row: `retry_later` and `count_attempt` act on the rows up to
    it. `attempts` is the highest attempt count among them (the retry budget spent so
    far). Closing is by version, not by id (see `close`).
    """

    event_id: uuid.UUID
    count: int
    last_id: int
    attempts: int


def add(
    session: Session,
    *,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    calendar_id: uuid.UUID,
    operation: str,
    now: datetime,
) -> None:
    """Queue a write of event `event_id` (``insert``, ``update`` or ``delete``), due now.

    Call it in the transaction that moves the event's version on (see the module
    docstring): `close` relies on it.
    """
    session.add(
        OutboxEntry(
            event_id=event_id,
            user_id=user_id,
            calendar_id=calendar_id,
            operation=operation,
            status="pending",
            due_at=now,
        )
    )


#: `pending_writes`' statement, built once (decision IR2), parameter ``event_id``.
_PENDING: Final = sa.select(
    sa.func.count(), sa.func.max(_outbox.c.id), sa.func.max(_outbox.c.attempts)
).where(
    _outbox.c.event_id == sa.bindparam("event_id", type_=_outbox.c.event_id.type),
    _outbox.c.status == "pending",
)


def pending_writes(session: Session, event_id: uuid.UUID) -> PendingWrites | None:
    """The event's pending rows (due or not), or `None` if it has none."""
    count, last_id, attempts = session.execute(_PENDING, {"event_id": event_id}).one()
    if not count:
        return None
    return PendingWrites(event_id, int(count), int(last_id), int(attempts or 0))


def _update_pending(event_id: uuid.UUID, up_to: int) -> sa.Update:
    """An UPDATE of the event's pending rows with id <= `up_to` (those a push read)."""
    return (
        sa.update(_outbox)
        .where(
            _outbox.c.event_id == event_id,
            _outbox.c.status == "pending",
            _outbox.c.id <= up_to,
        )
        .execution_options(**UNRECORDED)
    )


def close(
    session: Session,
    event_id: uuid.UUID,
    *,
    version: int,
    failed: bool = False,
    error: str | None = None,
) -> bool:
    """Mark the event's pending rows ``done`` (or ``failed``) if the event is still at
    `version`, the version the push wrote. Returns whether it closed any row; `False`
    when the event moved past `version` (nothing is closed: the newer version still has
    to be written) or had no pending row.

    One statement, so the version test and the rows it closes come from one snapshot
    (PostgreSQL's READ COMMITTED, SQLite alike): a row committed with a newer version is
    either invisible to it or comes with that newer version, which fails the test. The
    caller's earlier write or lock of the event row in the same transaction
    (`record_pushed`, `lock_stored`) holds the row until the commit, so no newer version
    commits between this statement and the caller's other writes either.
    """
    values = {
        "of_event": event_id,
        "at_version": version,
        "closed_as": "failed" if failed else "done",
        "error": error,
    }
    closed = session.execute(_CLOSE, values)
    return bool(closed.rowcount)  # type: ignore[attr-defined]


#: `close`'s statement, built once (decision IR4).
_CLOSE: Final = (
    sa.update(_outbox)
    .where(
        _outbox.c.event_id == sa.bindparam("of_event", type_=_outbox.c.event_id.type),
        _outbox.c.status == "pending",
        sa.select(_events.c.id)
        .where(
            _events.c.id == sa.bindparam("of_event", type_=_events.c.id.type),
            _events.c.version == sa.bindparam("at_version", type_=_events.c.version.type),
        )
        .exists(),
    )
    .values(
        status=sa.bindparam("closed_as", type_=_outbox.c.status.type),
        last_error=sa.bindparam("error", type_=_outbox.c.last_error.type),
    )
)


def retry_later(
    session: Session,
    event_id: uuid.UUID,
    *,
    up_to: int,
    due_at: datetime,
    error: str,
    counted: bool = False,
) -> None:
    """Count one failed attempt for the event's rows up to `up_to` (unless `counted`:
    `count_attempt` already did before sending) and make them due later."""
    attempts = _outbox.c.attempts if counted else _outbox.c.attempts + 1
    session.execute(
        _update_pending(event_id, up_to).values(
            attempts=attempts, due_at=due_at, last_error=error[:2000]
        )
    )


#: `count_attempt`'s statement, built once (decision IR4): parameters ``of_event`` and
#: ``up_to``, the rows `_update_pending` names (no parameter is named as a column: an
#: ``UPDATE``'s parameter of a column's name would be taken for a new value of it).
_COUNT_ATTEMPT: Final = (
    sa.update(_outbox)
    .where(
        _outbox.c.event_id == sa.bindparam("of_event", type_=_outbox.c.event_id.type),
        _outbox.c.status == "pending",
        _outbox.c.id <= sa.bindparam("up_to", type_=_outbox.c.id.type),
    )
    .values(attempts=_outbox.c.attempts + 1)
    .execution_options(**UNRECORDED)
)


def count_attempt(session: Session, event_id: uuid.UUID, *, up_to: int) -> None:
    """Count an attempt for the event's pending rows up to `up_to` before their write is
    sent (commit it first): whatever happens to the answer, the rows show it was tried."""
    session.execute(_COUNT_ATTEMPT, {"of_event": event_id, "up_to": up_to})


def never_sent(session: Session, event_id: uuid.UUID) -> bool:
    """Whether no write of the event was ever sent to Google for certain: every outbox
    row it ever had is still pending and untried (see the module docstring)."""
    tried = session.scalar(
        sa.select(sa.func.count()).where(
            _outbox.c.event_id == event_id,
            sa.or_(_outbox.c.status != "pending", _outbox.c.attempts > 0),
        )
    )
    return not tried


def defer_user(session: Session, user_id: uuid.UUID, *, until: datetime) -> None:
    """Make every pending row of the user due no earlier than `until` (writes paused)."""
    session.execute(
        sa.update(_outbox)
        .where(
            _outbox.c.user_id == user_id,
            _outbox.c.status == "pending",
            _outbox.c.due_at < until,
        )
        .values(due_at=until)
        .execution_options(**UNRECORDED)
    )


def defer_event(session: Session, event_id: uuid.UUID, *, until: datetime) -> None:
    """Make the event's pending rows due at `until` without counting an attempt."""
    session.execute(
        sa.update(_outbox)
        .where(_outbox.c.event_id == event_id, _outbox.c.status == "pending")
        .values(due_at=until)
        .execution_options(**UNRECORDED)
    )


def claim_event(session: Session, event_id: uuid.UUID, *, now: datetime, until: datetime) -> bool:
    """Take the push lease of the event until `until`. False if a live lease is held.

    One conditional UPDATE, so two workers can never both win. On PostgreSQL its
    transaction commits without waiting for the WAL flush (the module docstring): the
    caller commits it alone, and what follows it durably (the attempt counted before an
    insert is sent, a push's success) flushes it first, the WAL being flushed in order.
    """
    values = {"of_event": event_id, "now": now, "until": until}
    if _is_postgresql(session):
        return session.execute(_CLAIM_NO_WAIT, values).first() is not None
    claimed = session.execute(_CLAIM, values)
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


def release_event(session: Session, event_id: uuid.UUID) -> None:
    """Give the push lease back; on PostgreSQL its transaction (the caller commits it
    alone) does not wait for the WAL flush (the module docstring)."""
    if _is_postgresql(session):
        session.execute(_RELEASE_NO_WAIT, {"of_event": event_id}).all()
    else:
        session.execute(_RELEASE, {"of_event": event_id})


def _event_id() -> sa.BindParameter[uuid.UUID]:
    return sa.bindparam("of_event", type_=_events.c.id.type)


_lease = _events.c.push_lease_until
#: The lease's statements, built once (decision IR4), parameters ``of_event`` and for
#: the claim ``now`` and ``until``; ``_NO_WAIT``: PostgreSQL's (IM2).
_CLAIM: Final = (
    sa.update(_events)
    .where(
        _events.c.id == _event_id(),
        sa.or_(_lease.is_(None), _lease <= sa.bindparam("now", type_=_lease.type)),
    )
    .values(push_lease_until=sa.bindparam("until", type_=_lease.type), **KEEP_UPDATED_AT)
    .execution_options(**UNRECORDED)
)
_CLAIM_NO_WAIT: Final = without_flush_wait(_CLAIM)
_RELEASE: Final = (
    sa.update(_events)
    .where(_events.c.id == _event_id())
    .values(push_lease_until=None, **KEEP_UPDATED_AT)
    .execution_options(**UNRECORDED)
)
_RELEASE_NO_WAIT: Final = without_flush_wait(_RELEASE)


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def release_all_events(session: Session) -> None:
    """Free every event's push lease (see :func:`calsync.sync.kicks.release_all`: only at
    the start of an embedded installation's one process, whose jobs all died with it)."""
    session.execute(
        sa.update(_events)
        .where(_events.c.push_lease_until.is_not(None))
        .values(push_lease_until=None, **KEEP_UPDATED_AT)
        .execution_options(**UNRECORDED)
    )


def due_events(session: Session, *, now: datetime, limit: int = 500) -> list[uuid.UUID]:
    """Events the sweep must push now, oldest pending write first (see module docstring)."""
    users = cast(sa.Table, User.__table__)
    first_due = sa.func.min(_outbox.c.id).label("first")
    query = (
        sa.select(_outbox.c.event_id, first_due)
        .join(_events, _events.c.id == _outbox.c.event_id)
        .join(users, users.c.id == _outbox.c.user_id)
        .where(
            _outbox.c.status == "pending",
            _outbox.c.due_at <= now,
            users.c.status == "active",
            sa.or_(users.c.writes_paused_until.is_(None), users.c.writes_paused_until <= now),
            _events.c.sync_state != "conflict",
            sa.or_(_events.c.push_lease_until.is_(None), _events.c.push_lease_until <= now),
        )
        .group_by(_outbox.c.event_id)
        .order_by(first_due)
        .limit(limit)
    )
    return [row.event_id for row in session.execute(query)]


@dataclass(frozen=True, slots=True)
class WriteState:
    """Whether a user's writes may go to Google now."""

    active: bool
    paused_until: datetime | None


_users = cast(sa.Table, User.__table__)
_calendars = cast(sa.Table, Calendar.__table__)
#: `push_context`'s one statement, built once (decision IR2): the calendar's view and,
#: joined outside (a missing user reads as inactive), the user's status and write pause.
_PUSH_CONTEXT: Final = (
    sa.select(
        *VIEW_COLUMNS,
        _users.c.status.label("writer_status"),
        _users.c.writes_paused_until.label("writer_paused_until"),
    )
    .select_from(
        _calendars.outerjoin(_users, _users.c.id == sa.bindparam("user_id", type_=_users.c.id.type))
    )
    .where(_calendars.c.id == sa.bindparam("calendar_id", type_=_calendars.c.id.type))
)


def push_context(
    session: Session, *, user_id: uuid.UUID, calendar_id: uuid.UUID
) -> tuple[WriteState, CalendarView] | None:
    """The write state of `user_id` (its account status and write pause; a missing user
    is inactive) and the view of calendar `calendar_id`, in one statement, for a push
    (decision IR2); `None` if there is no such calendar."""
    row: Any = session.execute(
        _PUSH_CONTEXT, {"user_id": user_id, "calendar_id": calendar_id}
    ).one_or_none()
    if row is None:
        return None
    state = WriteState(row.writer_status == "active", row.writer_paused_until)
    return state, view_of_row(row)


def pause_user(session: Session, user_id: uuid.UUID, *, until: datetime) -> None:
    """Pause the user's writes until `until` (Google said the quota is used up)."""
    session.execute(sa.update(User).where(User.id == user_id).values(writes_paused_until=until))
    defer_user(session, user_id, until=until)
