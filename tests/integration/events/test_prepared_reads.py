"""An API process prepares its listing before it serves (decision HZ1).

`calsync.web.warm_up.prepare_reads` lists an empty month for nobody (the nil UUID) and
reads nobody's account, so that a new process's first month of pages runs statements
already built and compiled (SQLAlchemy's cache: ``cache_hit``) on a connection already
open. Each test starts "a new process": new services on the same database (their own
engine, compiled cache and pool). Both databases, three users: their pages (first and
after the cursor) are the same bytes as an old process's and as today's expansion,
nothing is written, a token for nobody is still refused, and a database that is down
at start leaves a process that starts and serves all the same. `calsync serve`'s app
factory prepares its process and freezes its start-up heap (decision HZ2). Nobody's
pages leave the page statement unprepared (decision II2).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine.interfaces import CacheStats
from starlette.testclient import TestClient

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.domain.accounts import Role
from calsync.store.db import api_pool
from calsync.store.migrate import upgrade
from calsync.web.app import create_app
from calsync.web.asgi import app_factory
from calsync.web.warm_up import prepare_reads
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, User, filled_month

pytestmark = pytest.mark.integration

WINDOW = {"start_date": "2031-03-01", "end_date": "2031-03-31", "expand": "true", "limit": "2"}


@pytest.fixture(params=["embedded", "production"])
def filled(
    request: pytest.FixtureRequest, fake_google: FakeGoogle
) -> Iterator[tuple[EventsApp, list[User]]]:
    """The model filled; three users with a weekly series (one instance moved) and a
    single each, so that each lists three pages of two."""
    yield from filled_month(request, fake_google, users=3, count=4, tag="prep")


@pytest.fixture(params=["production"])
def filled_postgres(
    request: pytest.FixtureRequest, fake_google: FakeGoogle
) -> Iterator[tuple[EventsApp, list[User]]]:
    """`filled` on PostgreSQL only: prepared statements are PostgreSQL's, so the test of
    what is prepared has no SQLite case to skip."""
    yield from filled_month(request, fake_google, users=3, count=4, tag="prep")


def pages(client: TestClient, user: User) -> list[bytes]:
    """Every page of `WINDOW` as the API answers it."""
    found, params = [], dict(WINDOW)
    while True:
        answer = client.get("/events", params=params, headers=user.headers)
        assert answer.status_code == 200, answer.text
        found.append(answer.content)
        cursor = answer.json()["next_cursor"]
        if not cursor:
            return found
        params["cursor"] = cursor


@contextmanager
def new_process(app: EventsApp, *, prepared: bool) -> Iterator[tuple[Services, TestClient]]:
    """Services and an app as a new API process makes them on `app`'s database: a new
    engine (its own compiled cache and pool), prepared first or not."""
    services = bootstrap(app.services.settings, clock=app.clock, pool=api_pool(2))
    try:
        if prepared:
            prepare_reads(services, app.clock())
        with TestClient(create_app(services)) as client:
            yield services, client
    finally:
        services.close()


@contextmanager
def compiled_fresh(engine: sa.Engine) -> Iterator[list[str]]:
    """The statements reading ``event_instances`` or ``users`` that `engine` compiled
    while the block ran (executed without a hit in its compiled cache)."""
    fresh: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: Any):
        if ("event_instances" in statement or "FROM users" in statement) and (
            context.cache_hit is not CacheStats.CACHE_HIT
        ):
            fresh.append(statement[:80])

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield fresh
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def test_a_prepared_process_lists_its_first_month_with_compiled_statements(
    filled: tuple[EventsApp, list[User]],
) -> None:
    app, people = filled
    expected = {user.id: pages(app.client, user) for user in people}
    with new_process(app, prepared=False) as (services, client):
        with compiled_fresh(services.engine) as fresh:
            assert pages(client, people[0]) == expected[people[0].id]
        assert fresh, "an unprepared process compiles its page statements on first use"
    with new_process(app, prepared=True) as (services, client):
        with compiled_fresh(services.engine) as fresh:
            for user in people:
                assert len(expected[user.id]) == 3  # a first page and two after a cursor
                assert pages(client, user) == expected[user.id]
        assert fresh == []
    with app.model_off():  # and they are what today's expansion lists
        assert {user.id: pages(app.client, user) for user in people} == expected


def test_preparing_writes_nothing_and_makes_no_account(
    filled: tuple[EventsApp, list[User]],
) -> None:
    app, people = filled
    engine = app.services.engine

    metadata = sa.MetaData()
    metadata.reflect(engine)

    def counts() -> dict[str, int]:
        with engine.connect() as connection:
            return {
                name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for name, table in metadata.tables.items()
            }

    before = counts()
    with new_process(app, prepared=True) as (_services, client):
        nobody = app.token(uuid.UUID(int=0), "nobody@example.com", Role.USER)
        refused = client.get(
            "/events", params=WINDOW, headers={"Authorization": f"Bearer {nobody}"}
        )
        assert refused.status_code == 401, refused.text
        other = client.get(
            "/events", params=WINDOW, headers={"Authorization": people[1].headers["Authorization"]}
        )
        assert other.status_code == 200
    after = counts()
    audits = [t for t in after if "audit" in t]
    assert {t: n for t, n in after.items() if t not in audits} == {
        t: n for t, n in before.items() if t not in audits
    }
    # the refused token's audit row is the one write, as without preparing (HU1)
    assert sum(after[t] - before[t] for t in audits) == 1


def test_a_process_whose_database_is_down_at_start_serves_all_the_same(
    filled: tuple[EventsApp, list[User]], caplog: pytest.LogCaptureFixture
) -> None:
    app, people = filled
    settings = app.services.settings
    if settings.database_url.startswith("postgresql"):
        down = "postgresql+psycopg://root@127.0.0.1:1/nowhere"
    else:
        down = "sqlite:////nonexistent-dir/for/calsync.db"
    broken = bootstrap(dataclasses.replace(settings, database_url=down), clock=app.clock)
    try:
        with caplog.at_level(logging.WARNING, logger="calsync.web.warm_up"):
            prepare_reads(broken, app.clock())  # logged, not raised
        assert "could not prepare the listing" in caplog.text
    finally:
        broken.close()
    with new_process(app, prepared=True) as (_services, client):
        assert pages(client, people[2]) == pages(app.client, people[2])


@pytest.mark.usefixtures("logging_restored")
def test_the_server_s_app_is_prepared_and_its_start_up_heap_frozen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`calsync serve`'s app factory runs `prepare_reads` (no warning: it succeeded) and
    leaves what it made out of the collector's full collections (decision HZ2)."""
    for name in [n for n in os.environ if n.startswith("CALSYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CALSYNC_STATE_DIR", str(tmp_path))
    services = bootstrap(Settings.from_env())
    upgrade(services.engine)
    services.close()
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        with caplog.at_level(logging.WARNING, logger="calsync.web.warm_up"):
            app = app_factory()
        assert gc.get_freeze_count() > 10_000
        assert "could not prepare" not in caplog.text
    finally:
        gc.unfreeze()
    app.state.services.close()


def test_preparing_leaves_the_page_statement_unprepared_until_a_user_lists(
    filled_postgres: tuple[EventsApp, list[User]],
) -> None:
    """Nobody's pages are not among the plans PostgreSQL's plan cache weighs (II2): after
    `prepare_reads` the process's one connection has no page statement prepared; a
    user's first page prepares it there (decision II2)."""
    app, people = filled_postgres
    assert app.services.settings.database_url.startswith("postgresql")

    def prepared_pages(services: Services) -> int:
        with services.engine.connect() as connection:
            found = connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_prepared_statements"
                    " WHERE statement LIKE :union AND statement LIKE :table"
                ),
                {"union": "%UNION ALL%", "table": "%event_instances%"},
            )
            return int(found.scalar_one())

    with new_process(app, prepared=True) as (services, client):
        assert services.engine.pool.checkedin() == 1  # the one connection it prepared
        assert prepared_pages(services) == 0
        answer = client.get("/events", params=WINDOW, headers=people[0].headers)
        assert answer.status_code == 200, answer.text
        assert prepared_pages(services) == 1
