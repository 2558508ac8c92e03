"""Re-encrypting stored secrets under the newest key (``calsync rotate-keys``)."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.store.secrets import SecretBox
from calsync.store.tables import NotificationPreference, OAuthToken

BATCH = 200

#: Called after each batch with the rows checked so far and the rows to check in all.
Progress = Callable[[int, int], None]


def rotate_stored_secrets(
    sessions: sessionmaker[Session], box: SecretBox, *, progress: Progress | None = None
) -> int:
    """Re-encrypt every stored secret not yet under ``box``'s newest key; return how many.

    Safe while the service runs: each batch is its own short transaction that locks only
    its rows, and a row written meanwhile under the newest key is simply skipped. Raises
    :class:`~calsync.store.secrets.SecretDecryptError` if a value decrypts under no key,
    before changing that batch. `progress` hears after each batch how far it got (rows
    added meanwhile may take the count past the total it was given first).
    """
    with sessions() as session:
        total = (session.scalar(sa.select(sa.func.count()).select_from(OAuthToken)) or 0) + (
            session.scalar(
                sa.select(sa.func.count())
                .select_from(NotificationPreference)
                .where(NotificationPreference.webhook_secret_encrypted.is_not(None))
            )
            or 0
        )
    checked = [0]

    def step(rows: int) -> None:
        checked[0] += rows
        if progress is not None:
            progress(checked[0], max(total, checked[0]))

    return _rotate_tokens(sessions, box, step) + _rotate_webhook_secrets(sessions, box, step)


def _rotate_tokens(
    sessions: sessionmaker[Session], box: SecretBox, step: Callable[[int], None]
) -> int:
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
        step(len(rows))
        if len(rows) < BATCH:
            return rotated
        after = rows[-1].id


def _rotate_webhook_secrets(
    sessions: sessionmaker[Session], box: SecretBox, step: Callable[[int], None]
) -> int:
    rotated = 0
    rows = 0
    with sessions.begin() as session:
        query = (
            sa.select(NotificationPreference)
            .where(NotificationPreference.webhook_secret_encrypted.is_not(None))
            .with_for_update()
        )
        for row in session.scalars(query):
            rows += 1
            secret = row.webhook_secret_encrypted
            if secret is not None and not box.is_current(secret):
                row.webhook_secret_encrypted = box.rotate(secret)
                rotated += 1
    step(rows)
    return rotated
