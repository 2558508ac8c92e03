"""Who a notice may go to: users and the owners of events, as the notifier reads them.
Read-only."""

from __future__ import annotations

import uuid
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.chunks import chunks
from calsync.store.events import any_of
from calsync.store.tables import Event as EventRow
from calsync.store.tables import User

__all__ = ["active_users", "owners_of", "user"]


def owners_of(session: Session, event_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """The owning user of each of the events that exist (by event id)."""
    owners: dict[uuid.UUID, uuid.UUID] = {}
    for match in any_of(session, EventRow.id, list(event_ids)):
        owners.update(session.execute(sa.select(EventRow.id, EventRow.user_id).where(match)).all())
    return owners


def active_users(
    session: Session, ids: Collection[uuid.UUID], emails: Collection[str]
) -> dict[uuid.UUID, str]:
    """The users that are not disabled among `ids` and the owners of `emails`: their
    email by id."""
    conditions: list[sa.ColumnElement[bool]] = [User.id.in_(sorted(ids))]
    for email_chunk in chunks(sorted(emails)):
        conditions.append(User.email.in_(email_chunk))
    return dict(
        session.execute(
            sa.select(User.id, User.email).where(sa.or_(*conditions), User.status != "disabled")
        ).all()
    )


def user(session: Session, user_id: uuid.UUID) -> User | None:
    """One user's row (in the session's identity map once read)."""
    return session.get(User, user_id)
