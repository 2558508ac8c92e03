"""The calendars' convergence-audit slots (``next_audit_at``): placed, claimed, moved on.

The statements of `calsync.sync.audit`, which says when a calendar's audit falls
(`calsync.sync.audit.audit_slot`). Audited calendars are the selected calendars of
active users.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.tables import Calendar, User

__all__ = ["claim_due", "move_on", "place", "unplaced"]


def _audited() -> sa.ColumnElement[bool]:
    """The calendars that are audited: selected calendars of active users."""
    active = sa.select(User.id).where(User.status == "active")
    return sa.and_(Calendar.selected.is_(True), Calendar.user_id.in_(active))


def unplaced(session: Session, *, limit: int) -> list[uuid.UUID]:
    """Up to `limit` audited calendars without an audit slot yet."""
    return list(
        session.scalars(
            sa.select(Calendar.id).where(_audited(), Calendar.next_audit_at.is_(None)).limit(limit)
        )
    )


def place(session: Session, slots: Mapping[uuid.UUID, datetime]) -> None:
    """Store the first audit slot of each calendar of `slots` (one executemany)."""
    if slots:
        session.execute(
            sa.update(Calendar),
            [{"id": calendar_id, "next_audit_at": at} for calendar_id, at in slots.items()],
        )


def claim_due(session: Session, *, now: datetime, limit: int, until: datetime) -> list[uuid.UUID]:
    """Claim the audited calendars whose audit is due at `now` (at most `limit`, the most
    overdue first; rows another scheduler holds locked are skipped) by moving their slot
    to `until`, and return their ids."""
    due = session.scalars(
        sa.select(Calendar.id)
        .where(_audited(), Calendar.next_audit_at <= now)
        .order_by(Calendar.next_audit_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if due:
        session.execute(sa.update(Calendar).where(Calendar.id.in_(due)).values(next_audit_at=until))
    return list(due)


def move_on(session: Session, calendar_id: uuid.UUID, at: datetime) -> None:
    """An audit finished: its next one is at `at`, unless deletions are held on the
    calendar (they brought the audit forward to their recheck)."""
    session.execute(
        sa.update(Calendar)
        .where(Calendar.id == calendar_id, Calendar.deletions_held_at.is_(None))
        .values(next_audit_at=at)
    )
