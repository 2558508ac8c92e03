"""Series outlines (what expanded lists read instead of whole rows) equal the rows'
events, and their exceptions are those `exceptions_of` finds."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from calsync.config import Settings
from calsync.domain.models import Event, EventStatus, EventTime
from calsync.domain.windows import DayRange
from calsync.store.event_filters import (
    EventFilter,
    Kind,
    filter_conditions,
    filter_shape,
    filter_values,
)
from calsync.store.event_queries import (
    _outline_columns,
    exceptions_of,
    exceptions_of_outlines,
    list_keys,
    list_stored,
    series_outlines,
)
from calsync.store.events import event_columns, load_stored
from calsync.store.tables import Event as EventRow
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, running

pytestmark = pytest.mark.integration

WINDOW = (datetime(2031, 3, 1, tzinfo=UTC), datetime(2031, 4, 1, tzinfo=UTC))


def march(user_id: uuid.UUID, kind: Kind) -> EventFilter:
    """The user's `kind` rows in `WINDOW`, March 2031 as a user in UTC sees it."""
    days = DayRange(date(2031, 3, 1), date(2031, 4, 1))
    return EventFilter(user_id=user_id, start=WINDOW[0], end=WINDOW[1], days=days, kind=kind)


def masters() -> list[Event]:
    berlin = datetime(2031, 2, 3, 9, tzinfo=UTC)
    return [
        Event(
            title="timed",
            start=EventTime(instant=berlin, timezone="Europe/Berlin"),
            end=EventTime(instant=berlin + timedelta(hours=2), timezone="America/New_York"),
            recurrence=("RRULE:FREQ=WEEKLY ", "EXDATE:20310310T090000Z"),
            category="work",
        ),
        Event(
            title="all-day in a zone",
            start=EventTime.on(date(2031, 2, 1)),
            end=EventTime.on(date(2031, 2, 3)),
            timezone="Pacific/Auckland",
            recurrence=("RRULE:FREQ=MONTHLY;COUNT=5",),
        ),
        Event(
            title="all-day without zone",
            start=EventTime.on(date(2031, 3, 4)),
            end=EventTime.on(date(2031, 3, 5)),
            recurrence=("RRULE:FREQ=DAILY;INTERVAL=4",),
        ),
    ]


def test_outlines_equal_the_stored_events(any_app: EventsApp) -> None:
    # Given series masters of each kind, one without a Google id, and exceptions
    app = any_app
    alice = app.connect("alice@example.com")
    assert alice.calendar_id is not None
    ids = [uuid.uuid4() for _ in range(3)]
    google_ids = ["series0", "series1", None]
    events = [
        dataclasses.replace(master, provider_event_id=google_id)
        for master, google_id in zip(masters(), google_ids, strict=True)
    ]
    exception = Event(
        title="moved",
        start=EventTime(instant=datetime(2031, 3, 17, 12, tzinfo=UTC), timezone="Europe/Berlin"),
        end=EventTime(instant=datetime(2031, 3, 17, 13, tzinfo=UTC), timezone="Europe/Berlin"),
        recurring_event_id="series0",
        original_start=EventTime(
            instant=datetime(2031, 3, 17, 8, tzinfo=UTC), timezone="Europe/Berlin"
        ),
        provider_event_id="series0_20310317T080000Z",
    )
    cancelled = dataclasses.replace(
        exception,
        status=EventStatus.CANCELLED,
        start=EventTime.on(date(2031, 3, 8)),
        end=EventTime.on(date(2031, 3, 9)),
        timezone=None,
        recurring_event_id=str(ids[2]),
        original_start=EventTime.on(date(2031, 3, 8)),
        provider_event_id="x_20310308",
    )
    rows = [
        {
            "id": event_id,
            "user_id": alice.id,
            "calendar_id": alice.calendar_id,
            "sync_state": "synced",
            **event_columns(event),
        }
        for event_id, event in [
            *zip(ids, events, strict=True),
            (uuid.uuid4(), exception),
            (uuid.uuid4(), cancelled),
        ]
    ]
    with app.services.sessions.begin() as session:
        session.execute(sa.insert(EventRow), rows)
    spec = march(alice.id, Kind.MASTER)
    # When the outlines and their exceptions are read
    with app.services.sessions() as session:
        outlines = series_outlines(session, spec, limit=100)
        stored = list_stored(session, spec, limit=100)
        listed = exceptions_of_outlines(session, outlines)
        expected = exceptions_of(session, [(o.calendar_id, o.series_id) for o in outlines])
        full = {o.id: load_stored(session, o.id) for o in outlines}
    # Then each outline holds the stored event's values, in the same order
    assert [o.id for o in outlines] == [s.id for s in stored]
    assert len(outlines) == 3
    for outline in outlines:
        loaded = full[outline.id]
        assert loaded is not None
        event = loaded.event
        assert outline.start == event.start
        assert outline.end == event.end
        assert outline.timezone == event.timezone
        assert outline.recurrence == event.recurrence
        assert outline.category == event.category
        assert outline.series_id == (event.provider_event_id or str(loaded.id))
    # And only the series that has an exception by its Google id may be skipped
    by_id = {o.id: o for o in outlines}
    assert [by_id[i].has_exceptions for i in ids] == [True, False, True]
    # And the exceptions read are the same rows exceptions_of finds for every outline
    assert {k: [e.id for e in v] for k, v in listed.items()} == {
        k: [e.id for e in v] for k, v in expected.items()
    }
    assert sorted(e.event.status for v in listed.values() for e in v) == [
        EventStatus.CANCELLED,
        EventStatus.CONFIRMED,
    ]


def test_keys_are_the_keys_of_the_listed_singles(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    for day in (2, 9, 9, 30):
        app.create(
            alice,
            {
                "title": f"on {day}",
                "start_time": f"2031-03-{day:02d}T10:00:00Z",
                "end_time": f"2031-03-{day:02d}T11:00:00Z",
                "attendees": ["bob@example.com", "carol@example.com"] if day == 2 else [],
            },
        )
    spec = march(alice.id, Kind.SINGLE)
    with app.services.sessions() as session:
        keys = list_keys(session, spec, limit=3)
        rows = list_stored(session, spec, limit=3)
        after = list_keys(session, spec, limit=10, after=keys[1])
        rows_after = list_stored(session, spec, limit=10, after=keys[1])
    assert keys == [(s.event.start.instant, s.id) for s in rows]
    assert after == [(s.event.start.instant, s.id) for s in rows_after]
    assert len(keys) == 3
    assert len(after) == 2


@pytest.fixture
def sqlite_app(embedded_settings: Settings, fake_google: FakeGoogle) -> Iterator[EventsApp]:
    """Embedded mode: SQLite."""
    yield from running(embedded_settings, fake_google)


def test_sqlite_probes_exceptions_by_index_whatever_its_statistics(sqlite_app: EventsApp) -> None:
    # Given an SQLite calendar of 2,000 singles and a series, analysed: nearly no row has
    # a recurring_event_id, which makes SQLite judge the index of it useless
    app = sqlite_app
    alice = app.connect("alice@example.com")
    start = datetime(2031, 3, 2, 9, tzinfo=UTC)
    events = [
        Event(
            title=f"single {i}",
            start=EventTime(instant=start + timedelta(hours=i), timezone="UTC"),
            end=EventTime(instant=start + timedelta(hours=i, minutes=30), timezone="UTC"),
        )
        for i in range(2000)
    ]
    events.append(dataclasses.replace(masters()[0], provider_event_id="series0"))
    rows = [
        {
            "id": uuid.uuid4(),
            "user_id": alice.id,
            "calendar_id": alice.calendar_id,
            "sync_state": "synced",
            **event_columns(event),
        }
        for event in events
    ]
    with app.services.sessions.begin() as session:
        session.execute(sa.insert(EventRow), rows)
    with app.services.engine.connect().execution_options(
        isolation_level="AUTOCOMMIT"
    ) as connection:
        connection.execute(sa.text("ANALYZE"))
    spec = march(alice.id, Kind.MASTER)
    query = sa.select(*_outline_columns("sqlite")).where(*filter_conditions(filter_shape(spec)))
    # When the outlines' statement is planned
    with app.services.engine.connect() as connection:
        compiled = query.compile(connection)
        values = filter_values(spec)
        parameters = tuple(  # the plan does not depend on the values, only their kinds
            str(values.get(name, compiled.params[name])) for name in compiled.positiontup or ()
        )
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", parameters).all()
        with app.services.sessions() as session:
            outlines = series_outlines(session, spec, limit=10)
    # Then each master's exceptions are probed through the index, not by a scan
    details = [row[3] for row in plan]
    assert any(
        "exception USING INDEX ix_events_calendar_id_recurring_event_id" in d for d in details
    )
    assert not any(d.startswith("SCAN exception") for d in details)
    assert [o.has_exceptions for o in outlines] == [False]
