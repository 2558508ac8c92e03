"""Redeemed OAuth ``state`` values: a sign-in callback's state is good once.

The state itself is signed and bound to the browser (`calsync.web.auth.oauth_state`);
this table only remembers which ones were used until they expire, so that a replayed
callback is refused.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.store.tables import UsedOAuthState

__all__ = ["redeem_state"]


def redeem_state(
    sessions: sessionmaker[Session], *, nonce: str, keep_until: datetime, now: datetime
) -> bool:
    """Mark the state `nonce` used until `keep_until`, in a transaction of its own, and
    forget the states expired by `now`. False when it already was used (a replay):
    nothing is then written. Two callbacks racing with one state: one wins."""
    try:
        with sessions.begin() as session:
            session.execute(sa.delete(UsedOAuthState).where(UsedOAuthState.expires_at < now))
            session.add(UsedOAuthState(state=nonce, expires_at=keep_until))
    except sa.exc.IntegrityError:
        return False
    return True
