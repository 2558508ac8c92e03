"""The audit trail: security-relevant events, written in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.tables import AuditEvent, utcnow


class AuditAction(StrEnum):
    """What happened."""

    SIGN_IN = "sign_in"
    SIGN_IN_FAILED = "sign_in_failed"
    AUTH_FAILED = "auth_failed"
    ROLE_CHANGED = "role_changed"
    STATUS_CHANGED = "status_changed"
    TOKEN_REVOKED = "oauth_token_revoked"  # noqa: S105 - an action name, not a secret
    KEYS_ROTATED = "keys_rotated"
    TOKEN_MINTED = "token_minted"  # noqa: S105 - an action name, not a secret


def record(
    session: Session,
    action: AuditAction,
    *,
    actor_id: uuid.UUID | None = None,
    subject_id: uuid.UUID | None = None,
    remote_addr: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Add one audit event to ``session`` (committed with the caller's transaction).

    ``details`` must not hold secrets; callers pass reasons and ids only.
    """
    session.add(
        AuditEvent(
            occurred_at=utcnow(),
            action=action.value,
            actor_id=actor_id,
            subject_id=subject_id,
            remote_addr=remote_addr,
            details=dict(details) if details else None,
        )
    )


def recent(session: Session, *, limit: int = 100) -> list[AuditEvent]:
    """The newest audit events first (admin view)."""
    query = sa.select(AuditEvent).order_by(AuditEvent.occurred_at.desc()).limit(limit)
    return list(session.scalars(query))
