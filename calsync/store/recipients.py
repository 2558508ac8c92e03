"""Who a notice may go to: users and the owners of events, as the notifier reads them.
Read-only."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Final, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from calsync.store.chunks import chunks
from calsync.store.events import any_of
from calsync.store.tables import Event as EventRow
from calsync.store.tables import User

__all__ = ["active_users", "owners_of", "owns_event", "user"]


def owners_of(session: Session, event_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """The owning user of each of the events that exist (by event id)."""
    owners: dict[uuid.UUID, uuid.UUID] = {}
    for match in any_of(session, EventRow.id, list(event_ids)):
        owners.update(session.execute(sa.select(EventRow.id, EventRow.user_id).where(match)).all())
    return owners


def owns_event(session: Session, user_id: uuid.UUID, event_id: uuid.UUID | None) -> bool:
    """Whether the event row `event_id` exists and is `user_id`'s (one primary-key read)."""
    if event_id is None:
        return False
    found = session.scalar(
        sa.select(EventRow.id).where(EventRow.id == event_id, EventRow.user_id == user_id)
    )
    return found is not None


def active_users(
    session: Session, ids: Collection[uuid.UUID], emails: Collection[str]
) -> dict[uuid.UUID, str]:
    """The users that are not disabled among `ids` and the owners of `emails`: their
    email by id. On PostgreSQL one statement built once (the values are two array
    parameters: every pull that announces changes runs it); elsewhere ``IN`` lists."""
    if session.get_bind().dialect.name == "postgresql":
        found = session.execute(_PG_ACTIVE_USERS, {"ids": sorted(ids), "emails": sorted(emails)})
        return {user_id: email for user_id, email in found}
    conditions: list[sa.ColumnElement[bool]] = [User.id.in_(sorted(ids))]
    for email_chunk in chunks(sorted(emails)):
        conditions.append(User.email.in_(email_chunk))
    return dict(
        session.execute(
            sa.select(User.id, User.email).where(sa.or_(*conditions), User.status != "disabled")
        ).all()
    )


_users = cast(sa.Table, User.__table__)
#: `active_users` on PostgreSQL, built once.
_PG_ACTIVE_USERS: Final = sa.select(_users.c.id, _users.c.email).where(
    sa.or_(
        _users.c.id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(_users.c.id.type))),
        _users.c.email
        == sa.any_(sa.bindparam("emails", type_=postgresql.ARRAY(_users.c.email.type))),
    ),
    _users.c.status != "disabled",
)


def user(session: Session, user_id: uuid.UUID) -> User | None:
    """One user's row (in the session's identity map once read)."""
    return session.get(User, user_id)
