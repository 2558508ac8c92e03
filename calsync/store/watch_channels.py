"""The push channels' rows (``watch_channels``): which are live, due for renewal, stopped.

The statements of `calsync.sync.channels`, which opens, renews and stops channels on
Google and says when. A channel is *live* while it is active and not expired; a calendar
is *watchable* when it is selected, not polled instead (``poll_only``) and its events are
readable.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.tables import Calendar, User, WatchChannel

__all__ = [
    "KIND_EVENTS",
    "KIND_LIST",
    "NewChannel",
    "active_of_calendars",
    "active_of_user",
    "add",
    "calendars_without_channel",
    "channel",
    "claim_renewals",
    "count_renewing",
    "give_back",
    "inactive_users_with_channels",
    "live_targets",
    "mark_poll_only",
    "mark_stopped",
    "renewal_rows",
    "stop_all_of_user",
    "users_missing_channels",
    "watchable_calendars",
]

KIND_EVENTS = "events"
KIND_LIST = "calendar_list"


@dataclass(frozen=True, slots=True)
class NewChannel:
    """A channel Google just opened, to be stored as active."""

    id: uuid.UUID
    user_id: uuid.UUID
    calendar_id: uuid.UUID | None
    kind: str
    resource_id: str | None
    resource_uri: str | None
    expires_at: datetime | None


def _live(now: datetime) -> sa.ColumnElement[bool]:
    """Channels that still deliver: active and not expired."""
    return sa.and_(
        WatchChannel.status == "active",
        sa.or_(WatchChannel.expires_at.is_(None), WatchChannel.expires_at > now),
    )


#: Calendars that get an events channel: selected, not polled instead, events readable.
_WATCHABLE = sa.and_(
    Calendar.selected.is_(True),
    Calendar.poll_only.is_(False),
    Calendar.access_role != "freeBusyReader",
)


def add(session: Session, channel: NewChannel) -> None:
    """Store a channel Google opened, as active."""
    session.add(
        WatchChannel(
            id=channel.id,
            user_id=channel.user_id,
            calendar_id=channel.calendar_id,
            kind=channel.kind,
            resource_id=channel.resource_id,
            resource_uri=channel.resource_uri,
            expires_at=channel.expires_at,
            status="active",
        )
    )


def channel(session: Session, channel_id: uuid.UUID) -> sa.Row[Any] | None:
    """One channel (``user_id``, ``calendar_id``, ``kind``, ``resource_id``, ``status``,
    ``expires_at``), or None."""
    row = session.execute(
        sa.select(
            WatchChannel.user_id,
            WatchChannel.calendar_id,
            WatchChannel.kind,
            WatchChannel.resource_id,
            WatchChannel.status,
            WatchChannel.expires_at,
        ).where(WatchChannel.id == channel_id)
    ).one_or_none()
    return cast("sa.Row[Any] | None", row)


def watchable_calendars(session: Session, user_id: uuid.UUID) -> list[sa.Row[Any]]:
    """The user's watchable calendars (``id``, ``provider_calendar_id``)."""
    return list(
        session.execute(
            sa.select(Calendar.id, Calendar.provider_calendar_id).where(
                Calendar.user_id == user_id, _WATCHABLE
            )
        )
    )


def live_targets(session: Session, user_id: uuid.UUID, now: datetime) -> set[uuid.UUID | None]:
    """Calendar ids (None: the calendar list) of the user's live channels."""
    rows = session.execute(
        sa.select(WatchChannel.calendar_id, WatchChannel.kind).where(
            WatchChannel.user_id == user_id, _live(now)
        )
    ).all()
    return {row.calendar_id if row.kind == KIND_EVENTS else None for row in rows}


def mark_poll_only(session: Session, calendar_id: uuid.UUID) -> None:
    """Google refuses to watch the calendar: the safety net polls it instead."""
    session.execute(sa.update(Calendar).where(Calendar.id == calendar_id).values(poll_only=True))


def _expiring(now: datetime, margin: timedelta) -> sa.ColumnElement[bool]:
    """Active channels of active users that expire within `margin` of `now`."""
    active_users = sa.select(User.id).where(User.status == "active")
    return sa.and_(
        WatchChannel.status == "active",
        WatchChannel.expires_at < now + margin,
        WatchChannel.user_id.in_(active_users),
    )


def claim_renewals(
    session: Session, *, now: datetime, margin: timedelta, limit: int, claim_for: timedelta
) -> list[uuid.UUID]:
    """Claim up to `limit` channels to renew (those expiring first) and return their ids.

    A claimed channel is not claimed again for `claim_for`, so a renewal queued by one
    tick is not queued again by the next while it waits; a renewal that did not happen
    (lost, failed, out of time) is claimed again once the claim runs out. The read goes
    through the ``(status, expires_at)`` index: O(channels due), not O(channels).
    """
    unclaimed = sa.or_(
        WatchChannel.renewal_claimed_at.is_(None),
        WatchChannel.renewal_claimed_at < now - claim_for,
    )
    due = sa.and_(_expiring(now, margin), unclaimed)
    ids = session.scalars(
        sa.select(WatchChannel.id).where(due).order_by(WatchChannel.expires_at).limit(limit)
    ).all()
    if not ids:
        return []
    claimed = session.scalars(
        sa.update(WatchChannel)
        .where(WatchChannel.id.in_(ids), due)
        .values(renewal_claimed_at=now)
        .returning(WatchChannel.id)
    ).all()
    return sorted(claimed, key=ids.index)


def renewal_rows(
    session: Session, channel_ids: Sequence[uuid.UUID], *, now: datetime, margin: timedelta
) -> list[sa.Row[Any]]:
    """Those of `channel_ids` that still need renewing (active, expiring within `margin`,
    their user active), expiring first: ``id``, ``user_id``, ``calendar_id``,
    ``resource_id`` and the calendar's ``provider_calendar_id`` (None: a list channel)."""
    return list(
        session.execute(
            sa.select(
                WatchChannel.id,
                WatchChannel.user_id,
                WatchChannel.calendar_id,
                WatchChannel.resource_id,
                Calendar.provider_calendar_id,
            )
            .outerjoin(Calendar, Calendar.id == WatchChannel.calendar_id)
            .where(WatchChannel.id.in_(list(channel_ids)), _expiring(now, margin))
            .order_by(WatchChannel.expires_at)
        )
    )


def give_back(session: Session, channel_ids: Sequence[uuid.UUID]) -> None:
    """Clear the renewal claim of `channel_ids`."""
    session.execute(
        sa.update(WatchChannel)
        .where(WatchChannel.id.in_(channel_ids))
        .values(renewal_claimed_at=None)
    )


def mark_stopped(session: Session, channel_id: uuid.UUID, at: datetime) -> None:
    """Mark one channel stopped at `at`."""
    session.execute(
        sa.update(WatchChannel)
        .where(WatchChannel.id == channel_id)
        .values(status="stopped", stopped_at=at)
    )


def active_of_user(session: Session, user_id: uuid.UUID) -> list[sa.Row[Any]]:
    """The user's active channels (``id``, ``resource_id``)."""
    return list(
        session.execute(
            sa.select(WatchChannel.id, WatchChannel.resource_id).where(
                WatchChannel.user_id == user_id, WatchChannel.status == "active"
            )
        )
    )


def active_of_calendars(session: Session, calendar_ids: Sequence[uuid.UUID]) -> list[sa.Row[Any]]:
    """The active channels of the calendars `calendar_ids` (``id``, ``resource_id``)."""
    return list(
        session.execute(
            sa.select(WatchChannel.id, WatchChannel.resource_id).where(
                WatchChannel.calendar_id.in_(calendar_ids), WatchChannel.status == "active"
            )
        )
    )


def stop_all_of_user(session: Session, user_id: uuid.UUID, at: datetime) -> None:
    """Mark every active channel of the user stopped at `at`."""
    session.execute(
        sa.update(WatchChannel)
        .where(WatchChannel.user_id == user_id, WatchChannel.status == "active")
        .values(status="stopped", stopped_at=at)
    )


def _without_channel(query: sa.Select[Any], now: datetime) -> sa.Select[Any]:
    """`query` over the selected, watchable calendars of active users without a live
    channel."""
    live = (
        sa.select(WatchChannel.calendar_id)
        .where(_live(now), WatchChannel.calendar_id.is_not(None))
        .scalar_subquery()
    )
    return query.join(User, User.id == Calendar.user_id).where(
        User.status == "active", _WATCHABLE, Calendar.id.not_in(live)
    )


def calendars_without_channel(session: Session, now: datetime) -> list[uuid.UUID]:
    """Selected, watchable calendars of active users that have no live channel."""
    return list(session.scalars(_without_channel(sa.select(Calendar.id), now)))


def users_missing_channels(session: Session, now: datetime, *, limit: int) -> list[uuid.UUID]:
    """Up to `limit` active users with a watchable calendar that has no live channel."""
    return list(
        session.scalars(_without_channel(sa.select(Calendar.user_id), now).distinct().limit(limit))
    )


def inactive_users_with_channels(session: Session, *, limit: int) -> list[uuid.UUID]:
    """Up to `limit` users who are not active (disabled, or must sign in again) and still
    have an active channel."""
    has_live = (
        sa.select(WatchChannel.id)
        .where(WatchChannel.user_id == User.id, WatchChannel.status == "active")
        .exists()
    )
    return list(
        session.scalars(sa.select(User.id).where(User.status != "active", has_live).limit(limit))
    )


def count_renewing(session: Session, before: datetime) -> int:
    """How many active channels of active users expire before `before`."""
    active = sa.select(User.id).where(User.status == "active")
    count = session.scalar(
        sa.select(sa.func.count()).where(
            WatchChannel.status == "active",
            WatchChannel.expires_at < before,
            WatchChannel.user_id.in_(active),
        )
    )
    return count or 0
