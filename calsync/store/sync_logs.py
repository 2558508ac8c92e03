"""The sync log: what each sync run, push and conflict resolution did, as users read it.

Rows are written in the same transaction as the work they describe, so the log never
claims something that was rolled back. `details` is JSON a user may read: never a token
or anything else secret.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store import instance_upkeep
from calsync.store.events import UNRECORDED
from calsync.store.tables import SyncLog

__all__ = ["LogEntry", "LogKind", "LogStatus", "list_entries", "record"]


class LogKind(StrEnum):
    PULL = "pull"
    FULL_SYNC = "full_sync"
    PUSH = "push"
    CONFLICT = "conflict"
    AUTH = "auth"
    CHANNEL = "channel"
    CALENDARS = "calendars"
    AUDIT = "audit"


class LogStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    RETRY = "retry"
    RESOLVED = "resolved"
    MANUAL = "manual"
    HELD = "held"


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEntry:
    id: uuid.UUID
    user_id: uuid.UUID
    calendar_id: uuid.UUID | None
    event_id: uuid.UUID | None
    kind: str
    status: str
    time: datetime
    pulled: int
    changed: int
    conflicts: int
    api_calls: int
    duration_ms: int
    message: str | None
    details: dict[str, Any] | None


def record(
    session: Session,
    *,
    user_id: uuid.UUID,
    kind: LogKind,
    status: LogStatus,
    at: datetime,
    calendar_id: uuid.UUID | None = None,
    event_id: uuid.UUID | None = None,
    pulled: int = 0,
    changed: int = 0,
    conflicts: int = 0,
    api_calls: int = 0,
    duration_ms: int = 0,
    message: str | None = None,
    details: dict[str, Any] | None = None,
    count_records: Callable[[Session], bool] | None = None,
) -> int | None:
    """Add one log row to `session` (committed with the caller's transaction). A Core
    ``INSERT`` (after the session's pending changes are flushed), not an ORM object: a
    pull writes one per run, and the unit of work costs more than the insert. The
    statement is built once (`_INSERT`); only the values vary.

    `count_records`: asked after the flush, whether this transaction's records of the
    read model are to be counted now (`calsync.events.upkeep.records_uncounted`); if so,
    on PostgreSQL the row is inserted by the statement that counts them, up to 1
    (`instance_upkeep.recorded_here_along`, decision IO2), and the count is returned.
    None when nothing was counted (not asked, not to count, or SQLite: a plain
    ``INSERT``), the caller's commit then counting them as before."""
    if session.autoflush and (session.new or session.dirty or session.deleted):
        session.flush()  # what executing an ORM statement would have done first
    values: dict[str, Any] = {
        "user_id": user_id,
        "calendar_id": calendar_id,
        "event_id": event_id,
        "kind": kind.value,
        "sync_status": status.value,
        "sync_time": at,
        "pulled": pulled,
        "changed": changed,
        "conflicts": conflicts,
        "api_calls": api_calls,
        "duration_ms": duration_ms,
        "message": message,
        "details": details,
    }
    counted = count_records is not None and count_records(session)
    if counted and session.get_bind().dialect.name == "postgresql":
        values |= {"id": uuid.uuid4(), "up_to": 1}
        found = session.execute(_INSERT_COUNTING, values, execution_options=UNRECORDED)
        return int(found.scalar_one())
    # a log row: the read model's triggers cannot record it (decision IK2)
    session.execute(_INSERT, values, execution_options=UNRECORDED)
    return None


_TABLE: Final = cast(sa.Table, SyncLog.__table__)
#: `record`'s statement: on the table, so that executing it in a session is a plain Core
#: insert (its columns come from the values given; the id from its default).
_INSERT: Final = sa.insert(_TABLE)
#: `record`'s statement when it counts the read model's records (PostgreSQL): the insert
#: is a ``WITH`` of the count, every column a parameter (the id given: a column default
#: of a Python callable is not applied inside a ``WITH``).
_INSERT_COUNTING: Final = instance_upkeep.recorded_here_along(
    sa.insert(_TABLE).values({c.name: sa.bindparam(c.name, type_=c.type) for c in _TABLE.c})
)


def list_entries(
    session: Session,
    *,
    user_id: uuid.UUID | None,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
    kind: str | None = None,
    calendar_id: uuid.UUID | None = None,
) -> list[LogEntry]:
    """Log entries newest first; `user_id=None` lists everyone's (for admins).

    `before` is the (time, id) of the last entry of the previous page (keyset paging).
    """
    query = sa.select(SyncLog).order_by(SyncLog.sync_time.desc(), SyncLog.id.desc())
    if user_id is not None:
        query = query.where(SyncLog.user_id == user_id)
    if kind is not None:
        query = query.where(SyncLog.kind == kind)
    if calendar_id is not None:
        query = query.where(SyncLog.calendar_id == calendar_id)
    if before is not None:
        at, row_id = before
        query = query.where(
            sa.or_(SyncLog.sync_time < at, sa.and_(SyncLog.sync_time == at, SyncLog.id < row_id))
        )
    return [
        LogEntry(
            id=row.id,
            user_id=row.user_id,
            calendar_id=row.calendar_id,
            event_id=row.event_id,
            kind=row.kind,
            status=row.sync_status,
            time=row.sync_time,
            pulled=row.pulled,
            changed=row.changed,
            conflicts=row.conflicts,
            api_calls=row.api_calls,
            duration_ms=row.duration_ms,
            message=row.message,
            details=row.details,
        )
        for row in session.scalars(query.limit(limit))
    ]
