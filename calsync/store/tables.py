"""The database schema: SQLAlchemy 2 tables, one class a table.

Rows never leave ``calsync.store``: repositories turn them into domain values. The Alembic
migrations in ``migrations/`` are generated from, and checked against, this metadata
(``alembic check`` runs in CI), so every change here needs a migration.

Enumerated columns are short strings guarded by CHECK constraints, which behave the same on
PostgreSQL and SQLite and migrate more simply than native enum types.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from calsync.store.types import JSONDocument, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Auto-incrementing 64-bit keys; SQLite only auto-increments an INTEGER primary key.
BigIntKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utcnow() -> datetime:
    """The current instant, timezone-aware."""
    return datetime.now(UTC)


def one_of(column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    """A CHECK constraint that keeps ``column`` within ``values``."""
    allowed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_allowed")


ROLES = ("admin", "user")
ACCOUNT_STATUSES = ("active", "needs_reauth", "disabled")
TOKEN_STATUSES = ("valid", "needs_reauth", "revoked")
ACCESS_ROLES = ("owner", "writer", "reader", "freeBusyReader")
EVENT_STATUSES = ("confirmed", "tentative", "cancelled")
SYNC_STATES = ("synced", "pending", "conflict", "error")
TRANSPARENCIES = ("opaque", "transparent")
VISIBILITIES = ("default", "public", "private", "confidential")
RESPONSE_STATUSES = ("needsAction", "declined", "tentative", "accepted")
CHANNEL_KINDS = ("events", "calendar_list")
CHANNEL_STATUSES = ("active", "stopped")
OUTBOX_OPERATIONS = ("insert", "update", "delete")
OUTBOX_STATUSES = ("pending", "done", "failed")
NOTICE_KINDS = ("reminder", "change")
NOTICE_CHANNELS = ("email", "push", "webhook")
DELIVERY_STATUSES = ("pending", "sent", "failed", "skipped")


class Base(DeclarativeBase):
    """Declarative base carrying the shared metadata and constraint naming convention."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class Timestamped:
    """``created_at`` and ``updated_at``, set by the application clock."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class User(Timestamped, Base):
    """A person who signed in (or was created by an operator with ``calsync token``)."""

    __tablename__ = "users"
    __table_args__ = (
        one_of("role", ROLES),
        one_of("status", ACCOUNT_STATUSES),
        sa.Index(None, "google_subject", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    role: Mapped[str] = mapped_column(sa.String(16), default="user")
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    display_name: Mapped[str | None] = mapped_column(sa.String(200))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    #: Set when Google answered ``quotaExceeded``: the user's writes wait until then.
    writes_paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Calendar-list coalescing, as ``calendars.dirty`` / ``sync_queued_at`` are for
    #: events (`calsync.sync.kicks`): the list changed since its last read began, and
    #: when a read of it was queued (NULL: none queued or running).
    calendars_dirty: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    calendars_queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The Google account (its ``sub``) this user is, once one has signed in: sign-in
    #: matches on it, never on the email alone (``calsync.store.users.sign_in_google``).
    google_subject: Mapped[str | None] = mapped_column(sa.String(255))


class OAuthToken(Timestamped, Base):
    """A user's Google tokens, encrypted with the keys of ``CALSYNC_ENCRYPTION_KEYS``."""

    __tablename__ = "oauth_tokens"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "provider"),
        one_of("status", TOKEN_STATUSES),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(sa.String(32), default="google")
    provider_subject: Mapped[str | None] = mapped_column(sa.String(255))
    access_token_encrypted: Mapped[bytes] = mapped_column(sa.LargeBinary)
    refresh_token_encrypted: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    scopes: Mapped[str] = mapped_column(sa.Text, default="")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16), default="valid")
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Calendar(Timestamped, Base):
    """One provider calendar of one user, with its sync cursor and state."""

    __tablename__ = "calendars"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "provider", "provider_calendar_id"),
        sa.Index(None, "last_synced_at"),
        # The scheduler's sweep (`calsync.sync.kicks.claim_due`) reads only due rows:
        # polls by their time, lost slots by theirs, and the few dirty calendars.
        sa.Index(None, "next_poll_at"),
        sa.Index(None, "sync_queued_at"),
        sa.Index(
            "ix_calendars_dirty_unqueued",
            "id",
            postgresql_where=sa.text("dirty AND sync_queued_at IS NULL"),
            # (Each in the form the sweep's query is rendered in, or it is not used.)
            sqlite_where=sa.text("dirty = 1 AND sync_queued_at IS NULL"),
        ),
        one_of("access_role", ACCESS_ROLES),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(sa.String(32), default="google")
    provider_calendar_id: Mapped[str] = mapped_column(sa.String(1024))
    summary: Mapped[str] = mapped_column(sa.String(1024), default="")
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    access_role: Mapped[str] = mapped_column(sa.String(16), default="reader")
    is_primary: Mapped[bool] = mapped_column(default=False)
    selected: Mapped[bool] = mapped_column(default=True)
    sync_token: Mapped[str | None] = mapped_column(sa.Text)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sync_status: Mapped[str | None] = mapped_column(sa.String(16))
    dirty: Mapped[bool] = mapped_column(default=False)
    sync_queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    conflict_policy: Mapped[str | None] = mapped_column(sa.String(32))
    poll_only: Mapped[bool] = mapped_column(default=False)
    #: The sync lease: one pull at a time per calendar, across processes; it expires so
    #: that a crashed worker does not hold it for ever.
    sync_lease_owner: Mapped[str | None] = mapped_column(sa.String(128))
    sync_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the last pull started: coalescing keeps pulls at least a minimum interval apart.
    last_pull_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the next convergence audit is due (`calsync.sync.audit`); None until the
    #: scheduler first places the calendar in the audit period.
    next_audit_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    #: When the safety-net poll is next due (`calsync.sync.kicks.poll_slot`): at the
    #: calendar's own offset of the poll interval, so a fleet's polls spread evenly;
    #: None until the scheduler first places the calendar.
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The mass-deletion hold (`calsync.sync.deletion_guard`): the Google ids of the events
    #: a full listing would have deleted, kept until a second listing agrees, and since
    #: when (None: no hold).
    held_deletions: Mapped[list[str] | None] = mapped_column(JSONDocument)
    deletions_held_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Event(Timestamped, Base):
    """The local copy of one event: a single event, a series master, or one exception.

    ``base_version`` is the last version both sides agreed on, the base of the three-way
    merge. ``recurring_event_id`` is the provider id of the series master (as Google gives
    it); ``original_start_time`` identifies which instance an exception replaces.
    """

    __tablename__ = "events"
    __table_args__ = (
        sa.UniqueConstraint("calendar_id", "google_event_id"),
        sa.Index(None, "calendar_id", "start_time", "end_time"),
        sa.Index(None, "user_id", "start_time"),
        sa.Index(None, "calendar_id", "recurring_event_id"),
        # Expanded lists (calsync.store.event_queries): the singles of a range in start
        # order without reading rows, and the few series masters without the singles.
        sa.Index(
            "ix_events_singles_by_start",
            "user_id",
            "start_time",
            "id",
            postgresql_include=["end_time", "status", "category", "calendar_id", "all_day"],
            postgresql_where=sa.text(
                "is_recurring IS false AND recurring_event_id IS NULL AND deleted_at IS NULL"
            ),
            sqlite_where=sa.text(
                "is_recurring = 0 AND recurring_event_id IS NULL AND deleted_at IS NULL"
            ),
        ),
        # Exceptions in a range, for instances moved out of their series' span (0011).
        sa.Index(
            "ix_events_exceptions_by_start",
            "user_id",
            "start_time",
            postgresql_include=[
                "end_time",
                "status",
                "calendar_id",
                "all_day",
                "recurring_event_id",
            ],
            postgresql_where=sa.text("recurring_event_id IS NOT NULL AND deleted_at IS NULL"),
            sqlite_where=sa.text("recurring_event_id IS NOT NULL AND deleted_at IS NULL"),
        ),
        sa.Index(
            "ix_events_masters_by_start",
            "user_id",
            "start_time",
            postgresql_where=sa.text("is_recurring IS true"),
            sqlite_where=sa.text("is_recurring = 1"),
        ),
        one_of("status", EVENT_STATUSES),
        one_of("sync_state", SYNC_STATES),
        one_of("transparency", TRANSPARENCIES),
        one_of("visibility", VISIBILITIES),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    calendar_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("calendars.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    google_event_id: Mapped[str | None] = mapped_column(sa.String(1024))
    ical_uid: Mapped[str | None] = mapped_column(sa.String(1024))
    title: Mapped[str] = mapped_column(sa.String(1024), default="")
    description: Mapped[str | None] = mapped_column(sa.Text)
    location: Mapped[str | None] = mapped_column(sa.String(1024))
    category: Mapped[str | None] = mapped_column(sa.String(64))
    start_time: Mapped[datetime] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime] = mapped_column(UTCDateTime)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    #: The end's zone when it differs from the start's (Google allows that), else ``None``.
    end_timezone: Mapped[str | None] = mapped_column(sa.String(64))
    all_day: Mapped[bool] = mapped_column(default=False)
    is_recurring: Mapped[bool] = mapped_column(default=False)
    recurrence_rule: Mapped[str | None] = mapped_column(sa.Text)
    recurrence_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recurring_event_id: Mapped[str | None] = mapped_column(sa.String(1024))
    original_start_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The zone of a timed ``original_start_time``; ``None`` when it names a whole day.
    original_start_timezone: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), default="confirmed")
    organizer_email: Mapped[str | None] = mapped_column(sa.String(320))
    etag: Mapped[str | None] = mapped_column(sa.String(128))
    sequence: Mapped[int] = mapped_column(default=0)
    reminders: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    app_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONDocument)
    #: Google's busy/free, visibility and colour id (`calsync.domain.event_props`).
    transparency: Mapped[str] = mapped_column(
        sa.String(16), default="opaque", server_default="opaque"
    )
    visibility: Mapped[str] = mapped_column(
        sa.String(16), default="default", server_default="default"
    )
    color_id: Mapped[str | None] = mapped_column(sa.String(16))
    #: The conference (`calsync.domain.codec.conference_to_document`), ``NULL`` for none.
    conference: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    base_version: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    sync_state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    sync_error: Mapped[str | None] = mapped_column(sa.Text)
    conflict: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    remote_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Bumped by every local change; the API's etag (``If-Match``) is derived from it.
    version: Mapped[int] = mapped_column(default=1)
    #: While set and in the future, one push job owns this event's writes to Google, so
    #: that two workers never write the same event concurrently (it expires after a crash).
    push_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Google's ``eventType``, fixed at creation. No CHECK: Google adds types (``fromGmail``
    #: in 2024) and a pull must store them (decisions K1).
    event_type: Mapped[str] = mapped_column(
        sa.String(32), default="default", server_default="default"
    )
    #: The type's properties as Google spells them (``outOfOfficeProperties``, ...).
    type_properties: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)


class EventAttendee(Timestamped, Base):
    """One invitation: a person of the application (``user_id``) or an external email."""

    __tablename__ = "event_attendees"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "email"),
        sa.Index(None, "user_id"),
        one_of("response_status", RESPONSE_STATUSES),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    email: Mapped[str] = mapped_column(sa.String(320))
    display_name: Mapped[str | None] = mapped_column(sa.String(200))
    response_status: Mapped[str] = mapped_column(sa.String(16), default="needsAction")
    optional: Mapped[bool] = mapped_column(default=False)
    is_organizer: Mapped[bool] = mapped_column(default=False)


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


class QueueHeartbeat(Base):
    """The last heartbeat that went scheduler -> broker -> worker -> database.

    Proves the whole job path is alive (``/readyz`` and the queue-lag metric read it).
    """

    __tablename__ = "queue_heartbeats"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_by: Mapped[str] = mapped_column(sa.String(128))


class AuditEvent(Base):
    """A security-relevant event: sign-in, failed authentication, role change, key rotation.

    ``actor_id`` is the user who acted (None for anonymous or the operator's CLI);
    ``subject_id`` the user acted upon. ``details`` never holds a secret. Anonymous
    failures are counted, not repeated: ``repeat_key`` names their (action, address,
    reason, minute) and ``count`` says how many happened (``calsync.store.audit``).
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        sa.Index(None, "occurred_at"),
        sa.Index(None, "subject_id", "occurred_at"),
        sa.Index(None, "repeat_key", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(sa.String(64))
    actor_id: Mapped[uuid.UUID | None] = mapped_column()
    subject_id: Mapped[uuid.UUID | None] = mapped_column()
    remote_addr: Mapped[str | None] = mapped_column(sa.String(64))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    count: Mapped[int] = mapped_column(default=1, server_default=sa.text("1"))
    repeat_key: Mapped[str | None] = mapped_column(sa.String(64))


class UsedOAuthState(Base):
    """OAuth ``state`` values already redeemed, so that a replayed callback is refused."""

    __tablename__ = "used_oauth_states"
    __table_args__ = (sa.Index(None, "expires_at"),)

    state: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IdempotencyKey(Base):
    """The first answer to a POST sent with an ``Idempotency-Key``, replayed for repeats."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.Index(None, "created_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int] = mapped_column()
    response_body: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PushSubscription(Timestamped, Base):
    """A Web Push subscription of one user's browser or device."""

    __tablename__ = "push_subscriptions"
    __table_args__ = (sa.UniqueConstraint("user_id", "endpoint"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    endpoint: Mapped[str] = mapped_column(sa.String(2048))
    p256dh: Mapped[str] = mapped_column(sa.String(255))
    auth: Mapped[str] = mapped_column(sa.String(255))


# The read model of expanded lists (migration 0015, `calsync.store.instances`): Core
# tables, read and written by that module alone.
_API_ID = sa.String(1100).with_variant(sa.String(1100, collation="C"), "postgresql")

event_instances = sa.Table(
    "event_instances",
    Base.metadata,
    sa.Column("owner_id", sa.Uuid(), sa.ForeignKey("events.id", ondelete="CASCADE")),
    sa.Column("api_id", _API_ID),
    sa.Column("user_id", sa.Uuid(), nullable=False),
    sa.Column("calendar_id", sa.Uuid(), nullable=False),
    sa.Column("in_series", sa.Boolean(), nullable=False),
    sa.Column("sort_at", UTCDateTime(), nullable=False),
    sa.Column("end_at", UTCDateTime(), nullable=False),
    sa.Column("all_day", sa.Boolean(), nullable=False),
    sa.Column("long_span", sa.Boolean(), nullable=False),
    sa.Column("original_at", UTCDateTime()),
    sa.Column("original_zone", sa.String(64)),
    sa.Column("exception_id", sa.Uuid()),
    sa.Column("bookkeeping_id", sa.Uuid()),
    sa.Column("category", sa.String(64)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("owner_id", "api_id"),
    sa.Index("ix_event_instances_listing", "user_id", "sort_at", "api_id"),
    sa.Index(
        "ix_event_instances_long",
        "user_id",
        "sort_at",
        postgresql_where=sa.text("long_span"),
        sqlite_where=sa.text("long_span"),
    ),
)

instance_incomplete = sa.Table(
    "instance_incomplete",
    Base.metadata,
    sa.Column(
        "owner_id", sa.Uuid(), sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("user_id", sa.Uuid(), nullable=False, index=True),
    # set: the owner's items are held only near (decision HC2); unset: cut short
    sa.Column("held_from", UTCDateTime()),
    sa.Column("held_to", UTCDateTime()),
)

instance_dirty = sa.Table(
    "instance_dirty",
    Base.metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("user_id", sa.Uuid(), nullable=False, index=True),
    sa.Column("event_id", sa.Uuid(), nullable=False),
    sa.Column("calendar_id", sa.Uuid(), nullable=False),
    sa.Column("series_ref", sa.String(1024)),
    sa.Column("xact", sa.BigInteger(), index=True),
)

instance_horizon = sa.Table(
    "instance_horizon",
    Base.metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("first_at", UTCDateTime(), nullable=False),
    sa.Column("end_at", UTCDateTime(), nullable=False),
    sa.Column("filled", sa.Boolean(), nullable=False),
)

event_documents = sa.Table(
    "event_documents",
    Base.metadata,
    sa.Column(
        "event_id", sa.Uuid(), sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("body", sa.LargeBinary(), nullable=False),
    sa.Column("end_zone", sa.String(64)),
    sa.Column("series_id", sa.String(1024)),
)
"""The API's JSON of each live single, master (its generated instances' template) and
exception, as the read model's pages show it (migration 0016, decisions X1-X3)."""
