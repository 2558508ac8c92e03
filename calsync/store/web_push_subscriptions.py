"""Web Push subscriptions (``push_subscriptions``): one row per user and endpoint.

Callers validate what they store (`calsync.notify.subscriptions.parse`); nothing here
commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.tables import PushSubscription

__all__ = ["delete_owned", "of_user", "remove", "save"]


def save(
    session: Session,
    user_id: uuid.UUID,
    *,
    endpoint: str,
    p256dh: str,
    auth: str,
    now: datetime,
) -> tuple[uuid.UUID, bool]:
    """Store the user's subscription for `endpoint`, or refresh its keys if they have one.
    Returns its id and whether it is new."""
    row = session.scalar(
        sa.select(PushSubscription).where(
            PushSubscription.user_id == user_id, PushSubscription.endpoint == endpoint
        )
    )
    if row is not None:
        row.p256dh, row.auth, row.updated_at = p256dh, auth, now
        return row.id, False
    row = PushSubscription(
        user_id=user_id,
        endpoint=endpoint,
        p256dh=p256dh,
        auth=auth,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row.id, True


def delete_owned(session: Session, user_id: uuid.UUID, subscription_id: uuid.UUID) -> bool:
    """Delete one of `user_id`'s subscriptions; False when they have none with that id
    (another user's id included)."""
    result = session.execute(
        sa.delete(PushSubscription).where(
            PushSubscription.id == subscription_id, PushSubscription.user_id == user_id
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def of_user(session: Session, user_id: uuid.UUID) -> Sequence[PushSubscription]:
    """The user's subscriptions, oldest first."""
    return session.scalars(
        sa.select(PushSubscription)
        .where(PushSubscription.user_id == user_id)
        .order_by(PushSubscription.created_at)
    ).all()


def remove(session: Session, subscription: PushSubscription) -> None:
    """Delete a subscription read by `of_user` (its push service said it is gone)."""
    session.delete(subscription)
