"""Create, read, update and delete through HTTP, and what Google (the emulator) holds."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from calsync.providers.google.ids import google_event_id
from calsync.store.tables import Event as EventRow
from calsync.store.tables import OutboxEntry
from tests.integration.events.conftest import EventsApp

pytestmark = pytest.mark.integration

MEETING = {
    "title": "Planning",
    "description": "Quarterly planning",
    "location": "Room 4",
    "start_time": "2031-03-04T10:00:00",
    "end_time": "2031-03-04T11:30:00",
    "timezone": "Europe/Berlin",
    "category": "work",
    "attendees": ["bob@example.com", {"email": "carol@example.org", "optional": True}],
    "reminders": [10, 30],
    "metadata": {"matter": "M-42"},
}


def test_a_created_event_is_pending_at_once_and_on_google_after_the_push(
    any_app: EventsApp,
) -> None:
    alice = any_app.connect("alice@example.com")

    # When alice creates an event
    created = any_app.create(alice, MEETING)

    # Then it is answered at once, pending, with the fields as given
    assert created["sync_state"] == "pending"
    assert created["start_time"] == "2031-03-04T10:00:00+01:00"
    assert created["end_time"] == "2031-03-04T11:30:00+01:00"
    assert created["timezone"] == "Europe/Berlin"
    assert created["reminders"] == [10, 30]
    assert [a["email"] for a in created["attendees"]] == ["bob@example.com", "carol@example.org"]
    with any_app.services.sessions() as session:
        rows = session.scalars(sa.select(OutboxEntry)).all()
    assert [(str(r.event_id), r.operation, r.status) for r in rows] == [
        (created["id"], "insert", "pending")
    ]

    # And after the push Google holds it under calsync's deterministic id
    (result,) = any_app.push_all()
    assert result.status == "synced"
    gid = google_event_id(__import__("uuid").UUID(created["id"]))
    remote = any_app.google_event(alice, gid)
    assert remote["summary"] == "Planning"
    assert remote["description"] == "Quarterly planning"
    assert remote["location"] == "Room 4"
    assert remote["start"] == {"dateTime": "2031-03-04T10:00:00+01:00", "timeZone": "Europe/Berlin"}
    assert remote["end"]["dateTime"] == "2031-03-04T11:30:00+01:00"
    assert {a["email"] for a in remote["attendees"]} == {"bob@example.com", "carol@example.org"}
    assert remote["reminders"] == {
        "useDefault": False,
        "overrides": [{"method": "popup", "minutes": 10}, {"method": "popup", "minutes": 30}],
    }
    private = remote["extendedProperties"]["private"]
    assert private["calsync_id"] == created["id"]
    assert private["calsync_meta_matter"] == "M-42"
    assert private["calsync_category"] == "work"
    shown = any_app.get(alice, created["id"])
    assert shown["sync_state"] == "synced"
    assert shown["google_event_id"] == gid
    with any_app.services.sessions() as session:
        row = session.get(EventRow, __import__("uuid").UUID(created["id"]))
        assert row is not None
        assert row.etag == remote["etag"]
        assert row.base_version is not None


def test_update_and_delete_reach_google(any_app: EventsApp) -> None:
    alice = any_app.connect("alice@example.com")
    created = any_app.create(alice, MEETING)
    any_app.push_all()

    updated = any_app.put(
        alice,
        created["id"],
        {
            "title": "Planning (moved)",
            "start_time": "2031-03-05T09:00:00+01:00",
            "end_time": "2031-03-05T10:00:00+01:00",
            "metadata": {},
        },
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["sync_state"] == "pending"
    assert updated.headers["etag"] != created["etag"]
    any_app.push_all()
    gid = created["google_event_id"]
    remote = any_app.google_event(alice, gid)
    assert remote["summary"] == "Planning (moved)"
    assert remote["start"]["dateTime"] == "2031-03-05T09:00:00+01:00"
    assert "calsync_meta_matter" not in remote["extendedProperties"]["private"]

    deleted = any_app.client.delete(f"/events/{created['id']}", headers=alice.headers)
    assert deleted.status_code == 204
    assert any_app.client.get(f"/events/{created['id']}", headers=alice.headers).status_code == 404
    any_app.push_all()
    assert any_app.google_event(alice, gid)["status"] == "cancelled"


def test_all_day_event(any_app: EventsApp) -> None:
    alice = any_app.connect("alice@example.com")
    created = any_app.create(
        alice, {"title": "Offsite", "start_time": "2031-03-04", "end_time": "2031-03-06"}
    )
    assert created["all_day"] is True
    assert (created["start_time"], created["end_time"]) == ("2031-03-04", "2031-03-06")
    any_app.push_all()
    remote = any_app.google_event(alice, created["google_event_id"])
    assert remote["start"] == {"date": "2031-03-04"}
    assert remote["end"] == {"date": "2031-03-06"}
