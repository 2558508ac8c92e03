"""Google OAuth tokens at rest: always encrypted, decrypted only on the way to a request.

The repository takes and returns :class:`~calsync.store.secrets.Secret` values, never plain
strings, so a token cannot end up in a log line or an exception by accident.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

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
    session: Session, box: SecretBox, user_id: uuid.UUID, *, lock: bool = False
) -> StoredCredentials | None:
    """The user's decrypted credentials, or None when they never connected Google.

    With ``lock``, the row stays locked (``FOR UPDATE``) until the transaction ends: the
    refresh path uses it so that concurrent workers refresh once.
    """
    row = _row(session, user_id, lock=lock)
    if row is None:
        return None
    refresh = row.refresh_token_encrypted
    return StoredCredentials(
        user_id=user_id,
        access_token=Secret(box.decrypt(row.access_token_encrypted)),
        refresh_token=Secret(box.decrypt(refresh)) if refresh is not None else None,
        expires_at=row.expires_at,
        status=row.status,
        scopes=row.scopes,
    )


def granted_scopes(session: Session, user_id: uuid.UUID) -> str | None:
    """The space-separated scopes the user's stored tokens were granted (as Google's
    token response listed them), or None when no tokens are stored. Decrypts nothing."""
    query = sa.select(OAuthToken.scopes).where(
        OAuthToken.user_id == user_id, OAuthToken.provider == "google"
    )
    return session.scalar(query)


def mark_needs_reauth(session: Session, user_id: uuid.UUID) -> None:
    """The grant is gone: flag the tokens and the account until the user signs in again."""
    session.execute(
        sa.update(OAuthToken).where(OAuthToken.user_id == user_id).values(status="needs_reauth")
    )
    session.execute(sa.update(User).where(User.id == user_id).values(status="needs_reauth"))


def _row(session: Session, user_id: uuid.UUID, *, lock: bool) -> OAuthToken | None:
    query = sa.select(OAuthToken).where(
        OAuthToken.user_id == user_id, OAuthToken.provider == "google"
    )
    if lock:
        query = query.with_for_update()
    return session.scalar(query)
