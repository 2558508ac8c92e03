"""The users repository: rows in, :class:`~calsync.domain.accounts.UserAccount` out."""

from __future__ import annotations

import uuid
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.domain.accounts import AccountStatus, Role, UserAccount, normalise_email
from calsync.store.tables import User


def to_account(row: User | sa.Row[*tuple[Any, ...]]) -> UserAccount:
    """The domain view of a ``users`` row (an ORM row, or a Core row of `_ACCOUNT`)."""
    return UserAccount(
        id=row.id,
        email=row.email,
        role=Role(row.role),
        status=AccountStatus(row.status),
        display_name=row.display_name,
        timezone=row.timezone,
    )


def find_by_email(session: Session, email: str) -> UserAccount | None:
    """The user with ``email`` (compared case-insensitively), or None."""
    row = session.scalar(sa.select(User).where(User.email == normalise_email(email)))
    return to_account(row) if row else None


def find_by_id(session: Session, user_id: uuid.UUID) -> UserAccount | None:
    """The user with ``user_id``, or None."""
    row = session.get(User, user_id)
    return to_account(row) if row else None


#: The columns `to_account` reads, of the user named by the ``user_id`` parameter.
_ACCOUNT: Final = sa.select(
    User.id, User.email, User.role, User.status, User.display_name, User.timezone
).where(User.id == sa.bindparam("user_id"))


def account_by_id(connection: sa.Connection, user_id: uuid.UUID) -> UserAccount | None:
    """`find_by_id` as one prebuilt statement on a plain connection: no ORM session or
    identity map, which cost more than the read itself on the hot path (authentication
    reads the token's user on every request)."""
    row = connection.execute(_ACCOUNT, {"user_id": user_id}).first()
    return to_account(row) if row is not None else None


def ensure_user(
    session: Session, email: str, *, role: Role | None = None, display_name: str | None = None
) -> UserAccount:
    """Return the user with ``email``, creating it when new.

    ``role``, when given, is set on a new or existing user (the operator's ``calsync token
    --role``); when omitted, a new user gets :attr:`Role.USER` and an existing one keeps
    theirs. Does not commit.
    """
    address = normalise_email(email)
    row = session.scalar(sa.select(User).where(User.email == address))
    if row is None:
        row = User(email=address, role=(role or Role.USER).value, display_name=display_name)
        session.add(row)
    else:
        if role is not None:
            row.role = role.value
        if display_name and not row.display_name:
            row.display_name = display_name
    session.flush()
    return to_account(row)
