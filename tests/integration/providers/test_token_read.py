"""`AccessTokens.for_user` reads a user's stored token as one statement outside any
transaction (decision HD2), on both databases, and still hands each user their own
token and refuses flagged or missing ones."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.providers.errors import AccountNeedsReauth, AccountNotConnected
from calsync.providers.google.oauth import SCOPES
from calsync.store import credentials
from calsync.store.secrets import Secret, SecretBox
from calsync.store.tables import OAuthToken
from calsync.sync.access_tokens import AccessTokens
from tests.owners import add_owner

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
BOX = SecretBox([SecretBox.generate_key()])


class NoOAuth:
    """Google's token endpoint, which no test here may need (the tokens are fresh)."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Google's token endpoint was called ({name})")


def _user_with_tokens(sessions: sessionmaker[Session], token: str) -> uuid.UUID:
    with sessions.begin() as session:
        user_id, _ = add_owner(session)
        credentials.save_tokens(
            session,
            BOX,
            user_id=user_id,
            access_token=Secret(token),
            refresh_token=Secret(f"refresh-{token}"),
            expires_at=NOW + timedelta(hours=1),
            scopes=" ".join(SCOPES),
        )
    return user_id


def test_each_user_gets_their_own_token_read_without_a_transaction(
    sessions: sessionmaker[Session],
) -> None:
    # Given two users with tokens of their own, one user without any, one flagged
    ann, ben = (_user_with_tokens(sessions, t) for t in ("ann-token", "ben-token"))
    flagged = _user_with_tokens(sessions, "cat-token")
    with sessions.begin() as session:
        session.execute(
            sa.update(OAuthToken).where(OAuthToken.user_id == flagged).values(status="needs_reauth")
        )
        stranger, _ = add_owner(session)
    tokens = AccessTokens(sessions, BOX, NoOAuth(), lambda: NOW)  # type: ignore[arg-type]
    engine = sessions.kw["bind"]
    in_transaction: list[bool] = []

    def after_statement(connection: sa.Connection, *_: object) -> None:
        in_transaction.append(_driver_in_transaction(connection.connection.driver_connection))

    sa.event.listen(engine, "after_cursor_execute", after_statement)
    try:
        # When each asks for a token
        got = {user: tokens.for_user(user).reveal() for user in (ann, ben, ann)}
        with pytest.raises(AccountNeedsReauth):
            tokens.for_user(flagged)
        with pytest.raises(AccountNotConnected):
            tokens.for_user(stranger)
    finally:
        sa.event.remove(engine, "after_cursor_execute", after_statement)
    # Then each got exactly their own, in one statement each, and no transaction was
    # left open by a read (on PostgreSQL a transaction costs BEGIN and ROLLBACK round
    # trips; sqlite3 begins none for a SELECT anyway)
    assert got == {ann: "ann-token", ben: "ben-token"}
    assert in_transaction == [False] * 5, in_transaction


def _driver_in_transaction(driver_connection: Any) -> bool:
    """Whether the driver's connection is inside a transaction (psycopg or sqlite3)."""
    info = getattr(driver_connection, "info", None)
    if info is not None:  # psycopg
        return bool(info.transaction_status != info.transaction_status.IDLE)
    return bool(driver_connection.in_transaction)
