"""A worker's pool pings a connection at checkout only when it sat idle (decision HP1).

What could go wrong: the ping's round trip paid at every checkout (three per pull); or,
skipping it, a connection the server dropped while it sat idle handed out as alive, so
that a job fails where a ping would have replaced the connection.

PostgreSQL only: SQLite's pool holds file handles, which no server drops (its engine
never pings).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.store.db import PoolSize, make_engine

pytestmark = pytest.mark.integration


@pytest.fixture
def pings(pg_url: str) -> Iterator[tuple[sa.Engine, list[int]]]:
    """A worker's engine (the default pool) whose pings are counted."""
    engine = make_engine(pg_url)
    counted: list[int] = []
    ping = engine.dialect.do_ping

    def counting(dbapi_connection: Any) -> bool:
        counted.append(1)
        return ping(dbapi_connection)

    engine.dialect.do_ping = counting  # type: ignore[method-assign]
    yield engine, counted
    engine.dispose()


def _backend(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def _drop(pg_url: str, pid: int) -> None:
    """End the server process of a connection, as a restart or a proxy would."""
    admin = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with admin.begin() as connection:
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


def test_a_connection_given_back_just_now_is_not_pinged(
    pings: tuple[sa.Engine, list[int]],
) -> None:
    engine, counted = pings
    # Given a connection opened and given back
    first = _backend(engine)
    # When it is checked out again at once, twice, as a pull's lease, token read and
    # storing transaction do
    again = [_backend(engine), _backend(engine)]
    # Then the same connection served each, and none was pinged
    assert again == [first, first]
    assert counted == []


def test_an_idle_connection_is_pinged_and_replaced_when_dropped(pg_url: str) -> None:
    # Given a pool that takes every connection given back as idle (window 0)
    engine = make_engine(pg_url, pool=PoolSize(ping_after_idle=0.0))
    try:
        first = _backend(engine)
        # When the server drops it while it sits in the pool
        _drop(pg_url, first)
        # Then the next checkout pings it, finds it gone, and hands out a new one
        assert _backend(engine) != first
    finally:
        engine.dispose()


def test_a_connection_dropped_within_the_window_fails_one_statement_then_is_replaced(
    pings: tuple[sa.Engine, list[int]], pg_url: str
) -> None:
    engine, counted = pings
    # Given a connection given back just now, which the server then drops
    first = _backend(engine)
    _drop(pg_url, first)
    # When it is checked out within the window: not pinged, its statement fails
    with pytest.raises(sa.exc.OperationalError) as failed, engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))
    assert failed.value.connection_invalidated
    # Then the pool replaced it: the next checkout works on a new connection
    assert _backend(engine) != first
    assert counted == []
