"""A read-model page's rows in PostgreSQL's binary format (decision II1).

The page statement (`calsync.store.instance_pages`) is marked `BINARY_ROWS`: on
PostgreSQL its rows arrive in binary (``bytea`` as its bytes, instants and ids
unprinted), every other statement as text. Both databases, three users, through the
HTTP API: every page (first and after the cursor) is the same bytes as today's
expansion lists, with series in zones, all-day and moved instances, and documents
with text outside ASCII and escaped characters.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
                    "title": f"weekly {n} - Grüße, 日本 \"quoted\" \\ end",
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


@contextmanager
def result_formats(engine: sa.Engine) -> Iterator[list[tuple[str, set[int]]]]:
    """(statement's start, its result columns' formats: 0 text, 1 binary) of each
    statement with rows that `engine` ran on PostgreSQL while the block ran."""
    seen: list[tuple[str, set[int]]] = []

    def record(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        result = getattr(cursor, "pgresult", None)
        if result is not None and result.nfields:
            formats = {result.fformat(n) for n in range(result.nfields)}
            seen.append((statement, formats))

    sa.event.listen(engine, "after_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "after_cursor_execute", record)


def test_model_pages_are_the_expansions_bytes_with_binary_rows_on_postgresql(
    filled: tuple[EventsApp, list[User]],
) -> None:
    app, people = filled
    engine = app.services.engine
    with result_formats(engine) as seen:
        listed = {user.id: pages(app, user) for user in people}
    for user in people:
        assert len(listed[user.id]) >= 3  # a first page and some after a cursor
    with app.model_off():  # what today's expansion lists, byte for byte
        assert {user.id: pages(app, user) for user in people} == listed
    if engine.dialect.name != "postgresql":
        return
    page_statements = [f for s, f in seen if "event_instances" in s and "UNION ALL" in s]
    assert len(page_statements) == sum(len(found) for found in listed.values())
    assert all(formats == {1} for formats in page_statements)  # binary rows
    others = [f for s, f in seen if "event_instances" not in s]
    assert others and all(formats == {0} for formats in others)  # the rest as text
