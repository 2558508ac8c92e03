"""One database connection per request, and no pre-ping (decisions U1, U2).

Each request of several users, on both databases, checks out exactly one pooled
connection: authentication's read and the route's sessions share it. With the API's pool
(no pre-ping), a connection the server dropped while idle costs no failed request: the
authentication read finds it dead and retries on a fresh one.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2 as httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from calsync.config import Settings
from calsync.store.db import RequestConnection, api_pool, make_engine
from calsync.threaded_server import ThreadedServer
from calsync.web.app import create_app
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, User, running

WEEK = {"start_date": "2031-03-03", "end_date": "2031-03-09", "expand": "true"}


class Checkouts:
    """Pool checkouts of an engine, and the most connections checked out at once."""

    def __init__(self, engine: sa.Engine) -> None:
        self.count = 0
        self.out = 0
        self.most = 0
        event.listen(engine, "checkout", self._checkout)
        event.listen(engine, "checkin", self._checkin)

    def _checkout(self, *_: Any) -> None:
        self.count += 1
        self.out += 1
        self.most = max(self.most, self.out)

    def _checkin(self, *_: Any) -> None:
        self.out -= 1

    def reset(self) -> None:
        self.count, self.most = 0, self.out


def event_body(title: str) -> dict[str, str]:
    return {
        "title": title,
        "start_time": "2031-03-04T10:00:00+00:00",
        "end_time": "2031-03-04T11:00:00+00:00",
    }


def requests_of(app: EventsApp, user: User) -> Iterator[tuple[str, Any]]:
    """Each route a signed-in user uses, one request at a time, with its name."""
    client, headers = app.client, user.headers
    yield "GET /me", client.get("/me", headers=headers)
    yield "GET /calendars", client.get("/calendars", headers=headers)
    created = client.post("/events", json=event_body(user.email), headers=headers)
    yield "POST /events", created
    event_id = created.json()["id"]
    yield "GET /events expanded", client.get("/events", params=WEEK, headers=headers)
    yield "GET /events/{id}", client.get(f"/events/{event_id}", headers=headers)
    yield (
        "PUT /events/{id}",
        client.put(f"/events/{event_id}", json={"title": "moved"}, headers=headers),
    )
    yield "DELETE /events/{id}", client.delete(f"/events/{event_id}", headers=headers)
    yield "POST /sync", client.post("/sync", headers=headers)


def test_each_request_checks_out_one_connection(any_app: EventsApp) -> None:
    app = any_app
    users = [app.connect(f"conn{n}@example.com") for n in range(3)]
    checkouts = Checkouts(app.services.engine)
    for user in users:
        for name, response in requests_of_counted(app, user, checkouts):
            assert response[0].status_code < 300, (name, response[0].text)
            assert response[1] == 1, f"{name} of {user.email}: {response[1]} checkouts"
            assert checkouts.out == 0, f"{name} kept its connection after the answer"


def requests_of_counted(
    app: EventsApp, user: User, checkouts: Checkouts
) -> Iterator[tuple[str, tuple[Any, int]]]:
    """`requests_of`, each with the checkouts it made (counted before the next starts)."""
    checkouts.reset()
    for name, response in requests_of(app, user):
        yield name, (response, checkouts.count)
        checkouts.reset()


def test_a_bad_token_checks_out_one_connection_for_its_audit(any_app: EventsApp) -> None:
    app = any_app
    checkouts = Checkouts(app.services.engine)
    answer = app.client.get("/me", headers={"Authorization": "Bearer not-a-token"})
    assert answer.status_code == 401
    assert checkouts.count == 1  # the audit row; the token was refused before any read


# --- no pre-ping: a dropped connection is replaced, not answered with an error ---------


@pytest.fixture(params=["embedded", "production"])
def api_app(request: pytest.FixtureRequest, fake_google: FakeGoogle) -> Iterator[EventsApp]:
    """Each mode, with an API process's pool: no pre-ping."""
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    yield from running(settings, fake_google, pool=api_pool(4))


def drop_idle_connections(engine: sa.Engine) -> int:
    """Have the server drop every connection the pool keeps idle, as a database restart
    or an idle timeout would; returns how many were dropped."""
    if engine.dialect.name == "postgresql":
        admin = sa.create_engine(engine.url, poolclass=sa.NullPool)
        with admin.connect() as connection:
            dropped = connection.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        admin.dispose()
        return int(dropped)
    # SQLite has no server: close the pooled connections' handles under SQLAlchemy.
    idle = list(engine.pool._pool.queue)  # type: ignore[attr-defined]
    for record in idle:
        record.dbapi_connection.close()
    return len(idle)


def test_requests_after_the_server_dropped_the_pooled_connections_succeed(
    api_app: EventsApp,
) -> None:
    app = api_app
    users = [app.connect(f"drop{n}@example.com") for n in range(3)]
    # Warm the pool: each user's requests leave connections idle in it.
    for user in users:
        assert app.client.get("/events", params=WEEK, headers=user.headers).status_code == 200
    assert drop_idle_connections(app.services.engine) >= 1
    for user in users:
        listed = app.client.get("/events", params=WEEK, headers=user.headers)
        assert listed.status_code == 200, listed.text
        created = app.client.post("/events", json=event_body(user.email), headers=user.headers)
        assert created.status_code == 201, created.text
        assert app.get(user, created.json()["id"])["title"] == user.email


# --- permits: at most API_THREADS requests hold a connection ---------------------------


@pytest.fixture(params=["embedded", "production"])
def two_thread_app(request: pytest.FixtureRequest, fake_google: FakeGoogle) -> Iterator[EventsApp]:
    """Each mode, an API process of two threads and its pool (2 kept, 2 overflow)."""
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    yield from running(settings, fake_google, pool=api_pool(2), api_threads=2)


def test_concurrent_requests_hold_no_more_connections_than_threads(
    two_thread_app: EventsApp,
) -> None:
    app = two_thread_app
    users = [app.connect(f"many{n}@example.com") for n in range(3)]
    checkouts = Checkouts(app.services.engine)
    with ThreadedServer(create_app(app.services), name="calsync-permits") as server:

        def list_week(n: int) -> int:
            user = users[n % len(users)]
            with httpx.Client(base_url=server.url, timeout=60) as client:
                return client.get("/events", params=WEEK, headers=user.headers).status_code

        with ThreadPoolExecutor(12) as pool:
            statuses = list(pool.map(list_week, range(36)))
    assert statuses == [200] * 36
    # Two permits: a request holds its connection from authentication to the answer,
    # and only two do at a time, so a thread never waits for one
    assert checkouts.most <= 2, checkouts.most


# --- the account read: no transaction round trips on PostgreSQL (decision HB2) --------


@pytest.mark.parametrize("mode", ["embedded", "production"])
def test_the_first_read_runs_outside_a_transaction_and_the_route_inside_one(
    request: pytest.FixtureRequest, mode: str
) -> None:
    settings: Settings = request.getfixturevalue(f"{mode}_settings")
    engine = make_engine(settings.database_url, pool=api_pool(2))
    postgres = engine.dialect.name == "postgresql"
    # PostgreSQL's now() is the transaction's start: a BEGIN sent before the statement
    # makes it earlier than the statement's own time; alone, the two are equal.
    probe = "SELECT now() = statement_timestamp()" if postgres else "SELECT 1"
    try:
        for _ in range(3):  # the pool hands the same connection back: each use is alike
            held = RequestConnection(engine)
            first = held.first_statement(lambda c: c.execute(sa.text(probe)).scalar())
            assert first is True if postgres else first == 1  # before HB2: False (a BEGIN)
            connection = held.connection()
            assert not connection.in_transaction()
            connection.execute(sa.text("CREATE TEMPORARY TABLE IF NOT EXISTS hb2 (n integer)"))
            connection.commit()
            # The route's statements then run in a transaction that can be rolled back.
            connection.execute(sa.text("INSERT INTO hb2 VALUES (1)"))
            assert connection.in_transaction()
            if postgres:
                assert connection.execute(sa.text(probe)).scalar() is False
                raw = connection.connection.driver_connection
                assert getattr(raw, "autocommit", None) is False
            connection.rollback()
            assert connection.execute(sa.text("SELECT count(*) FROM hb2")).scalar() == 0
            held.close()
    finally:
        engine.dispose()
