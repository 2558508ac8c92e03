"""The database schema: SQLAlchemy 2 tables, one class a table, one module an area.

Rows never leave ``calsync.store``: repositories turn them into domain values. The Alembic
migrations in ``migrations/`` are generated from, and checked against, this metadata
(``alembic check`` runs in CI), so every change here needs a migration. Importing this
package registers every table on ``Base.metadata``: import tables from here
(``from calsync.store.tables import Calendar``), which is also what ``migrations/env.py``
reads, never from an area's module alone.

The areas: `base` (what every table shares), `accounts` (users, their Google tokens,
redeemed sign-in states), `calendars` (calendars, events, attendees), `sync` (push
channels, the sync log, the outbox), `notices` (preferences, deliveries, Web Push
subscriptions), `operations` (the audit trail, idempotency keys, the queue heartbeat)
and `read_model` (the read model's Core tables).

Enumerated columns are short strings guarded by CHECK constraints, which behave the same on
PostgreSQL and SQLite and migrate more simply than native enum types.
"""

from __future__ import annotations

from calsync.store.tables.accounts import (
    ACCOUNT_STATUSES,
    ROLES,
    TOKEN_STATUSES,
    OAuthToken,
    UsedOAuthState,
    User,
)
from calsync.store.tables.base import (
    NAMING_CONVENTION,
    Base,
    BigIntKey,
    Timestamped,
    one_of,
    utcnow,
)
from calsync.store.tables.calendars import (
    ACCESS_ROLES,
    EVENT_STATUSES,
    RESPONSE_STATUSES,
    SYNC_STATES,
    TRANSPARENCIES,
    VISIBILITIES,
    Calendar,
    Event,
    EventAttendee,
)
from calsync.store.tables.notices import (
    DELIVERY_STATUSES,
    NOTICE_CHANNELS,
    NOTICE_KINDS,
    NotificationDelivery,
    NotificationPreference,
    PushSubscription,
)
from calsync.store.tables.operations import AuditEvent, IdempotencyKey, QueueHeartbeat
from calsync.store.tables.read_model import (
    event_documents,
    event_instances,
    instance_dirty,
    instance_horizon,
    instance_incomplete,
)
from calsync.store.tables.sync import (
    CHANNEL_KINDS,
    CHANNEL_STATUSES,
    OUTBOX_OPERATIONS,
    OUTBOX_STATUSES,
    OutboxEntry,
    SyncLog,
    WatchChannel,
)

__all__ = [
    "ACCESS_ROLES",
    "ACCOUNT_STATUSES",
    "CHANNEL_KINDS",
    "CHANNEL_STATUSES",
    "DELIVERY_STATUSES",
    "EVENT_STATUSES",
    "NAMING_CONVENTION",
    "NOTICE_CHANNELS",
    "NOTICE_KINDS",
    "OUTBOX_OPERATIONS",
    "OUTBOX_STATUSES",
    "RESPONSE_STATUSES",
    "ROLES",
    "SYNC_STATES",
    "TOKEN_STATUSES",
    "TRANSPARENCIES",
    "VISIBILITIES",
    "AuditEvent",
    "Base",
    "BigIntKey",
    "Calendar",
    "Event",
    "EventAttendee",
    "IdempotencyKey",
    "NotificationDelivery",
    "NotificationPreference",
    "OAuthToken",
    "OutboxEntry",
    "PushSubscription",
    "QueueHeartbeat",
    "SyncLog",
    "Timestamped",
    "UsedOAuthState",
    "User",
    "WatchChannel",
    "event_documents",
    "event_instances",
    "instance_dirty",
    "instance_horizon",
    "instance_incomplete",
    "one_of",
    "utcnow",
]
