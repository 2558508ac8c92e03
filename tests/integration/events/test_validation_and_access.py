"""Bad input gets a 422 naming the field and changes nothing; RBAC; idempotency; filters."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.domain.accounts import Role
from calsync.store.tables import Event as EventRow
from calsync.store.tables import OutboxEntry
from tests.integration.events.conftest import EventsApp

pytestmark = pytest.mark.integration

GOOD = {"title": "x", "start_time": "2031-03-04T10:00:00Z", "end_time": "2031-03-04T11:00:00Z"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"end_time": "2031-03-04T09:00:00Z"}, "end_time"),
        # a timed event of no length is accepted (as Google does); an all-day one is not
        ({"start_time": "2031-03-04", "end_time": "2031-03-04"}, "end_time"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"start_time": "2031-03-04T10:00:00", "end_time": "2031-03-04T11:00:00"}, "start_time"),
        ({"all_day": True}, "start_time"),
        ({"start_time": "2031-03-04", "end_time": "2031-03-05", "all_day": False}, "start_time"),
        ({"recurrence": ["RRULE:FREQ=DAILY;INTERVAL=0"]}, "recurrence"),
        ({"recurrence": ["RRULE:FREQ=DAILY;COUNT=99999999"]}, "recurrence"),
        ({"recurrence": [""]}, "recurrence"),
        ({"recurrence": ["RRULE:"]}, "recurrence"),
        ({"recurrence": ["RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"]}, "recurrence"),
        ({"attendees": ["not-an-email"]}, "attendees"),
        ({"title": "t" * 1025}, "title"),
        ({"description": "d" * 8193}, "description"),
        ({"title": "nul\x00byte"}, "title"),
        ({"location": 5}, "location"),
        ({"reminders": [-5]}, "reminders"),
        ({"reminders": "ten"}, "reminders"),
        ({"metadata": {"k": {"nested": 1}}}, "metadata"),
        ({"colour": "red"}, "colour"),
        ({"etag": '"x"'}, "etag"),
        ({"sync_state": "synced"}, "sync_state"),
        ({"google_event_id": "abc"}, "google_event_id"),
        ({"organizer": "x@example.com"}, "organizer"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_stores_nothing(
    app: EventsApp, changes: dict[str, Any], field: str
) -> None:
    alice = app.connect("alice@example.com")
    response = app.client.post("/events", json=GOOD | changes, headers=alice.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert field in {d["field"] for d in error["details"]}
    with app.services.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(EventRow)) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(OutboxEntry)) == 0


def test_another_users_ids_are_404_and_a_non_organizer_gets_403(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    mallory = app.connect("mallory@example.com")
    admin = app.connect("admin@example.com", role=Role.ADMIN)
    series = app.create(alice, GOOD | {"recurrence": ["RRULE:FREQ=DAILY;COUNT=3"]})
    instance = f"{series['id']}_20310305T100000Z"
    for event_id in (series["id"], instance, str(uuid.uuid4()), "nope"):
        assert app.client.get(f"/events/{event_id}", headers=mallory.headers).status_code == 404
        assert app.put(mallory, event_id, {"title": "pwned"}).status_code == 404
        deleted = app.client.delete(f"/events/{event_id}", headers=mallory.headers)
        assert deleted.status_code == 404
    listed = app.client.get("/events", headers=mallory.headers).json()["events"]
    assert listed == []
    foreign_calendar = app.client.post(
        "/events", json=GOOD | {"calendar_id": str(alice.calendar_id)}, headers=mallory.headers
    )
    assert foreign_calendar.status_code == 404
    other_calendar = app.client.patch(
        f"/calendars/{alice.calendar_id}", json={"conflict_policy": None}, headers=mallory.headers
    )
    assert other_calendar.status_code == 404

    # An event alice is invited to but does not organise (as pulled from Google)
    with app.services.sessions.begin() as session:
        session.execute(
            sa.update(EventRow)
            .where(EventRow.id == uuid.UUID(series["id"]))
            .values(organizer_email="boss@example.com")
        )
    assert app.put(alice, series["id"], {"title": "mine?"}).status_code == 403
    assert app.client.delete(f"/events/{series['id']}", headers=alice.headers).status_code == 403
    assert app.put(admin, series["id"], {"title": "admin fix"}).status_code == 200


def test_a_read_only_calendar_refuses_writes(app: EventsApp) -> None:
    owner = app.connect("owner@example.com")
    alice = app.connect("alice@example.com")
    shared = app.control.add_calendar(owner.email, "Team", access_role="owner")
    app.control.share(shared["id"], alice.email, "reader")
    from calsync.sync import calendar_list

    calendar_list.sync_calendar_list(app.services, alice.id)
    team = app.calendar_id(alice, shared["id"])
    calendars = app.client.get("/calendars", headers=alice.headers).json()["calendars"]
    assert {c["id"]: c["access_role"] for c in calendars}[str(team)] == "reader"
    refused = app.client.post(
        "/events", json=GOOD | {"calendar_id": str(team)}, headers=alice.headers
    )
    assert refused.status_code == 403


def test_if_match_guards_against_lost_updates(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    created = app.create(alice, GOOD)
    first = app.client.put(
        f"/events/{created['id']}",
        json={"title": "first"},
        headers=alice.headers | {"If-Match": created["etag"]},
    )
    assert first.status_code == 200
    stale = app.client.put(
        f"/events/{created['id']}",
        json={"title": "second"},
        headers=alice.headers | {"If-Match": created["etag"]},
    )
    assert stale.status_code == 412
    assert app.get(alice, created["id"])["title"] == "first"
    assert app.get(alice, created["id"])["etag"] == first.headers["etag"]


def test_an_idempotency_key_replays_the_first_answer(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    key = {"Idempotency-Key": "req-1"}
    first = app.client.post("/events", json=GOOD, headers=alice.headers | key)
    again = app.client.post("/events", json=GOOD, headers=alice.headers | key)
    other = app.client.post("/events", json=GOOD | {"title": "y"}, headers=alice.headers | key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    with app.services.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(EventRow)) == 1


def test_page_sizes_are_checked_and_cursors_walk_every_event(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    for day in range(1, 8):
        app.create(
            alice,
            {
                "title": f"d{day}",
                "start_time": f"2031-03-{day:02d}T10:00:00Z",
                "end_time": f"2031-03-{day:02d}T11:00:00Z",
            },
        )
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = app.client.get("/events", params=params, headers=alice.headers).json()
        seen += [e["title"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"d{day}" for day in range(1, 8)]
    # A limit past the maximum is refused, not silently capped (docs/api.md, "Lists")
    too_many = app.client.get("/events", params={"limit": "100000"}, headers=alice.headers)
    assert too_many.status_code == 422
    assert too_many.json()["error"]["details"][0]["field"] == "limit"
    bad = app.client.get("/events", params={"start_date": "2031-03-01"}, headers=alice.headers)
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "end_date"
