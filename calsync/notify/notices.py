"""The user's own delivery records, newest first, a page at a time (``GET /me/notices``).

Pages are keyed on ``(created_at, id)`` with an opaque cursor, so rows added while a client
pages do not shift what it sees. Only ``user_id``'s rows are ever read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from calsync.store import deliveries, keyset
from calsync.store.tables import DELIVERY_STATUSES, NOTICE_KINDS, NotificationDelivery

__all__ = ["MAX_PAGE", "InvalidCursor", "NoticePage", "decode_cursor", "list_notices"]

MAX_PAGE: Final = 200
DEFAULT_PAGE: Final = 50


class InvalidCursor(ValueError):
    """A cursor that calsync did not hand out."""


@dataclass(frozen=True)
class NoticePage:
    notices: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(created_at: datetime, row_id: uuid.UUID, *, scope: str = "") -> str:
    return keyset.encode(created_at, str(row_id), scope=scope)


def decode_cursor(cursor: str, *, scope: str = "") -> tuple[datetime, uuid.UUID]:
    """Raises InvalidCursor for anything :func:`encode_cursor` did not make for `scope`."""
    try:
        created_at, row_id = keyset.decode(cursor, scope=scope)
        return created_at, uuid.UUID(row_id)
    except ValueError as err:
        raise InvalidCursor("cursor is not valid") from err


def list_notices(
    session: Session,
    user_id: uuid.UUID,
    *,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    scope: str = "",
) -> NoticePage:
    """One page of ``user_id``'s delivery records; cursors are bound to `scope` (the
    query they page). Raises InvalidCursor, ValueError."""
    if status is not None and status not in DELIVERY_STATUSES:
        raise ValueError("status")
    if kind is not None and kind not in NOTICE_KINDS:
        raise ValueError("kind")
    before = decode_cursor(cursor, scope=scope) if cursor is not None else None
    rows = deliveries.newest_of_user(
        session, user_id, limit=limit + 1, before=before, status=status, kind=kind
    )
    page = rows[:limit]
    more = len(rows) > limit
    next_cursor = (
        encode_cursor(page[-1].created_at, page[-1].id, scope=scope) if more and page else None
    )
    return NoticePage([notice_json(row) for row in page], next_cursor)


def notice_json(row: NotificationDelivery) -> dict[str, Any]:
    """One delivery record as the API shows it."""
    payload = row.payload or {}
    event = payload.get("event") or {}
    return {
        "id": str(row.id),
        "kind": row.kind,
        "channel": row.channel,
        "status": row.status,
        "reason": row.reason,
        "event_id": str(row.event_id) if row.event_id else None,
        "title": event.get("title"),
        "occurrence_start": row.occurrence_start.isoformat() if row.occurrence_start else None,
        "lead_minutes": row.lead_minutes,
        "change": payload.get("change"),
        "changed": payload.get("changed"),
        "due_at": row.due_at.isoformat(),
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "attempts": row.attempts,
        "created_at": row.created_at.isoformat(),
    }
