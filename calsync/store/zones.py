"""Calendar time zones as the store knows them: the shared copy behind every worker
process's zone cache (`calsync.providers.google.zones.CalendarZones`).

The calendar list (`calsync.sync.calendar_list`) stores each calendar's zone as Google's
``calendarList`` gives it; reading it here saves a ``calendars.get`` call per calendar per
worker process (decisions Q5).
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.store.tables import Calendar

__all__ = ["stored_zone"]

_ZONE = (
    sa.select(Calendar.timezone)
    .where(
        Calendar.user_id == sa.bindparam("user_id"),
        Calendar.provider == "google",
        Calendar.provider_calendar_id == sa.bindparam("calendar_id"),
    )
    .limit(1)
)


def stored_zone(
    sessions: sessionmaker[Session], user_id: uuid.UUID, google_calendar_id: str
) -> str | None:
    """The stored zone of `user_id`'s Google calendar `google_calendar_id`, or None when
    the calendar is not stored (one indexed read: the unique key of the calendar)."""
    with sessions() as session:
        zone = session.scalar(_ZONE, {"user_id": user_id, "calendar_id": google_calendar_id})
    return zone or None
