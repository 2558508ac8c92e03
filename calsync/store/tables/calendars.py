"""The local copy of Google calendars: `Calendar` (with its sync cursor and queue state),
`Event` (the truth the API reads and writes) and `EventAttendee`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from calsync.store.tables.base import Base, Timestamped, one_of
from calsync.store.types import JSONDocument, UTCDateTime

ACCESS_ROLES = ("owner", "writer", "reader", "freeBusyReader")
EVENT_STATUSES = ("confirmed", "tentative", "cancelled")
SYNC_STATES = ("synced", "pending", "conflict", "error")
TRANSPARENCIES = ("opaque", "transparent")
VISIBILITIES = ("default", "public", "private", "confidential")
RESPONSE_STATUSES = ("needsAction", "declined", "tentative", "accepted")


class Calendar(Timestamped, Base):
    """One provider calendar of one user, with its sync cursor and state."""

    __tablename__ = "calendars"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "provider", "provider_calendar_id"),
        sa.Index(None, "last_synced_at"),
        # What events' key refers to: an event's user is its calendar's owner (0019).
        sa.Index(None, "id", "user_id", unique=True),
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
    merge: ``NULL`` when Google has none, the empty document when it is the row itself
    (`calsync.store.bases`, as a pull leaves every row it stores). ``recurring_event_id``
    is the provider id of the series master (as Google gives it); ``original_start_time``
    identifies which instance an exception replaces.
    """

    __tablename__ = "events"
    __table_args__ = (
        sa.UniqueConstraint("calendar_id", "google_event_id"),
        # One key for both columns: the row's user is its calendar's owner, and exists
        # through the calendar's own key; one check a row instead of two (decision IX).
        sa.ForeignKeyConstraint(
            ["calendar_id", "user_id"], ["calendars.id", "calendars.user_id"], ondelete="CASCADE"
        ),
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
    calendar_id: Mapped[uuid.UUID] = mapped_column()
    #: Always the calendar's owner (the composite key above).
    user_id: Mapped[uuid.UUID] = mapped_column()
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
