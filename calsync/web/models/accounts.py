"""Users and admin: ``GET /me`` and sign-in (`User`, `SignedIn`,
`SignedInWithoutCalendar`), the admin routes (`UserUpdate`, `UserPage`, `AuditPage`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from calsync.web.models.base import Closed, Moment, Open, Uuid
from calsync.web.models.errors import ErrorBody


class User(Closed):
    """A user as ``GET /me``, sign-in and the admin routes show them."""

    id: Uuid
    email: str
    display_name: str | None
    role: Literal["admin", "user"]
    status: Literal["active", "needs_reauth", "disabled"]
    timezone: str
    calendar_access: bool | SkipJsonSchema[None] = Field(
        default=None,
        description="GET /me and sign-in only: the stored Google tokens grant calendar"
        " access (false: not connected)",
    )


class UserUpdate(Closed):
    """At least one of ``role`` and ``status``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    role: Literal["admin", "user"] | SkipJsonSchema[None] = None
    status: Literal["active", "disabled"] | SkipJsonSchema[None] = None


class UserPage(Closed):
    users: list[User]
    next_cursor: str | None


class AuditEntry(Closed):
    id: Uuid
    occurred_at: Moment
    action: str = Field(description="one of the actions the action filter takes")
    actor_id: str | None
    subject_id: str | None
    remote_addr: str | None
    details: dict[str, Any] = Field(description="what the action changed, by action")
    count: int = Field(description="repeats folded into this entry")


class AuditPage(Closed):
    events: list[AuditEntry]
    next_cursor: str | None


class SignedIn(Open):
    """The sign-in answer: calsync's JWT and the user."""

    token: str
    user: User


class SignedInWithoutCalendar(Closed):
    """403 calendar_access_not_granted: signed in, but not connected to the calendar."""

    error: ErrorBody
    token: str
    user: User
