"""Calendars as the API shows them (`CalendarView`), read and changed for the API."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.tables import Calendar

__all__ = [
    "VIEW_COLUMNS",
    "CalendarView",
    "calendar_of",
    "calendars_of",
    "set_conflict_policy",
    "view_of_row",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CalendarView:
    """A calendar as the API shows it."""

    id: uuid.UUID
    provider_calendar_id: str
    summary: str
    timezone: str
    access_role: str
    is_primary: bool
    selected: bool
    conflict_policy: str | None
    last_synced_at: datetime | None
    last_sync_status: str | None
    dirty: bool
    poll_only: bool

    @property
    def writable(self) -> bool:
        return self.access_role in ("owner", "writer")


def calendars_of(session: Session, user_id: uuid.UUID) -> list[CalendarView]:
    """The user's calendars, the primary one first, then by name."""
    # the view's columns only, as plain rows: no ORM instance to build per calendar (and
    # none of the sync's columns), on every create without a calendar id (decision HV4)
    rows = session.execute(_CALENDARS_OF, {"user_id": user_id})
    return [view_of_row(row) for row in rows]


def calendar_of(session: Session, calendar_id: uuid.UUID) -> tuple[uuid.UUID, CalendarView] | None:
    """(owner id, calendar) of one calendar, or `None`."""
    row = session.get(Calendar, calendar_id)
    return (row.user_id, view_of_row(row)) if row is not None else None


def set_conflict_policy(session: Session, calendar_id: uuid.UUID, policy: str | None) -> None:
    """Set (or with `None` clear) the calendar's own conflict policy."""
    row = session.get(Calendar, calendar_id)
    if row is not None:
        row.conflict_policy = policy
        session.flush()


VIEW_COLUMNS: Final = tuple(
    getattr(Calendar, field.name) for field in dataclasses.fields(CalendarView)
)
"""The columns a `CalendarView` is made of (each field is the column of its name)."""


def view_of_row(row: Calendar | sa.Row[Any]) -> CalendarView:
    """The view of a calendar row, or of a row that has `VIEW_COLUMNS` among its own."""
    return CalendarView(
        id=row.id,
        provider_calendar_id=row.provider_calendar_id,
        summary=row.summary,
        timezone=row.timezone,
        access_role=row.access_role,
        is_primary=row.is_primary,
        selected=row.selected,
        conflict_policy=row.conflict_policy,
        last_synced_at=row.last_synced_at,
        last_sync_status=row.last_sync_status,
        dirty=row.dirty,
        poll_only=row.poll_only,
    )


#: `calendars_of`'s read, built once (decision IF4), with the parameter ``user_id``.
_CALENDARS_OF: Final = (
    sa.select(*VIEW_COLUMNS)
    .where(Calendar.user_id == sa.bindparam("user_id"))
    .order_by(Calendar.is_primary.desc(), Calendar.summary, Calendar.id)
)
