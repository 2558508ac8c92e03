"""The sync log: what each sync run, push and conflict resolution did, as users read it.

Rows are written in the same transaction as the work they describe, so the log never
claims something that was rolled back. `details` is JSON a user may read: never a token
or anything else secret.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

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
) -> None:
    """Add one log row to `session` (committed with the caller's transaction). A Core
    ``INSERT`` (after the session's pending changes are flushed), not an ORM object: a
    pull writes one per run, and the unit of work costs more than the insert. The
    statement is built once (`_INSERT`); only the values vary."""
    if session.autoflush and (session.new or session.dirty or session.deleted):
        session.flush()  # what executing an ORM statement would have done first
    session.execute(
        _INSERT,
        {
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
        },
        # a log row: the read model's triggers cannot record it (decision IK2)
        execution_options=UNRECORDED,
    )


#: `record`'s statement: on the table, so that executing it in a session is a plain Core
#: insert (its columns come from the values given; the id from its default).
_INSERT: Final = sa.insert(cast(sa.Table, SyncLog.__table__))


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
