"""Google OAuth tokens at rest: always encrypted, decrypted only on the way to a request.

The repository takes and returns :class:`~calsync.store.secrets.Secret` values, never plain
strings, so a token cannot end up in a log line or an exception by accident.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.secrets import Secret, SecretBox
from calsync.store.tables import OAuthToken, User, utcnow


@dataclass(frozen=True)
class StoredCredentials:
    """A user's decrypted Google credentials, as a worker needs them."""

    user_id: uuid.UUID
    access_token: Secret
    refresh_token: Secret | None
    expires_at: datetime | None
    status: str
    scopes: str
    #: The stored access token's ciphertext as read: which tokens these are, for
    #: `mark_needs_reauth` (a sign-in or a refresh stores new ones). Not secret.
    stamp: bytes = b""


def save_tokens(
    session: Session,
    box: SecretBox,
    *,
    user_id: uuid.UUID,
    access_token: Secret,
    refresh_token: Secret | None,
    expires_at: datetime | None,
    scopes: str,
    provider_subject: str | None = None,
) -> None:
    """Store (or replace) the user's tokens encrypted, and mark them valid.

    A missing ``refresh_token`` keeps the one already stored: Google sends it only on the
    first consent. Does not commit.
    """
    row = _row(session, user_id, lock=True)
    if row is None:
        row = OAuthToken(user_id=user_id, provider="google")
        session.add(row)
    row.access_token_encrypted = box.encrypt(access_token.reveal())
    if refresh_token is not None:
        row.refresh_token_encrypted = box.encrypt(refresh_token.reveal())
    row.expires_at = expires_at
    row.scopes = scopes
    row.status = "valid"
    row.refreshed_at = utcnow()
    if provider_subject:
        row.provider_subject = provider_subject
    session.flush()


def load_credentials(
    session: Session,
    box: SecretBox,
    user_id: uuid.UUID,
    *,
    lock: bool = False,
    stop_writers: bool = True,
) -> StoredCredentials | None:
    """The user's decrypted credentials, or None when they never connected Google.

    With ``lock``, the row stays locked (``FOR UPDATE``) until the transaction ends: the
    refresh path uses it so that concurrent workers refresh once. On SQLite a lock stops
    every other writer (`calsync.store.db`); ``stop_writers=False`` locks on PostgreSQL
    only, for a transaction that waits on Google while it holds the lock (on SQLite two
    processes may then refresh at once, which Google allows).
    """
    row = _row(session, user_id, lock=lock, stop_writers=stop_writers)
    return None if row is None else _decrypted(box, user_id, row)


_tokens = cast(sa.Table, OAuthToken.__table__)
#: `read_credentials`' one statement, built once.
_READ: Final = sa.select(
    _tokens.c.access_token_encrypted,
    _tokens.c.refresh_token_encrypted,
    _tokens.c.expires_at,
    _tokens.c.status,
    _tokens.c.scopes,
).where(
    _tokens.c.user_id == sa.bindparam("user_id", type_=_tokens.c.user_id.type),
    _tokens.c.provider == "google",
)


def read_credentials(
    engine: sa.Engine, box: SecretBox, user_id: uuid.UUID
) -> StoredCredentials | None:
    """`load_credentials` without a lock, read as one statement on a connection of its
    own outside any transaction: a single ``SELECT`` is atomic by itself, so it needs no
    ``BEGIN`` and ``ROLLBACK`` (two round trips fewer for every job that calls Google;
    decision HD2). Never joins the caller's transaction, nor a request's connection."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        row = connection.execute(_READ, {"user_id": user_id}).one_or_none()
    return None if row is None else _decrypted(box, user_id, row)


def _decrypted(box: SecretBox, user_id: uuid.UUID, row: Any) -> StoredCredentials:
    """The credentials of a token row (an ORM row or a `_READ` row)."""
    refresh = row.refresh_token_encrypted
    return StoredCredentials(
        user_id=user_id,
        access_token=Secret(box.decrypt(row.access_token_encrypted)),
        refresh_token=Secret(box.decrypt(refresh)) if refresh is not None else None,
        expires_at=row.expires_at,
        status=row.status,
        scopes=row.scopes,
        stamp=row.access_token_encrypted,
    )


def granted_scopes(session: Session, user_id: uuid.UUID) -> str | None:
    """The space-separated scopes the user's stored tokens were granted (as Google's
    token response listed them), or None when no tokens are stored. Decrypts nothing."""
    query = sa.select(OAuthToken.scopes).where(
        OAuthToken.user_id == user_id, OAuthToken.provider == "google"
    )
    return session.scalar(query)


def mark_needs_reauth(session: Session, user_id: uuid.UUID, *, refused: bytes) -> bool:
    """The grant is gone: flag the tokens and the account until the user signs in again,
    but only if the stored tokens are still those Google refused (`refused`: their
    `StoredCredentials.stamp`, read in this transaction; on SQLite, which has no row
    locks, this condition is what keeps a sign-in that committed since from being
    overwritten). Returns whether it flagged them.

    A sign-in that stored new tokens while the refusal was on its way is left alone: the
    refusal concerned the old grant, and flagging the new one would strand the user
    until yet another sign-in (issue 15, decision F1). Lock the user's row first
    (`lock_user`), as the sign-in does, so the two take their locks in one order.
    """
    flagged = session.execute(
        sa.update(OAuthToken)
        .where(
            OAuthToken.user_id == user_id,
            OAuthToken.status == "valid",
            OAuthToken.access_token_encrypted == refused,
        )
        .values(status="needs_reauth")
    )
    if not flagged.rowcount:  # type: ignore[attr-defined]
        return False
    session.execute(
        sa.update(User)
        .where(User.id == user_id, User.status == "active")
        .values(status="needs_reauth")
    )
    return True


def lock_user(session: Session, user_id: uuid.UUID) -> None:
    """Lock the user's row until the transaction ends (``FOR UPDATE``; SQLite has one
    writer anyway). Whoever writes both a user's tokens and their status takes this lock
    before the token row's, so a sign-in and a refresh that found the grant revoked
    cannot deadlock."""
    session.execute(sa.select(User.id).where(User.id == user_id).with_for_update())


def reactivate(session: Session, user_id: uuid.UUID) -> None:
    """After new tokens were stored at sign-in: an account waiting for it
    (``needs_reauth``) is ``active`` again. Decided on the row as it is now (a refresh
    may have flagged it since the sign-in read it), never on a value read before."""
    session.execute(
        sa.update(User)
        .where(User.id == user_id, User.status == "needs_reauth")
        .values(status="active")
    )


def _row(
    session: Session, user_id: uuid.UUID, *, lock: bool, stop_writers: bool = True
) -> OAuthToken | None:
    query = sa.select(OAuthToken).where(
        OAuthToken.user_id == user_id, OAuthToken.provider == "google"
    )
    if lock:
        # the row as locked, not as the session may hold it from an earlier read
        query = query.with_for_update().execution_options(
            populate_existing=True, writer_lock=stop_writers
        )
    return session.scalar(query)
