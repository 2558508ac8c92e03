"""Users' notification preferences (``notification_preferences``): one row per user who
changed a default. Rows only; `calsync.notify.preferences` gives them meaning. Nothing
here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.tables import NotificationPreference
from calsync.store.upsert import upsert

__all__ = ["of_user", "of_users", "save", "webhook_secret_of"]


#: `of_user`'s read, built once: the row's columns, not an ORM instance (decision IF3).
_OF_USER: Final = sa.select(*cast(sa.Table, NotificationPreference.__table__).c).where(
    NotificationPreference.user_id == sa.bindparam("user_id")
)


def of_user(session: Session, user_id: uuid.UUID) -> sa.Row[Any] | None:
    """The user's row (its columns by name), if they have one."""
    return session.execute(_OF_USER, {"user_id": user_id}).first()


def of_users(session: Session, user_ids: Collection[uuid.UUID]) -> Sequence[NotificationPreference]:
    """The rows of those of `user_ids` who have one."""
    if not user_ids:
        return []
    return session.scalars(
        sa.select(NotificationPreference).where(
            NotificationPreference.user_id.in_(sorted(user_ids))
        )
    ).all()


def webhook_secret_of(session: Session, user_id: uuid.UUID) -> bytes | None:
    """The user's webhook signing secret as stored (encrypted), or None."""
    return session.scalar(
        sa.select(NotificationPreference.webhook_secret_encrypted).where(
            NotificationPreference.user_id == user_id
        )
    )


def save(session: Session, user_id: uuid.UUID, values: Mapping[str, Any]) -> None:
    """Insert or replace the user's row with `values` (every column but ``user_id``)."""
    upsert(
        session,
        NotificationPreference.__table__,  # type: ignore[arg-type]
        {"user_id": user_id, **values},
        key=["user_id"],
    )
