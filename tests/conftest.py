"""Fixtures shared by every tier.

Real services: PostgreSQL at ``CALSYNC_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432``)
and Redis at ``CALSYNC_TEST_REDIS`` (default ``redis://127.0.0.1:6379/15``). Each test run gets
its own freshly migrated PostgreSQL database, dropped at the end. When a service is missing
the tests that need it are skipped with the reason printed, except under CI (``CI=true``),
where a missing service is an error: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import redis
import sqlalchemy as sa
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.orm import Session, sessionmaker

from calsync import tracing
from calsync.config import Mode, Settings
from calsync.emulator.server import EmulatorServer
from calsync.emulator.testing import EmulatorControl
from calsync.store.db import make_engine, make_session_factory
from calsync.store.tables import Base
from tests.migrated import upgrade
from tests.sql_checks import sql_mistakes

PG_SERVER = os.environ.get("CALSYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("CALSYNC_TEST_REDIS", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Hypothesis in CI draws the same examples on every run (derandomized from each test's
# name, no example database), so a CI result never depends on luck; local runs draw new
# examples each time (and replay their failures from .hypothesis/) to find what CI's fixed
# ones miss. A failure a random run finds is fixed and kept as an `@example`.
hypothesis.settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
hypothesis.settings.load_profile("ci" if IN_CI else "default")


def _refuse_mistaken_sql(
    conn: sa.Connection, cursor: Any, statement: str, *args: Any, **kwargs: Any
) -> None:
    """Refuse, before it runs, any statement with a mistake of `tests.sql_checks`."""
    found = sql_mistakes(statement)
    if found:
        raise AssertionError(f"mistaken SQL on {conn.dialect.name}: {found}\n{statement}")


@pytest.fixture(autouse=True, scope="session")
def _every_statement_checked() -> Iterator[None]:
    """Every statement any test executes, on either database, is checked for the SQL
    mistakes that compile silently (a column compared with itself, a subquery in
    ``RETURNING``): the pull's token mix-up would have failed every test that pulled."""
    sa.event.listen(sa.Engine, "before_cursor_execute", _refuse_mistaken_sql)
    yield
    sa.event.remove(sa.Engine, "before_cursor_execute", _refuse_mistaken_sql)


def unavailable(what: str, error: Exception) -> None:
    """Skip (locally) or fail (in CI) because a real service is not there."""
    message = f"{what} is not reachable ({type(error).__name__}: {error})"
    if IN_CI:
        pytest.fail(message + " - CI needs it", pytrace=False)
    pytest.skip(reason=message)


@pytest.fixture(scope="session")
def pg_admin_engine() -> Iterator[sa.Engine]:
    """An AUTOCOMMIT engine on the server's maintenance database, to create databases."""
    engine = make_engine(f"{PG_SERVER}/postgres").execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        unavailable("PostgreSQL", exc)
    yield engine
    engine.dispose()


def create_database(admin: sa.Engine) -> str:
    """Create an empty, uniquely named database and return its URL."""
    name = f"calsync_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return f"{PG_SERVER}/{name}"


def drop_database(admin: sa.Engine, url: str) -> None:
    """Drop the database behind ``url``, disconnecting anyone still attached."""
    name = url.rsplit("/", 1)[1]
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def empty_pg_url(pg_admin_engine: sa.Engine) -> Iterator[str]:
    """A brand-new empty PostgreSQL database for this test only."""
    url = create_database(pg_admin_engine)
    yield url
    drop_database(pg_admin_engine, url)


@pytest.fixture(scope="session")
def migrated_pg_url(pg_admin_engine: sa.Engine) -> Iterator[str]:
    """A PostgreSQL database migrated to head, shared by the session."""
    url = create_database(pg_admin_engine)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    drop_database(pg_admin_engine, url)


def emptying_statement(connection: sa.Connection) -> str:
    """One statement that empties every table of calsync's and restarts its sequences:
    what ``TRUNCATE ... RESTART IDENTITY`` does, for the few rows a test leaves.

    ``TRUNCATE`` gives each of the 20 tables and 60 indexes a new file, which cost
    0.4-0.7 s per test at load 15-20 (30 % more since migrations 0015 and 0016); ``DELETE`` on
    near-empty tables costs milliseconds. The read model's horizon goes first, so the
    triggers on ``events`` and ``event_attendees`` record nothing while rows go; the
    other tables go children first."""
    tables = ["instance_horizon"] + [table.name for table in reversed(Base.metadata.sorted_tables)]
    sequences = connection.execute(
        sa.text("SELECT schemaname, sequencename, start_value FROM pg_sequences")
    ).all()
    deletes = [f'DELETE FROM "{name}"' for name in tables]  # noqa: S608 - table names
    restarts = [
        f'SELECT setval(\'"{schema}"."{name}"\', {start}, false)'
        for schema, name, start in sequences
    ]
    return "; ".join(deletes + restarts)


@pytest.fixture(scope="session")
def _pg_emptier(migrated_pg_url: str) -> Iterator[tuple[sa.Engine, str]]:
    """An engine on the session's database and the statement that empties it."""
    engine = make_engine(migrated_pg_url)
    with engine.connect() as connection:
        statement = emptying_statement(connection)
    yield engine, statement
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a migrated database of each kind: a new SQLite file, and the session's
    PostgreSQL database emptied (`pg_url`); for tests that must hold on both."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'calsync.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def pg_url(migrated_pg_url: str, _pg_emptier: tuple[sa.Engine, str]) -> str:
    """The session's migrated PostgreSQL database, emptied before the test."""
    engine, statement = _pg_emptier
    with engine.begin() as connection:
        connection.execute(sa.text(statement))
    return migrated_pg_url


@pytest.fixture
def silent_pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose server accepts TCP connections (the kernel's backlog) and
    never says a word: a hung server, or a proxy whose backend is gone."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"postgresql+psycopg://root@127.0.0.1:{listener.getsockname()[1]}/silent"
    finally:
        listener.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Redis at a database of its own, flushed before and after the test."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def embedded_settings(tmp_path: Path) -> Settings:
    """Embedded-mode settings (SQLite file, in-process broker) in a temporary folder."""
    return Settings.embedded(tmp_path)


@pytest.fixture
def production_settings(tmp_path: Path, pg_url: str, redis_url: str) -> Settings:
    """Production-mode settings on the real PostgreSQL and Redis."""
    return replace(
        Settings.embedded(tmp_path),
        mode=Mode.PRODUCTION,
        database_url=pg_url,
        redis_url=redis_url,
        run_emulator=False,
    )


@dataclass(frozen=True)
class FakeGoogle:
    """The in-process emulator standing in for Google, reset for the test."""

    url: str
    control: EmulatorControl

    def settings_for(
        self, settings: Settings, *, public_url: str = "http://testserver"
    ) -> Settings:
        """``settings`` with every Google call pointed at this emulator."""
        return replace(
            settings,
            google_api_base=self.url,
            google_oauth_base=self.url,
            google_client_id="calsync-dev",
            google_client_secret="calsync-dev-secret",
            public_url=public_url,
        )


@pytest.fixture(scope="session")
def _emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def fake_google(_emulator_server: EmulatorServer) -> Iterator[FakeGoogle]:
    """The emulator, reset, with its control API."""
    with EmulatorControl(_emulator_server.url) as control:
        control.reset()
        yield FakeGoogle(_emulator_server.url, control)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test, every finished span kept in memory."""
    exporter = tracing.install_memory_exporter()
    yield exporter
    tracing.uninstall_memory_exporter()
