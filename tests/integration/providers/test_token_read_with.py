"""AccessTokens.read_with: a token the caller read in its own statement stands in for the
next read of the row, once, and only when the usual read would hand it out unchanged.

Runs on SQLite (embedded) and PostgreSQL (production): the token columns are scalar
subqueries of the caller's statement, which both must accept.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, cast

import pytest
import sqlalchemy as sa

from calsync.providers.google.access import (
    AccountNeedsReauth,
    AccountNotConnected,
    stored_token_columns,
)
from calsync.store.tables import OAuthToken, User
from tests.integration.providers.conftest import Connected

pytestmark = pytest.mark.integration

_users = cast(sa.Table, User.__table__)


def read_row(alice: Connected, user_id: uuid.UUID | None = None) -> Any:
    """The token columns as a statement about the user reads them (here: a SELECT)."""
    with alice.services.sessions() as session:
        return session.execute(
            sa.select(_users.c.id, *stored_token_columns(_users.c.id)).where(
                _users.c.id == (user_id or alice.user_id)
            )
        ).one()


def store(alice: Connected, **values: Any) -> None:
    with alice.services.sessions.begin() as session:
        session.execute(sa.update(OAuthToken).values(**values))


def encrypted(alice: Connected, token: str) -> bytes:
    return alice.services.secrets.encrypt(token)


def test_the_token_read_is_handed_out_once_then_the_row_is_read(
    alice_in_each_mode: Connected,
) -> None:
    alice = alice_in_each_mode
    tokens = alice.services.access_tokens
    read = read_row(alice)
    store(alice, access_token_encrypted=encrypted(alice, "changed since"))

    with tokens.read_with(alice.user_id, read):
        first = tokens.for_user(alice.user_id)
        second = tokens.for_user(alice.user_id)

    assert first.reveal() == alice.google_tokens["access_token"]
    assert second.reveal() == "changed since"


def test_outside_the_block_and_for_another_user_the_row_is_read(
    alice_in_each_mode: Connected,
) -> None:
    alice = alice_in_each_mode
    tokens = alice.services.access_tokens
    read = read_row(alice)
    store(alice, access_token_encrypted=encrypted(alice, "changed since"))

    with tokens.read_with(uuid.uuid4(), read):
        assert tokens.for_user(alice.user_id).reveal() == "changed since"
    with tokens.read_with(alice.user_id, read):
        pass
    assert tokens.for_user(alice.user_id).reveal() == "changed since"


def test_a_token_close_to_expiry_is_refreshed_as_usual(alice_in_each_mode: Connected) -> None:
    alice = alice_in_each_mode
    tokens = alice.services.access_tokens
    store(alice, expires_at=alice.services.clock() + timedelta(seconds=10))
    read = read_row(alice)
    alice.control.clear_requests()

    with tokens.read_with(alice.user_id, read):
        fresh = tokens.for_user(alice.user_id)

    assert fresh.reveal() != alice.google_tokens["access_token"]
    assert len(alice.control.requests(path="/token")) == 1


def test_a_revoked_grant_is_not_handed_out(alice_in_each_mode: Connected) -> None:
    alice = alice_in_each_mode
    store(alice, status="needs_reauth")
    read = read_row(alice)

    with (
        alice.services.access_tokens.read_with(alice.user_id, read),
        pytest.raises(AccountNeedsReauth),
    ):
        alice.services.access_tokens.for_user(alice.user_id)


def test_a_user_without_tokens_reads_nulls(alice_in_each_mode: Connected) -> None:
    alice = alice_in_each_mode
    with alice.services.sessions.begin() as session:
        session.execute(sa.delete(OAuthToken))
    read = read_row(alice)

    assert (read.google_access_token, read.google_token_status) == (None, None)
    with (
        alice.services.access_tokens.read_with(alice.user_id, read),
        pytest.raises(AccountNotConnected),
    ):
        alice.services.access_tokens.for_user(alice.user_id)
