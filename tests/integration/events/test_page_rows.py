"""A page's rows made from the driver's tuples (decision IV2), and its body joined with
one copy (IV3).

On PostgreSQL `instance_pages.listed_rows` makes its `ListedRow`s from the tuples
psycopg fetched, without SQLAlchemy's `Row`; that is only right while no column of the
page's statement has result processing. Checked here: every shape of the statement has
none on PostgreSQL; the rows, field by field and type by type, are those SQLAlchemy's
rows give, in and outside a transaction, on both databases, for two users who each see
only their own; the API's pages are byte for byte today's expansion; another user's
event is still 404 and another user's calendar lists nothing.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from calsync.store import instance_pages
from calsync.store.instance_pages import ListedRow, Window, listed_rows, read_snapshot
from calsync.store.tables import Event
from calsync.web.json_body import list_body
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, User, filled_month
from tests.integration.events.test_page_reads import expanded, listed

pytestmark = pytest.mark.integration

MARCH = Window(
    start=datetime(2031, 3, 1, tzinfo=UTC),
    end=datetime(2031, 4, 1, tzinfo=UTC),
    first_day=date(2031, 3, 1),
    end_day=date(2031, 4, 1),
)


@pytest.fixture(params=["embedded", "production"])
def filled(
    request: pytest.FixtureRequest, fake_google: FakeGoogle
) -> Iterator[tuple[EventsApp, list[User]]]:
    """Two users with a series (one instance moved) and a single each, the model filled."""
    yield from filled_month(request, fake_google, users=2, count=6, tag="rows")


def _through_sqlalchemy(result: sa.CursorResult[Any]) -> list[ListedRow]:
    """The rows as the page made them before IV2: through SQLAlchemy's `Row`."""
    return list(map(ListedRow._make, result.all()))


def _rows(app: EventsApp, user: User, *, alone: bool, limit: int = 200) -> list[ListedRow]:
    with app.services.sessions() as session:
        if not alone:
            read_snapshot(session)
        found = listed_rows(
            session,
            user.id,
            MARCH,
            limit=limit,
            after=None,
            category=None,
            calendar_id=None,
            in_series=None,
            alone=alone,
        )
    assert found is not None
    return found


def test_the_page_statement_has_no_result_processing_on_postgresql() -> None:
    """What lets psycopg's tuples stand for SQLAlchemy's rows: no column of any shape
    of the statement converts what the driver gives (a `TypeDecorator` added to one
    would be skipped on PostgreSQL)."""
    from sqlalchemy.dialects.postgresql import psycopg

    dialect = psycopg.dialect()
    shapes = itertools.product([False, True], [False, True], [False, True], [None, False, True])
    for after, category, calendar, in_series in shapes:
        statement = instance_pages._listing(
            after=after, category=category, calendar=calendar, in_series=in_series, plain_times=True
        )
        compiled = statement.compile(dialect=dialect)
        for column in compiled._result_columns:
            kind = column[3].dialect_impl(dialect)
            assert kind.result_processor(dialect, None) is None, (column[0], kind)


def test_rows_are_those_sqlalchemy_gives(
    filled: tuple[EventsApp, list[User]], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, people = filled
    seen: list[list[ListedRow]] = []
    for user in people:
        for alone, limit in ((True, 200), (False, 200), (True, 3), (False, 3)):
            rows = _rows(app, user, alone=alone, limit=limit)
            with monkeypatch.context() as patched:
                patched.setattr(instance_pages, "_listed_rows", _through_sqlalchemy)
                before = _rows(app, user, alone=alone, limit=limit)
            assert rows == before
            for row, old in zip(rows, before, strict=True):
                assert type(row) is ListedRow
                assert [type(v) for v in row] == [type(v) for v in old]
                assert all(
                    a.utcoffset() == b.utcoffset()
                    for a, b in zip(row, old, strict=True)
                    if isinstance(a, datetime)
                )
            assert len(rows) == min(limit, 5)  # 4 instances in March and the single
        seen.append(rows)
        assert {row.owner_id for row in rows} <= _owned(app, user)
    assert not {row.api_id for row in seen[0]} & {row.api_id for row in seen[1]}


def _owned(app: EventsApp, user: User) -> set[uuid.UUID]:
    with app.services.sessions() as session:
        return set(session.scalars(sa.select(Event.id).where(Event.user_id == user.id)))


def test_pages_are_todays_expansion_and_nobody_elses(filled: tuple[EventsApp, list[User]]) -> None:
    app, people = filled
    pages = [listed(app, user) for user in people]
    for user, found in zip(people, pages, strict=True):
        assert [len(page["events"]) for page in found] == [3, 2]
        assert found == expanded(app, user)
    mine, theirs = people
    other_event = pages[1][0]["events"][0]["id"]
    assert app.client.get(f"/events/{other_event}", headers=mine.headers).status_code == 404
    if theirs.calendar_id is not None:
        answer = app.client.get(
            "/events",
            params={
                "start_date": "2031-03-01",
                "end_date": "2031-03-31",
                "expand": "true",
                "calendar_id": str(theirs.calendar_id),
            },
            headers=mine.headers,
        )
        assert answer.status_code in (200, 404), answer.text
        if answer.status_code == 200:
            assert answer.json()["events"] == []


@pytest.mark.parametrize("count", [0, 1, 2, 3, 200])
@pytest.mark.parametrize("cursor", [None, "c2NvcGU"])
def test_a_list_body_is_the_items_joined(count: int, cursor: str | None) -> None:
    items = [orjson.dumps({"id": f"e{n}", "summary": "x" * n}) for n in range(count)]
    body = list_body(items, cursor)
    assert body == orjson.dumps({"events": [orjson.loads(i) for i in items], "next_cursor": cursor})
    assert (
        body
        == b'{"events":[' + b",".join(items) + b'],"next_cursor":' + orjson.dumps(cursor) + b"}"
    )
