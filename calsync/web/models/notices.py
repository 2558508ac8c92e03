"""Notices: preferences (`Preferences`, `PreferencesUpdate`), Web Push subscriptions
(`PushSubscription`, `PushSubscriptionSaved`) and ``GET /me/notices`` (`NoticePage`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from calsync.notify.preferences import MAX_LEAD_MINUTES, MAX_REMINDERS
from calsync.web.models.base import Closed, Moment, Uuid

ClockTime = Annotated[str, Field(pattern="^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Channel = Literal["email", "push", "webhook"]


class QuietHours(Closed):
    start: ClockTime
    end: ClockTime
    timezone: str | None = None


class Preferences(Closed):
    """The caller's notice preferences; the webhook secret is shown to its owner only."""

    reminder_minutes: list[int] | None = Field(description="null: the events' own reminders")
    channels: list[Channel]
    webhook_url: str | None
    webhook_secret: str | None
    change_notices: bool
    quiet_hours: QuietHours | None


class PreferencesUpdate(Closed):
    """Fields left out keep their values."""

    reminder_minutes: list[Annotated[int, Field(ge=0, le=MAX_LEAD_MINUTES)]] | None = Field(
        default=None, max_length=MAX_REMINDERS
    )
    channels: (
        Annotated[list[Channel], Field(json_schema_extra={"uniqueItems": True})]
        | (SkipJsonSchema[None])
    ) = None
    webhook_url: Annotated[str, Field(json_schema_extra={"format": "uri"})] | None = None
    change_notices: bool | SkipJsonSchema[None] = None
    quiet_hours: QuietHours | None = None


class PushKeys(Closed):
    p256dh: str = Field(description="uncompressed P-256 key")
    auth: str = Field(description="16-byte secret")


class PushSubscription(Closed):
    """A browser's ``PushSubscription.toJSON()``."""

    endpoint: Annotated[str, Field(json_schema_extra={"format": "uri"})]
    keys: PushKeys
    expirationTime: float | None = None  # noqa: N815 - the browser's spelling


class PushSubscriptionSaved(Closed):
    id: Uuid
    endpoint: str


class Notice(Closed):
    """One delivery record: a reminder or change notice on one channel."""

    id: Uuid
    kind: Literal["reminder", "change"]
    channel: Channel
    status: Literal["pending", "sent", "failed", "skipped"]
    reason: str | None
    event_id: str | None
    title: str | None
    occurrence_start: str | None
    lead_minutes: int | None
    change: str | None
    changed: list[str] | None
    due_at: Moment
    sent_at: str | None
    attempts: int
    created_at: Moment


class NoticePage(Closed):
    notices: list[Notice]
    next_cursor: str | None
