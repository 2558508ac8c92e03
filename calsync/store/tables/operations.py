"""Records of running the service: the security audit trail (`AuditEvent`), the first
answers of idempotent POSTs (`IdempotencyKey`) and the job path's heartbeat
(`QueueHeartbeat`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from calsync.store.tables.base import Base, utcnow
from calsync.store.types import JSONDocument, UTCDateTime


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


class QueueHeartbeat(Base):
    """The last heartbeat that went scheduler -> broker -> worker -> database.

    Proves the whole job path is alive (``/readyz`` and the queue-lag metric read it).
    """

    __tablename__ = "queue_heartbeats"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_by: Mapped[str] = mapped_column(sa.String(128))
