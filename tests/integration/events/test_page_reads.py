"""How a page of the read model reads the database (decision HN1): one statement outside
any transaction, and the request's connection as it was after it.

A page made of stored documents is its one statement, which is a snapshot by itself: on
PostgreSQL it runs in autocommit (no ``BEGIN`` and ``ROLLBACK`` round trips), on SQLite
outside the explicit ``BEGIN`` a snapshot needs. What the server says after the
statement (libpq's transaction status; sqlite3's ``in_transaction``) shows which it was.
A page with an item to render from rows is read again in one snapshot with them (the
race tests, ``test_read_model_races.py``, "rendered"). Both databases, two users, each
page compared with today's expansion.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.domain.windows import DayRange
from calsync.events import read_model
from calsync.events.listing import ListQuery, list_bodies
from calsync.store import instances
from calsync.store.db import api_pool
from calsync.store.tables import instance_horizon
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, User, filled_month, running

pytestmark = pytest.mark.integration

WINDOW = {"start_date": "2031-03-01", "end_date": "2031-03-31", "expand": "true", "limit": "3"}


@pytest.fixture(params=["embedded", "production"])
def filled(
    request: pytest.FixtureRequest, fake_google: FakeGoogle
) -> Iterator[tuple[EventsApp, list[User]]]:
    """The API's pool, the model filled, two users with a series (one instance moved)
    and a single each."""
    yield from filled_month(request, fake_google, users=2, count=6, tag="pages")


def listed(app: EventsApp, user: User) -> list[dict[str, Any]]:
    """Every page of `WINDOW`, as the API answers them (cursors included)."""
    pages, params = [], dict(WINDOW)
    while True:
        answer = app.client.get("/events", params=params, headers=user.headers)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        pages.append(page)
        if not page["next_cursor"]:
            return pages
        params["cursor"] = page["next_cursor"]


def expanded(app: EventsApp, user: User) -> list[dict[str, Any]]:
    """`listed` by today's expansion (the model switched off for the one listing)."""
    with app.model_off():
        return listed(app, user)


def in_transaction_after(engine: sa.Engine, statements: list[bool]) -> Any:
    """A listener recording, after each statement of the page (it reads
    ``event_instances``), whether the server holds a transaction open."""

    def after(conn: sa.Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if "event_instances" not in statement:
            return
        raw = conn.connection.driver_connection
        if engine.dialect.name == "postgresql":
            statements.append(raw.info.transaction_status.name != "IDLE")  # type: ignore[union-attr]
        else:
            statements.append(bool(raw.in_transaction))  # type: ignore[union-attr]

    return after


def test_a_model_page_is_one_statement_outside_any_transaction(
    filled: tuple[EventsApp, list[User]],
) -> None:
    app, people = filled
    engine = app.services.engine
    statements: list[bool] = []
    listener = in_transaction_after(engine, statements)
    sa.event.listen(engine, "after_cursor_execute", listener)
    try:
        pages = [listed(app, user) for user in people]
    finally:
        sa.event.remove(engine, "after_cursor_execute", listener)
    # 4 instances in March and a single each (two pages of 3): one statement a page,
    # none in a transaction (before HN1: each in the REPEATABLE READ one its page began)
    assert statements == [False] * 4
    for user, found in zip(people, pages, strict=True):
        assert [len(page["events"]) for page in found] == [3, 2]
        assert found == expanded(app, user)
    assert pages[0] != pages[1]


def test_the_connection_is_as_it_was_after_a_model_page(
    filled: tuple[EventsApp, list[User]],
) -> None:
    """On a connection the caller holds (as a request holds one): after the page, a
    write in a new session on it is a transaction again, which a rollback undoes."""
    app, people = filled
    engine = app.services.engine
    query = _march(people[0])
    with engine.connect() as connection:
        for user in people:
            with Session(bind=connection) as session:
                bodies, _ = list_bodies(session, user.id, query)
            assert len(bodies) == 5
            assert not connection.in_transaction()
            with Session(bind=connection) as session:
                session.execute(sa.delete(instance_horizon))
                session.rollback()
            with Session(bind=connection) as session:
                assert instances.horizon(session) is not None


def _march(user: User, *, limit: int = 200, after: tuple[datetime, str] | None = None) -> ListQuery:
    first, end = date(2031, 3, 1), date(2031, 4, 1)
    return ListQuery(
        start=datetime(2031, 3, 1, tzinfo=UTC),
        end=datetime(2031, 4, 1, tzinfo=UTC),
        days=DayRange(first, end),
        category=None,
        calendar_id=None,
        recurring=None,
        expand=True,
        limit=limit,
        after=after,
        scope=str(user.id),
    )


@pytest.mark.parametrize("mode", ["production"])  # SQLite has no session zone
def test_pages_are_the_same_whatever_zone_the_database_session_is_in(
    mode: str, request: pytest.FixtureRequest, fake_google: FakeGoogle
) -> None:
    """PostgreSQL gives instants in the session's zone, which a page reads as they come
    (decision HN2): all-day dates and local times must not move with it. Two users, each
    with an all-day and a timed series, listed by a process whose sessions are at -11
    hours and by one at UTC."""
    settings: Settings = request.getfixturevalue(f"{mode}_settings")
    for app in running(settings, fake_google, pool=api_pool(2)):
        people = [app.connect(f"zones{n}-{uuid.uuid4().hex[:6]}@example.com") for n in range(2)]
        read_model.fill(app.services.sessions, app.clock())
        for n, user in enumerate(people):
            app.create(
                user,
                {
                    "title": f"all day {n}",
                    "start_time": "2031-03-02",
                    "end_time": "2031-03-03",
                    "all_day": True,
                    "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=5"],
                },
            )
            app.create(
                user,
                {
                    "title": f"timed {n}",
                    "start_time": "2031-03-04T23:30:00",
                    "end_time": "2031-03-05T00:30:00",
                    "timezone": "America/New_York",
                    "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=5"],
                },
            )
        url = sa.make_url(settings.database_url)
        shifted = url.update_query_dict({"options": "-c timezone=Pacific/Pago_Pago"})
        far = bootstrap(replace(settings, database_url=shifted.render_as_string(False)))
        try:
            for user in people:
                query = _march(user)
                with far.sessions() as session:
                    zone = session.connection().exec_driver_sql("SHOW timezone").scalar()
                    assert zone == "Pacific/Pago_Pago"
                with far.sessions() as session:
                    there, _ = list_bodies(session, user.id, query)
                with app.services.sessions() as session:
                    here, _ = list_bodies(session, user.id, query)
                assert len(here) == 9  # 5 all-day Sundays of March, 4 timed Wednesdays
                assert there == here
                assert b'"start_time":"2031-03-02"' in here[0]
        finally:
            far.close()
