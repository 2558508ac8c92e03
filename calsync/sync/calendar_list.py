"""Keeping a user's calendars in step with their Google calendar list.

Run when a user connects and whenever their ``calendarList`` channel reports a change:
new calendars are stored (with their access role) and pulled, calendars that left the
list are deleted locally together with their events, and their channels stopped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from calsync.providers.base import CalendarInfo
from calsync.store.sync_logs import LogKind, LogStatus, record
from calsync.store.tables import Calendar, WatchChannel
from calsync.sync.channels import stop_channel_quietly

if TYPE_CHECKING:
    from calsync.bootstrap import Services

__all__ = ["CalendarListChange", "sync_calendar_list"]


@dataclass(frozen=True, slots=True)
class CalendarListChange:
    """Local ids of the calendars that were added, kept and removed."""

    added: tuple[uuid.UUID, ...]
    kept: tuple[uuid.UUID, ...]
    removed: tuple[uuid.UUID, ...]


def sync_calendar_list(services: Services, user_id: uuid.UUID) -> CalendarListChange:
    """Make the user's local calendars match their Google calendar list."""
    provider = services.providers.for_user(user_id)
    listed = {c.calendar_id: c for c in provider.list_calendars() if not c.deleted}
    with services.sessions.begin() as session:
        existing = {
            row.provider_calendar_id: row
            for row in session.scalars(sa.select(Calendar).where(Calendar.user_id == user_id))
        }
        added: list[uuid.UUID] = []
        kept: list[uuid.UUID] = []
        for google_id, info in listed.items():
            row = existing.get(google_id)
            if row is None:
                row = Calendar(user_id=user_id, provider_calendar_id=google_id)
                session.add(row)
                _describe(row, info)
                session.flush()
                added.append(row.id)
            else:
                _describe(row, info)
                kept.append(row.id)
        gone = [row for google_id, row in existing.items() if google_id not in listed]
        gone_ids = [row.id for row in gone]
        channels = session.execute(
            sa.select(WatchChannel.id, WatchChannel.resource_id).where(
                WatchChannel.calendar_id.in_(gone_ids), WatchChannel.status == "active"
            )
        ).all()
        if added or gone:
            record(
                session,
                user_id=user_id,
                kind=LogKind.CALENDARS,
                status=LogStatus.OK,
                at=services.clock(),
                api_calls=provider.api_calls,
                message=f"{len(added)} calendar(s) added, {len(gone)} removed",
                details={
                    "added": [str(i) for i in added],
                    "removed": [row.provider_calendar_id for row in gone],
                },
            )
    for channel in channels:
        stop_channel_quietly(services, provider, channel.id, channel.resource_id)
    if gone_ids:
        with services.sessions.begin() as session:
            session.execute(sa.delete(Calendar).where(Calendar.id.in_(gone_ids)))
    return CalendarListChange(tuple(added), tuple(kept), tuple(gone_ids))


def _describe(row: Calendar, info: CalendarInfo) -> None:
    row.summary = info.summary
    row.timezone = info.timezone or "UTC"
    row.access_role = info.access_role
    row.is_primary = info.primary
    row.selected = info.access_role != "freeBusyReader"
