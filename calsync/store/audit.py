"""The audit trail: security-relevant events, written in the caller's transaction.

Events about a user (a sign-in, a role change) are one row each. Anonymous failures that
anyone can send in floods (a bad bearer token, a forged OAuth callback) are counted
instead: :func:`record_repeated` keeps one row per (action, address, reason) and clock
minute and adds to its ``count``, so a flood from one address grows the table by at most
one row per reason and minute (the reasons are a small fixed set).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from calsync.store.tables import AuditEvent, utcnow

#: The longest client address kept (the column's size).
MAX_ADDRESS: Final = 64

_events = cast(sa.Table, AuditEvent.__table__)


class AuditAction(StrEnum):
    """What happened."""

    SIGN_IN = "sign_in"
    SIGN_IN_FAILED = "sign_in_failed"
    #: A completed Google sign-in that calsync refused (the email is another Google
    #: account's user's, or the user is disabled).
    SIGN_IN_REFUSED = "sign_in_refused"
    AUTH_FAILED = "auth_failed"
    ROLE_CHANGED = "role_changed"
    STATUS_CHANGED = "status_changed"
    #: An admin detached a user from their email (``POST /admin/users/{id}/release-email``).
    EMAIL_RELEASED = "email_released"
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
            remote_addr=_address(remote_addr),
            details=dict(details) if details else None,
        )
    )


def record_repeated(
    session: Session,
    action: AuditAction,
    *,
    remote_addr: str | None,
    reason: str,
    now: datetime,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Count one anonymous failure: the first of its (action, address, reason) in the
    minute of ``now`` is a new row (``occurred_at`` = ``now``, ``details`` = ``reason``
    plus ``details``), each later one adds 1 to that row's ``count`` and changes nothing
    else. One atomic statement, safe under concurrency on both databases.

    ``reason`` must come from a small fixed set (it is part of the key): never echo
    what the client sent into it.
    """
    address = _address(remote_addr)
    minute = now.replace(second=0, microsecond=0)
    key = hashlib.sha256(
        "\x00".join((action.value, address or "", reason, minute.isoformat())).encode()
    ).hexdigest()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(_events) if dialect == "postgresql" else sqlite.insert(_events)
    statement = insert.values(
        id=uuid.uuid4(),
        occurred_at=now,
        action=action.value,
        remote_addr=address,
        details={"reason": reason, **(details or {})},
        count=1,
        repeat_key=key,
    ).on_conflict_do_update(
        index_elements=[_events.c.repeat_key], set_={"count": _events.c["count"] + 1}
    )
    session.execute(statement)


def recent(
    session: Session,
    *,
    limit: int = 100,
    before: tuple[datetime, uuid.UUID] | None = None,
    action: str | None = None,
) -> list[AuditEvent]:
    """The newest audit events first (admin view): at most `limit`, only `action`'s when
    given, and only those after the keyset position `before` (occurred_at, id) in that
    order."""
    query = sa.select(AuditEvent)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if before is not None:
        at, row_id = before
        query = query.where(
            sa.or_(
                AuditEvent.occurred_at < at,
                sa.and_(AuditEvent.occurred_at == at, AuditEvent.id < row_id),
            )
        )
    query = query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit)
    return list(session.scalars(query))


def _address(remote_addr: str | None) -> str | None:
    return remote_addr[:MAX_ADDRESS] if remote_addr else None
