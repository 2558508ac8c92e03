"""A read-model page's statement, run as `calsync.store.db.PAGE_STATEMENT` says
(decisions II1, II2).

On PostgreSQL its rows arrive in binary (``bytea`` as its bytes, instants and ids
unprinted), every other statement's as text; and it is prepared on its connection at
its first execution (psycopg prepares others at their fifth). Both databases, three
users, through the HTTP API: every page (first and after the cursor) is the same bytes
as today's expansion lists, with series in zones, all-day and moved instances, and
documents with text outside ASCII and escaped characters.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.events import read_model
from calsync.store.db import api_pool
from tests.integration.events.conftest import EventsApp, User, running

pytestmark = pytest.mark.integration

WINDOW = {"start_date": "2031-03-01", "end_date": "2031-03-31", "expand": "true", "limit": "3"}


@pytest.fixture(params=["embedded", "production"])
def filled(
    request: pytest.FixtureRequest, fake_google: Any
) -> Iterator[tuple[EventsApp, list[User]]]:
    """The model filled; three users, each with a timed series in a zone (one instance
    moved), an all-day series and a single."""
    settings = request.getfixturevalue(f"{request.param}_settings")
    for app in running(settings, fake_google, pool=api_pool(2)):
        people = [app.connect(f"bin{n}-{uuid.uuid4().hex[:6]}@example.com") for n in range(3)]
        read_model.fill(app.services.sessions, app.clock())
        for n, user in enumerate(people):
            made = app.create(
                user,
                {
                    "title": f'weekly {n} - Grüße, 日本 "quoted" \\ end',
                    "start_time": "2031-03-04T09:00:00",
                    "end_time": "2031-03-04T09:45:00",
                    "timezone": ["Europe/Berlin", "Asia/Tokyo", "America/New_York"][n],
                    "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
                },
            )
            original = ["080000", "000000", "130000"][n]  # 09:00 in each zone, in UTC
            moved = app.put(
                user,
                f"{made['id']}_20310311T{original}Z",
                {"start_time": "2031-03-12T15:00:00Z", "end_time": "2031-03-12T15:45:00Z"},
            )
            assert moved.status_code == 200, moved.text
            app.create(
                user,
                {
                    "title": f"days {n}",
                    "all_day": True,
                    "start_time": "2031-03-02",
                    "end_time": "2031-03-03",
                    "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
                },
            )
            app.create(
                user,
                {
                    "title": f"single {n}",
                    "start_time": "2031-03-05T10:00:00Z",
                    "end_time": "2031-03-05T11:00:00Z",
                },
            )
        app.upkeep()
        yield app, people


def pages(app: EventsApp, user: User) -> list[bytes]:
    """Every page of `WINDOW` as the API answers it."""
    found, params = [], dict(WINDOW)
    while True:
        answer = app.client.get("/events", params=params, headers=user.headers)
        assert answer.status_code == 200, answer.text
        found.append(answer.content)
        cursor = answer.json()["next_cursor"]
        if not cursor:
            return found
        params["cursor"] = cursor


@dataclass
class Ran:
    """A statement with rows that an engine ran on PostgreSQL: its text, its result
    columns' formats (0 text, 1 binary) and, for a page statement, how many of the page
    statement's shapes its connection had prepared right after it ran."""

    statement: str
    formats: set[int]
    prepared_pages: int = 0


@contextmanager
def result_formats(engine: sa.Engine) -> Iterator[list[Ran]]:
    """The statements with rows that `engine` ran on PostgreSQL while the block ran."""
    seen: list[Ran] = []

    def record(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        result = getattr(cursor, "pgresult", None)
        if result is None or not result.nfields:
            return
        ran = Ran(statement, {result.fformat(n) for n in range(result.nfields)})
        if "UNION ALL" in statement:
            found = cursor.connection.execute(
                "SELECT count(*) FROM pg_prepared_statements"
                " WHERE statement LIKE '%UNION ALL%' AND statement LIKE '%event_instances%'"
            )
            ran.prepared_pages = found.fetchone()[0]
        seen.append(ran)

    sa.event.listen(engine, "after_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "after_cursor_execute", record)


def test_model_pages_are_the_expansions_bytes_binary_and_prepared_on_postgresql(
    filled: tuple[EventsApp, list[User]],
) -> None:
    app, people = filled
    engine = app.services.engine
    with result_formats(engine) as seen:
        listed = {user.id: pages(app, user) for user in people}
    for user in people:
        assert len(listed[user.id]) >= 3  # a first page and some after a cursor
    if engine.dialect.name == "postgresql":
        page_statements = [r for r in seen if "UNION ALL" in r.statement]
        assert len(page_statements) == sum(len(found) for found in listed.values())
        assert all(r.formats == {1} for r in page_statements)  # binary rows
        others = [r for r in seen if "event_instances" not in r.statement]
        assert others
        assert all(r.formats == {0} for r in others)  # the rest as text
        # the page statement is prepared at its first execution on a connection: the
        # first page's shape (three executions in all, one per user) too
        assert page_statements[0].prepared_pages >= 1
        assert len({r.statement for r in page_statements}) == 2  # first, after a cursor
        assert all(r.prepared_pages >= 1 for r in page_statements)
    with app.model_off():  # what today's expansion lists, byte for byte
        assert {user.id: pages(app, user) for user in people} == listed
