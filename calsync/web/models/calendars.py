"""Calendars: ``GET /calendars`` (`CalendarList`) and ``PATCH /calendars/{id}``
(`CalendarUpdate`, `Calendar`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from calsync.web.models.base import Closed, Uuid

ConflictPolicyName = Literal["last_updated_wins", "remote_wins", "local_wins", "manual"]


class CalendarSync(Closed):
    last_synced_at: str | None
    status: str | None
    dirty: bool
    poll_only: bool


class Calendar(Closed):
    """One of the caller's calendars, from Google's calendar list."""

    id: Uuid
    google_calendar_id: str
    summary: str
    timezone: str
    access_role: Literal["owner", "writer", "reader", "freeBusyReader"]
    writable: bool
    primary: bool
    selected: bool
    conflict_policy: ConflictPolicyName | None
    sync: CalendarSync


class CalendarList(Closed):
    calendars: list[Calendar]


class CalendarUpdate(Closed):
    conflict_policy: ConflictPolicyName | None = Field(
        default=None, description="null: the installation's default"
    )
