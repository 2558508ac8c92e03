"""Which of a user's calendars calsync syncs (read-only)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.tables import Calendar

__all__ = ["selected_ids"]


def selected_ids(
    session: Session, user_id: uuid.UUID, *, only: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """The ids of the user's selected (synced) calendars; with `only`, that one if it is
    one of them (else none)."""
    query = sa.select(Calendar.id).where(Calendar.user_id == user_id, Calendar.selected.is_(True))
    if only is not None:
        query = query.where(Calendar.id == only)
    return list(session.scalars(query))
