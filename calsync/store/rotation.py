"""Re-encrypting stored secrets under the newest key (``calsync rotate-keys``)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.store.secrets import SecretBox
from calsync.store.tables import NotificationPreference, OAuthToken

BATCH = 200


def rotate_stored_secrets(sessions: sessionmaker[Session], box: SecretBox) -> int:
    """Re-encrypt every stored secret not yet under ``box``'s newest key; return how many.

    Safe while the service runs: each batch is its own short transaction that locks only
    its rows, and a row written meanwhile under the newest key is simply skipped. Raises
    :class:`~calsync.store.secrets.SecretDecryptError` if a value decrypts under no key,
    before changing that batch.
    """
    return _rotate_tokens(sessions, box) + _rotate_webhook_secrets(sessions, box)


def _rotate_tokens(sessions: sessionmaker[Session], box: SecretBox) -> int:
    rotated = 0
    after = None
    while True:
        with sessions.begin() as session:
            query = sa.select(OAuthToken).order_by(OAuthToken.id).limit(BATCH).with_for_update()
            if after is not None:
                query = query.where(OAuthToken.id > after)
            rows = list(session.scalars(query))
            for row in rows:
                if not box.is_current(row.access_token_encrypted):
                    row.access_token_encrypted = box.rotate(row.access_token_encrypted)
                    rotated += 1
                refresh = row.refresh_token_encrypted
                if refresh is not None and not box.is_current(refresh):
                    row.refresh_token_encrypted = box.rotate(refresh)
                    rotated += 1
        if len(rows) < BATCH:
            return rotated
        after = rows[-1].id


def _rotate_webhook_secrets(sessions: sessionmaker[Session], box: SecretBox) -> int:
    rotated = 0
    with sessions.begin() as session:
        query = (
            sa.select(NotificationPreference)
            .where(NotificationPreference.webhook_secret_encrypted.is_not(None))
            .with_for_update()
        )
        for row in session.scalars(query):
            secret = row.webhook_secret_encrypted
            if secret is not None and not box.is_current(secret):
                row.webhook_secret_encrypted = box.rotate(secret)
                rotated += 1
    return rotated
