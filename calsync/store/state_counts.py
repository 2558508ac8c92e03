"""The aggregates behind the state metrics (:mod:`calsync.web.state_metrics`): how many
calendars lag by how much, how the channels, the outbox, the notices and the queue
heartbeat stand now.

Each function is one bounded statement (``COUNT``/``MIN``/``MAX`` over indexed columns,
or a ``LIMIT``) and returns plain values; turning them into metric families, and the
choice of buckets and thresholds, are the caller's. Counts cover every user: they are
operator figures, never shown to a user.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.tables import (
    Calendar,
    NotificationDelivery,
    OutboxEntry,
    QueueHeartbeat,
    User,
    WatchChannel,
)

__all__ = [
    "Heartbeat",
    "OutboxCounts",
    "SyncHealth",
    "SyncLag",
    "channels_by_time_left",
    "due_notices",
    "outbox_counts",
    "queue_heartbeat",
    "sync_health",
    "sync_lag",
]


@dataclass(frozen=True, slots=True)
class SyncLag:
    """The synced calendars (selected, of active users) by the age of their last pull."""

    #: Synced calendars that a pull has completed for.
    total: int
    #: The oldest last successful pull, None if there is none.
    oldest: datetime | None
    #: For each bound asked for, how many were last pulled before ``now - bound``.
    older_than: tuple[int, ...]
    #: The most lagging calendars, oldest first: (calendar id, last successful pull).
    worst: tuple[tuple[uuid.UUID, datetime], ...]
    #: Synced calendars no pull has completed yet.
    never: int


@dataclass(frozen=True, slots=True)
class SyncHealth:
    """Overdue calendars and calendars by the status of their last sync."""

    overdue: int
    #: One count for each status asked for, in that order.
    by_status: tuple[int, ...]
    #: Calendars with no status yet.
    never: int
    #: Calendars whose status is none of those asked for.
    other: int


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    pending: int
    oldest_pending: datetime | None
    failed: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The last heartbeat a worker recorded: when the scheduler sent it, when it arrived."""

    sent_at: datetime
    processed_at: datetime


def _synced_calendars() -> sa.ColumnElement[bool]:
    """Calendars whose lag matters: selected calendars of active users."""
    return sa.and_(Calendar.selected.is_(True), User.status == "active")


def sync_lag(session: Session, now: datetime, *, bounds: Sequence[float], worst: int) -> SyncLag:
    """The synced calendars' lag: counts older than each of `bounds` (seconds) and the
    `worst` most lagging calendars."""
    base = sa.select(Calendar.id).join(User, User.id == Calendar.user_id)
    synced = base.where(_synced_calendars(), Calendar.last_synced_at.is_not(None))
    never = session.scalar(
        sa.select(sa.func.count()).select_from(
            base.where(_synced_calendars(), Calendar.last_synced_at.is_(None)).subquery()
        )
    )
    # One row of counts: calendars synced before now - bound, for every bound, plus the
    # total and the oldest sync.
    older_than = [
        sa.func.count().filter(Calendar.last_synced_at < now - timedelta(seconds=bound))
        for bound in bounds
    ]
    row = session.execute(
        synced.with_only_columns(
            sa.func.count(), sa.func.min(Calendar.last_synced_at), *older_than
        ).order_by(None)
    ).one()
    lagging = session.execute(
        synced.with_only_columns(Calendar.id, Calendar.last_synced_at)
        .order_by(Calendar.last_synced_at)
        .limit(worst)
    ).all()
    return SyncLag(
        total=int(row[0]),
        oldest=row[1],
        older_than=tuple(int(count) for count in row[2:]),
        worst=tuple((cid, at) for cid, at in lagging if at is not None),
        never=int(never or 0),
    )


def sync_health(
    session: Session,
    *,
    overdue_before: datetime,
    poll_missed_before: datetime,
    statuses: Sequence[str],
) -> SyncHealth:
    """Synced calendars last pulled (or, never pulled, created) before `overdue_before`
    whose next poll is missing or before `poll_missed_before`; and the synced calendars
    by their last sync status, one count for each of `statuses`."""
    synced_at = sa.func.coalesce(Calendar.last_synced_at, Calendar.created_at)
    # A calendar polled rarely (a live channel, decisions Y4) is not overdue while its
    # next poll is still to come; one whose pulls die keeps a next poll in the past.
    poll_missed = sa.or_(
        Calendar.next_poll_at.is_(None), Calendar.next_poll_at < poll_missed_before
    )
    status = Calendar.last_sync_status
    row = session.execute(
        sa.select(
            sa.func.count().filter(synced_at < overdue_before, poll_missed),
            *(sa.func.count().filter(status == value) for value in statuses),
            sa.func.count().filter(status.is_(None)),
            sa.func.count().filter(status.not_in(list(statuses))),
        )
        .select_from(Calendar)
        .join(User, User.id == Calendar.user_id)
        .where(_synced_calendars())
    ).one()
    counts = [int(count) for count in row]
    return SyncHealth(
        overdue=counts[0], by_status=tuple(counts[1:-2]), never=counts[-2], other=counts[-1]
    )


def channels_by_time_left(
    session: Session, now: datetime, spans: Sequence[timedelta]
) -> tuple[int, ...]:
    """Active push channels by time left: expired, then one count per span of `spans`
    (ascending, each from the previous one's end), then the rest (or no expiry)."""
    expires = WatchChannel.expires_at
    columns: list[Any] = [sa.func.count().filter(expires <= now)]
    lower = now
    for span in spans:
        columns.append(sa.func.count().filter(expires > lower, expires <= now + span))
        lower = now + span
    columns.append(sa.func.count().filter(sa.or_(expires.is_(None), expires > lower)))
    row = session.execute(sa.select(*columns).where(WatchChannel.status == "active")).one()
    return tuple(int(count) for count in row)


def outbox_counts(session: Session) -> OutboxCounts:
    """Pending outbox rows (and the oldest one's creation) and failed ones."""
    pending, oldest = session.execute(
        sa.select(sa.func.count(), sa.func.min(OutboxEntry.created_at)).where(
            OutboxEntry.status == "pending"
        )
    ).one()
    failed = session.scalar(sa.select(sa.func.count()).where(OutboxEntry.status == "failed"))
    return OutboxCounts(pending=int(pending), oldest_pending=oldest, failed=int(failed or 0))


def due_notices(
    session: Session, now: datetime, *, overdue_before: datetime
) -> dict[str, tuple[int, int]]:
    """Pending notices due by `now`, by kind: (due, due before `overdue_before`)."""
    due_at = NotificationDelivery.due_at
    rows = session.execute(
        sa.select(
            NotificationDelivery.kind,
            sa.func.count(),
            sa.func.count().filter(due_at < overdue_before),
        )
        .where(NotificationDelivery.status == "pending", due_at <= now)
        .group_by(NotificationDelivery.kind)
    ).all()
    return {str(kind): (int(due), int(overdue)) for kind, due, overdue in rows}


def queue_heartbeat(session: Session) -> Heartbeat | None:
    """The last heartbeat recorded, None before the first."""
    beat = session.get(QueueHeartbeat, "queue")
    if beat is None:
        return None
    return Heartbeat(sent_at=beat.sent_at, processed_at=beat.processed_at)
