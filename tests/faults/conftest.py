"""Fixtures of the fault suite: private Redis and PostgreSQL servers that tests may stop,
and the summary of every scenario's figures at the end of the run.

The shared servers are never stopped. A private server needs its binaries
(``redis-server``; PostgreSQL 15's ``initdb`` and ``pg_ctl``, see ``services.py``); without
them the test is skipped with the reason printed, except under CI (``CI=true``), where that
is an error: the fault suite must not pass by skipping.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from calsync.store.db import make_engine
from calsync.store.migrate import upgrade
from tests.conftest import IN_CI
from tests.faults.ledger import REPORTS
from tests.faults.services import (
    PrivatePostgres,
    PrivateRedis,
    missing_postgres,
    missing_redis,
    private_folder,
)


def cannot_run(reason: str) -> None:
    message = f"fault suite: {reason}"
    print(message)
    if IN_CI:
        pytest.fail(message + " - CI needs it", pytrace=False)
    pytest.skip(reason=message)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A Redis server of this test's own (restartable; no persistence)."""
    if reason := missing_redis():
        cannot_run(reason)
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _private_cluster() -> Iterator[PrivatePostgres]:
    if reason := missing_postgres():
        cannot_run(reason)
    folder = private_folder("calsync-faults-pg-")
    cluster = PrivatePostgres(folder).init()
    cluster.start()
    yield cluster
    if cluster.running():
        cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def private_pg(_private_cluster: PrivatePostgres) -> Iterator[tuple[PrivatePostgres, str]]:
    """A PostgreSQL server that this test may stop, and a migrated database on it."""
    cluster = _private_cluster
    if not cluster.running():
        cluster.start()
    admin = make_engine(f"{cluster.url}/postgres").execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text("DROP DATABASE IF EXISTS calsync_faults WITH (FORCE)"))
        connection.execute(sa.text("CREATE DATABASE calsync_faults"))
    admin.dispose()
    url = f"{cluster.url}/calsync_faults"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield cluster, url
    if not cluster.running():
        cluster.start()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per fault scenario: events lost and duplicate Google writes."""
    if not REPORTS:
        return
    terminalreporter.section("fault suite: events lost / duplicate Google writes")
    for verdict in REPORTS:
        terminalreporter.write_line(verdict.line())
