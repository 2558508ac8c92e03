"""A PostgreSQL engine gives up on a server that never answers, and keeps its
connections alive by TCP keepalives (`calsync.store.db.PG_CONNECTION_DEFAULTS`).

What could go wrong: libpq waits for ever by default for a server that accepts the TCP
connection and never speaks (hung, or a proxy whose backend is gone), so every thread
that needed a connection - each API request in turn - hung with it; and an operator's
own ``?connect_timeout=`` in the URL overridden by ours.

PostgreSQL only: SQLite opens a file, no server can leave it waiting.
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from calsync.store.db import PG_CONNECTION_DEFAULTS, connection_defaults, make_engine

pytestmark = pytest.mark.integration

#: Far above the engine's connect timeout; without one the connect never returned. Not
#: a speed figure: whether it returns at all.
NEVER = 45.0


def _connect_outcome(engine: sa.Engine) -> BaseException | str | None:
    """What connecting did: the error raised, ``"connected"``, or None if it had not
    returned after `NEVER` seconds."""
    outcome: list[BaseException | str] = []

    def connect() -> None:
        try:
            with engine.connect():
                outcome.append("connected")
        except BaseException as error:  # handed to the test's thread
            outcome.append(error)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(NEVER)
    return outcome[0] if outcome else None


def test_a_server_that_never_answers_fails_the_connect_instead_of_holding_it(
    silent_pg_url: str,
) -> None:
    engine = make_engine(silent_pg_url)
    try:
        outcome = _connect_outcome(engine)
    finally:
        engine.dispose()
    assert outcome is not None, "the connect waited for a server that never answers"
    assert isinstance(outcome, OperationalError), outcome
    assert "timeout" in str(outcome).lower()


def test_an_operator_s_own_timeout_in_the_url_wins(silent_pg_url: str) -> None:
    url = f"{silent_pg_url}?connect_timeout=3"
    assert "connect_timeout" not in connection_defaults(url)
    assert connection_defaults(url)["keepalives_idle"] == PG_CONNECTION_DEFAULTS["keepalives_idle"]
    engine = make_engine(url)
    try:
        assert isinstance(_connect_outcome(engine), OperationalError)
    finally:
        engine.dispose()


def test_a_real_server_s_connections_carry_the_timeout_and_keepalives(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT 1")) == 1
            raw = connection.connection.dbapi_connection
            assert raw is not None
            parameters = raw.info.get_parameters()  # type: ignore[attr-defined]
    finally:
        engine.dispose()
    for name, value in PG_CONNECTION_DEFAULTS.items():
        assert parameters.get(name) == str(value), (name, parameters)
