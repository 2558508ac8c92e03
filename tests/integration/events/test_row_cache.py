"""The expanded list's row cache (`calsync.store.row_cache`): entries are reused while the
rows are unchanged and never outlive a change, whoever makes it (the API, a pull, or SQL
run outside calsync)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.domain.models import Event, EventTime
from calsync.store.event_queries import load_many
from calsync.store.events import StoredEvent
from calsync.store.row_cache import EventCache, cache_of, version_column
from calsync.store.tables import Event as EventRow
from calsync.store.tables import EventAttendee
from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

MARCH = {"start_date": "2031-03-01", "end_date": "2031-03-31", "expand": "true"}


def listed(app: EventsApp, user: User) -> list[dict[str, Any]]:
    response = app.client.get("/events", params=MARCH, headers=user.headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def seed(app: EventsApp, user: User) -> tuple[str, str]:
    """A single event and a weekly series in March 2031: (single id, series id)."""
    single = app.create(
        user,
        {
            "title": "single",
            "start_time": "2031-03-03T10:00:00Z",
            "end_time": "2031-03-03T11:00:00Z",
        },
    )
    series = app.create(
        user,
        {
            "title": "weekly",
            "start_time": "2031-03-02T09:00:00Z",
            "end_time": "2031-03-02T10:00:00Z",
            "timezone": "Europe/Berlin",
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
        },
    )
    return single["id"], series["id"]


def run_sql(app: EventsApp, statement: Any) -> None:
    with app.services.sessions.begin() as session:
        session.execute(statement)


def test_an_unchanged_event_is_served_from_the_cache(app: EventsApp) -> None:
    # Given a listed month
    alice = app.connect("alice@example.com")
    single, series = seed(app, alice)
    first = listed(app, alice)
    # When both rows are loaded again with the versions the list reads
    with app.services.sessions() as session:
        cache = cache_of(session)
        assert cache is not None
        versions = dict(
            session.execute(
                sa.select(EventRow.id, version_column(session)).where(EventRow.user_id == alice.id)
            ).all()
        )
        ids = [uuid.UUID(single), uuid.UUID(series)]
        before = {i: cache.get(i, versions[i]) for i in ids}
        loaded = load_many(session, ids, versions=versions)
    # Then the list filled the cache, and the load returned its very entries
    assert all(before[i] is not None and loaded[i] is before[i] for i in ids)
    assert listed(app, alice) == first
    assert [e["title"] for e in first] == ["weekly", "single", "weekly", "weekly", "weekly"]


def test_a_row_changed_outside_calsync_is_read_again(app: EventsApp) -> None:
    # Given a listed month
    alice = app.connect("alice@example.com")
    seed(app, alice)
    listed(app, alice)
    # When SQL outside calsync renames both events (no version column, no updated_at)
    run_sql(
        app,
        sa.update(EventRow)
        .where(EventRow.user_id == alice.id)
        .values(title=sa.func.upper(EventRow.title)),
    )
    # Then the list shows the new titles, instances included
    assert [e["title"] for e in listed(app, alice)] == [
        "WEEKLY",
        "SINGLE",
        "WEEKLY",
        "WEEKLY",
        "WEEKLY",
    ]


def test_an_attendee_change_alone_is_read_again(app: EventsApp) -> None:
    # Given a listed month with an event that has no attendees
    alice = app.connect("alice@example.com")
    single, series = seed(app, alice)
    assert all(e["attendees"] == [] for e in listed(app, alice))
    # When an attendee row is added, and later its answer changes, without touching events
    row = {
        "id": uuid.uuid4(),
        "event_id": uuid.UUID(series),
        "email": "bob@example.com",
        "response_status": "needsAction",
        "optional": False,
        "is_organizer": False,
    }
    run_sql(app, sa.insert(EventAttendee).values(**row))
    invited = listed(app, alice)
    run_sql(
        app,
        sa.update(EventAttendee)
        .where(EventAttendee.id == row["id"])
        .values(response_status="accepted"),
    )
    answered = listed(app, alice)
    # Then every instance of the series shows the attendee, then the answer
    weekly = [e for e in invited if e["series_id"] == series]
    assert len(weekly) == 4
    assert all([a["email"] for a in e["attendees"]] == ["bob@example.com"] for e in weekly)
    assert {
        a["response_status"] for e in answered if e["series_id"] == series for a in e["attendees"]
    } == {"accepted"}
    assert next(e for e in answered if e["id"] == single)["attendees"] == []


def test_an_api_edit_and_delete_are_seen_at_once(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    single, _series = seed(app, alice)
    listed(app, alice)
    assert app.put(alice, single, {"title": "renamed"}).status_code == 200
    assert "renamed" in [e["title"] for e in listed(app, alice)]
    assert app.client.delete(f"/events/{single}", headers=alice.headers).status_code == 204
    assert single not in [e["id"] for e in listed(app, alice)]


def stored() -> StoredEvent:
    now = datetime(2031, 3, 1, tzinfo=UTC)
    return StoredEvent(
        id=uuid.uuid4(),
        calendar_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        event=Event(start=EventTime.on(now.date()), end=EventTime.on(now.date())),
        sync_state="synced",
        sync_error=None,
        conflict=None,
        version=1,
        base=None,
        created_at=now,
        updated_at=now,
        deleted_at=None,
    )


def test_the_cache_keeps_the_most_recently_used_entries() -> None:
    cache = EventCache(max_entries=2)
    a, b, c = stored(), stored(), stored()
    cache.put("1:", a)
    cache.put("1:", b)
    assert cache.get(a.id, "1:") is a  # a is now the most recent
    cache.put("1:", c)  # evicts b
    assert cache.get(b.id, "1:") is None
    assert cache.get(a.id, "1:") is a
    assert cache.get(c.id, "1:") is c
    assert cache.get(a.id, "2:") is None  # another version of a is not a
    assert len(cache) == 2
