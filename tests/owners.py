"""Rows of a user who owns one calendar, for tests that work on the store directly."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from calsync.store.tables import Calendar, User


def add_owner(
    session: Session, *, email: str | None = None, **calendar_values: Any
) -> tuple[uuid.UUID, uuid.UUID]:
    """Add a user (`email`, else a new random one) and their ``primary`` calendar, with
    `calendar_values` set on it; flushes, and returns (user id, calendar id)."""
    user = User(email=email or f"{uuid.uuid4().hex[:8]}@example.com")
    session.add(user)
    session.flush()
    calendar = Calendar(
        user_id=user.id, provider_calendar_id="primary", access_role="owner", **calendar_values
    )
    session.add(calendar)
    session.flush()
    return user.id, calendar.id
