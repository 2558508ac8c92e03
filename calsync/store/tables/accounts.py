"""The people who use calsync and their access: `User`, their Google tokens (`OAuthToken`)
and the sign-in states already redeemed (`UsedOAuthState`).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from calsync.store.tables.base import Base, Timestamped, one_of
from calsync.store.types import UTCDateTime

ROLES = ("admin", "user")
ACCOUNT_STATUSES = ("active", "needs_reauth", "disabled")
TOKEN_STATUSES = ("valid", "needs_reauth", "revoked")


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


class UsedOAuthState(Base):
    """OAuth ``state`` values already redeemed, so that a replayed callback is refused."""

    __tablename__ = "used_oauth_states"
    __table_args__ = (sa.Index(None, "expires_at"),)

    state: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
