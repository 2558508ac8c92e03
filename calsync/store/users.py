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


def list_accounts(
    session: Session, *, limit: int, after_email: str | None = None
) -> list[UserAccount]:
    """Up to `limit` users ordered by email (unique), those after `after_email` only."""
    query = sa.select(User).order_by(User.email).limit(limit)
    if after_email is not None:
        query = query.where(User.email > after_email)
    return [to_account(row) for row in session.scalars(query)]


def find_by_email(session: Session, email: str) -> UserAccount | None:
    """The user with ``email`` (compared case-insensitively), or None."""
    row = session.scalar(sa.select(User).where(User.email == normalise_email(email)))
    return to_account(row) if row else None


def find_by_id(session: Session, user_id: uuid.UUID) -> UserAccount | None:
    """The user with ``user_id``, or None."""
    row = session.get(User, user_id)
    return to_account(row) if row else None


def locked_row(session: Session, user_id: uuid.UUID) -> User | None:
    """The user's row, locked for the transaction (PostgreSQL ``FOR UPDATE``): for a
    change that reads it first (an admin's)."""
    return session.get(User, user_id, with_for_update=True, populate_existing=True)


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


class EmailOfAnotherAccount(Exception):
    """A Google account signed in with an email that belongs to a user bound to another
    Google account (the address was given up and taken again, or moved between accounts).

    Nothing was changed. ``user_id`` is the user who holds the email; an admin decides
    (:func:`release_email`).
    """

    def __init__(self, *, user_id: uuid.UUID, email: str, subject: str) -> None:
        super().__init__(f"{email} belongs to user {user_id}, bound to another Google account")
        self.user_id = user_id
        self.email = email
        self.subject = subject


#: The domain of the addresses released users are left with: ``.invalid`` is reserved
#: (RFC 2606), so no mail can ever reach one and no Google account can hold one.
RELEASED_DOMAIN: Final = "released.invalid"


def sign_in_google(
    session: Session, *, subject: str, email: str, display_name: str | None = None
) -> UserAccount:
    """The user who is the Google account ``subject``, for a sign-in with ``email``.

    - The user bound to ``subject``, whatever the email: their stored email follows
      Google's when no other user holds the new one, else it is kept.
    - Else the user with ``email`` whose subject is unknown (created by ``calsync token``
      or before subjects were stored): they adopt ``subject``.
    - Else, when no user has ``email``, a new user with :attr:`Role.USER`.

    Raises:
        EmailOfAnotherAccount: ``email`` belongs to a user bound to another subject; nothing
            is changed (the caller records the refusal).

    Does not commit.
    """
    address = normalise_email(email)
    row = session.scalar(sa.select(User).where(User.google_subject == subject))
    holder = session.scalar(sa.select(User).where(User.email == address))
    if row is not None:
        if row.email != address and holder is None:
            row.email = address
    elif holder is None:
        row = User(
            email=address, role=Role.USER.value, display_name=display_name, google_subject=subject
        )
        session.add(row)
    elif holder.google_subject is None:
        row = holder
        row.google_subject = subject
    else:
        raise EmailOfAnotherAccount(user_id=holder.id, email=address, subject=subject)
    if display_name and not row.display_name:
        row.display_name = display_name
    session.flush()
    return to_account(row)


def release_email(session: Session, user_id: uuid.UUID) -> tuple[str, UserAccount] | None:
    """Detach ``user_id`` from their email and disable them: an admin's decision that the
    Google account now signing in with that email is someone else.

    The user keeps their id, role, calendars, events and Google subject; their email
    becomes ``<id>@released.invalid`` and their status ``disabled``, so their tokens stop
    working and nothing is sent or synced for them. The next sign-in with the email
    creates a new user. Returns the released email and the account as it is now, or None
    for an unknown user. Does not commit.
    """
    row = session.get(User, user_id, with_for_update=True, populate_existing=True)
    if row is None:
        return None
    released = row.email
    row.email = f"{row.id}@{RELEASED_DOMAIN}"
    row.status = AccountStatus.DISABLED.value
    session.flush()
    return released, to_account(row)


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
