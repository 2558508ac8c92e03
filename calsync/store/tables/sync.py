"""The sync engine's own rows: Google push channels (`WatchChannel`), the log a user
reads (`SyncLog`) and the writes waiting for Google (`OutboxEntry`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from calsync.store.tables.base import Base, BigIntKey, Timestamped, one_of, utcnow
from calsync.store.types import JSONDocument, UTCDateTime

CHANNEL_KINDS = ("events", "calendar_list")
CHANNEL_STATUSES = ("active", "stopped")
OUTBOX_OPERATIONS = ("insert", "update", "delete")
OUTBOX_STATUSES = ("pending", "done", "failed")


class WatchChannel(Timestamped, Base):
    """A Google push channel: ``events.watch`` of a calendar or ``calendarList.watch``.

    The id is the channel id given to Google; its token is derived (an HMAC of the id), so
    it is not stored.
    """

    __tablename__ = "watch_channels"
    __table_args__ = (
        sa.Index(None, "status", "expires_at"),
        sa.Index(None, "calendar_id"),
        sa.Index(None, "user_id"),
        one_of("kind", CHANNEL_KINDS),
        one_of("status", CHANNEL_STATUSES),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    calendar_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("calendars.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(sa.String(16))
    resource_id: Mapped[str | None] = mapped_column(sa.String(256))
    resource_uri: Mapped[str | None] = mapped_column(sa.Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    last_message_number: Mapped[int | None] = mapped_column(sa.BigInteger)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the scheduler queued this channel's renewal (`calsync.sync.channels
    #: .claim_renewals`): not queued again until the claim runs out.
    renewal_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SyncLog(Base):
    """One sync run, push, conflict resolution or account event, as the user can read it."""

    __tablename__ = "sync_logs"
    __table_args__ = (sa.Index(None, "user_id", "sync_time"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    calendar_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("calendars.id", ondelete="SET NULL")
    )
    event_id: Mapped[uuid.UUID | None] = mapped_column()
    kind: Mapped[str] = mapped_column(sa.String(32))
    sync_status: Mapped[str] = mapped_column(sa.String(16))
    sync_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    pulled: Mapped[int] = mapped_column(default=0)
    changed: Mapped[int] = mapped_column(default=0)
    conflicts: Mapped[int] = mapped_column(default=0)
    api_calls: Mapped[int] = mapped_column(default=0)
    duration_ms: Mapped[int] = mapped_column(default=0)
    message: Mapped[str | None] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)


class OutboxEntry(Timestamped, Base):
    """A local change waiting to be written to Google, in order of ``id``.

    Written in the same transaction as the change itself, so nothing accepted is lost.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index(None, "status", "due_at"),
        sa.Index(None, "event_id"),
        one_of("operation", OUTBOX_OPERATIONS),
        one_of("status", OUTBOX_STATUSES),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    calendar_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("calendars.id", ondelete="CASCADE")
    )
    operation: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
