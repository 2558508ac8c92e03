"""Reminders and change notices: a user's preferences (`NotificationPreference`), the
due-time table of deliveries (`NotificationDelivery`) and Web Push subscriptions
(`PushSubscription`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from calsync.store.tables.base import Base, Timestamped, one_of, utcnow
from calsync.store.types import JSONDocument, UTCDateTime

NOTICE_KINDS = ("reminder", "change")
NOTICE_CHANNELS = ("email", "push", "webhook")
DELIVERY_STATUSES = ("pending", "sent", "failed", "skipped")


class NotificationPreference(Base):
    """How and when one user wants reminders and change notices."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    reminder_minutes: Mapped[list[int]] = mapped_column(JSONDocument, default=lambda: [10])
    channels: Mapped[list[str]] = mapped_column(JSONDocument, default=lambda: ["email"])
    webhook_url: Mapped[str | None] = mapped_column(sa.Text)
    webhook_secret_encrypted: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    change_notices: Mapped[bool] = mapped_column(default=True)
    quiet_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class NotificationDelivery(Timestamped, Base):
    """One notice to send (or sent) through one channel, exactly once by ``dedupe_key``."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        sa.Index(None, "status", "due_at"),
        sa.Index(None, "user_id", "created_at"),
        #: Replanning an event's reminders reads and replaces its rows.
        sa.Index(None, "event_id", "kind"),
        one_of("kind", NOTICE_KINDS),
        one_of("channel", NOTICE_CHANNELS),
        one_of("status", DELIVERY_STATUSES),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID | None] = mapped_column()
    kind: Mapped[str] = mapped_column(sa.String(16))
    channel: Mapped[str] = mapped_column(sa.String(16))
    occurrence_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lead_minutes: Mapped[int | None] = mapped_column()
    dedupe_key: Mapped[str] = mapped_column(sa.String(512), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)


class PushSubscription(Timestamped, Base):
    """A Web Push subscription of one user's browser or device."""

    __tablename__ = "push_subscriptions"
    __table_args__ = (sa.UniqueConstraint("user_id", "endpoint"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    endpoint: Mapped[str] = mapped_column(sa.String(2048))
    p256dh: Mapped[str] = mapped_column(sa.String(255))
    auth: Mapped[str] = mapped_column(sa.String(255))
