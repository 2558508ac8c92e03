"""The calendar-list queue in the user rows: ``calendars_dirty`` and ``calendars_queued_at``.

The coalescing of `calsync.store.pull_queue`, per user, for calendar-list notifications
(a storm of them must cost a constant number of calendar-list reads, not one each;
decision T9): a notification marks the list changed and claims the queue slot if it is
free; a read clears the mark when it starts and frees the slot when it ends, unless the
list changed meanwhile.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.tables import User
from calsync.store.types import UTCDateTime

__all__ = [
    "calendar_list_finished",
    "calendar_list_started",
    "calendar_list_stranded",
    "claim_lost_calendar_lists",
    "note_calendar_list_change",
]

_users = cast(sa.Table, User.__table__)


def note_calendar_list_change(session: Session, user_id: uuid.UUID, now: datetime) -> bool:
    """A calendar-list notification for `user_id`: mark the list changed, and claim its
    queue slot if it is free. True when the slot was claimed: enqueue one read of the
    list; False when one is queued or running (it, or the one it leads to, will see the
    change)."""
    claimed = session.execute(
        sa.update(_users)
        .where(_users.c.id == user_id, _users.c.calendars_queued_at.is_(None))
        .values(calendars_dirty=True, calendars_queued_at=now)
        .returning(_users.c.id)
    ).first()
    if claimed is None:
        session.execute(
            sa.update(_users)
            .where(_users.c.id == user_id, _users.c.calendars_dirty.is_(False))
            .values(calendars_dirty=True)
        )
    return claimed is not None


def calendar_list_started(session: Session, user_id: uuid.UUID, now: datetime) -> None:
    """A read of the user's calendar list begins: later notifications need another one.
    Takes the queue slot too (from `now`), so a read that was not queued through
    `note_calendar_list_change` (a retry, the sweep) is counted as running."""
    session.execute(
        sa.update(_users)
        .where(_users.c.id == user_id)
        .values(
            calendars_dirty=False,
            calendars_queued_at=sa.func.coalesce(_users.c.calendars_queued_at, now),
        )
    )


def calendar_list_finished(session: Session, user_id: uuid.UUID, now: datetime) -> bool:
    """A read of the user's calendar list ended: free the queue slot unless the list
    changed meanwhile. True when it did: the slot stays taken (from `now`) and the caller
    enqueues one more read."""
    dirty = session.execute(
        sa.update(_users)
        .where(_users.c.id == user_id)
        .values(
            calendars_queued_at=sa.case(
                (_users.c.calendars_dirty.is_(True), sa.literal(now, UTCDateTime())),
                else_=sa.null(),
            )
        )
        .returning(_users.c.calendars_dirty)
    ).scalar_one_or_none()
    return bool(dirty)


def calendar_list_stranded(session: Session, user_id: uuid.UUID) -> None:
    """A read of the user's calendar list stopped because their grant is revoked: free
    its queue slot and keep the list marked changed, so the first calendar-list
    notification after they sign in again reads it at once instead of waiting a whole
    sync lease for `claim_lost_calendar_lists` (decision F4)."""
    session.execute(
        sa.update(_users)
        .where(_users.c.id == user_id)
        .values(calendars_queued_at=None, calendars_dirty=True)
    )


def claim_lost_calendar_lists(
    session: Session, *, now: datetime, slot_lost_before: datetime
) -> list[uuid.UUID]:
    """Claim again the calendar-list reads whose queue slot was taken before
    `slot_lost_before` (the message was lost, or its worker died), of active users, and
    return their user ids."""
    rows = session.execute(
        sa.update(_users)
        .where(_users.c.calendars_queued_at < slot_lost_before, _users.c.status == "active")
        .values(calendars_queued_at=now)
        .returning(_users.c.id)
    )
    return [row.id for row in rows]
