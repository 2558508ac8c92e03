"""Keeping a user's calendars in step with their Google calendar list.

Run when a user connects and whenever their ``calendarList`` channel reports a change:
new calendars are stored (with their access role) and pulled, calendars that left the
list are deleted locally together with their events, and their channels stopped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from calsync.providers.base import CalendarInfo
from calsync.services import Services
from calsync.store import calendars, watch_channels
from calsync.store.sync_logs import LogKind, LogStatus, record
from calsync.sync.channels import stop_channel_quietly

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
        matched = calendars.match_calendar_list(
            session, user_id, {google_id: _described(info) for google_id, info in listed.items()}
        )
        gone_ids = [calendar_id for calendar_id, _ in matched.gone]
        channels = watch_channels.active_of_calendars(session, gone_ids)
        if matched.added or matched.gone:
            record(
                session,
                user_id=user_id,
                kind=LogKind.CALENDARS,
                status=LogStatus.OK,
                at=services.clock(),
                api_calls=provider.api_calls,
                message=f"{len(matched.added)} calendar(s) added, {len(gone_ids)} removed",
                details={
                    "added": [str(i) for i in matched.added],
                    "removed": [google_id for _, google_id in matched.gone],
                },
            )
    for channel in channels:
        stop_channel_quietly(services, provider, channel.id, channel.resource_id)
    if gone_ids:
        with services.sessions.begin() as session:
            calendars.delete(session, gone_ids)
    return CalendarListChange(tuple(matched.added), tuple(matched.kept), tuple(gone_ids))


def _described(info: CalendarInfo) -> dict[str, object]:
    """The columns of a calendar's row that its calendar-list entry gives."""
    return {
        "summary": info.summary,
        "timezone": info.timezone or "UTC",
        "access_role": info.access_role,
        "is_primary": info.primary,
        "selected": info.access_role != "freeBusyReader",
    }
