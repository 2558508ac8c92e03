"""Writes while Google fails: nothing lost, nothing written twice, the final state wins."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from calsync.store.tables import Event as EventRow
from calsync.store.tables import OutboxEntry, SyncLog
from tests.integration.events.conftest import EventsApp

pytestmark = pytest.mark.integration

EVENTS = r"/calendar/v3/calendars/[^/]+/events"


def test_an_insert_whose_answer_is_lost_is_not_duplicated(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    # Given Google stores the insert but the connection resets before the answer
    app.control.add_fault(kind="reset", method="POST", path=EVENTS + "$", after_write=True)
    created = app.create(
        alice,
        {"title": "Once", "start_time": "2031-03-04T10:00:00Z", "end_time": "2031-03-04T11:00:00Z"},
    )
    app.control.clear_requests()

    # When the push runs (the client retries, gets 409, reads the event back)
    app.push_all()

    # Then Google holds exactly one copy and the event is synced with its etag
    inserts = app.google_requests("POST")
    assert len([r for r in inserts if r["status"] == 409]) >= 1
    listed = app.remote(alice).list(calendarId=alice.primary).execute()["items"]
    assert [e["summary"] for e in listed] == ["Once"]
    shown = app.get(alice, created["id"])
    assert shown["sync_state"] == "synced"
    with app.services.sessions() as session:
        row = session.get(EventRow, uuid.UUID(created["id"]))
        assert row is not None
        assert row.etag == listed[0]["etag"]


def test_a_hundred_edits_while_google_is_down_arrive_as_their_final_state(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    # Given Google fails every request
    app.control.add_fault(kind="status", status=503, count=None, path=EVENTS)
    created = app.create(
        alice,
        {"title": "v0", "start_time": "2031-03-04T10:00:00Z", "end_time": "2031-03-04T11:00:00Z"},
    )
    others = [
        app.create(
            alice,
            {
                "title": f"other {i}",
                "start_time": f"2031-03-{5 + i:02d}T10:00:00Z",
                "end_time": f"2031-03-{5 + i:02d}T11:00:00Z",
            },
        )
        for i in range(3)
    ]
    # When 100 edits are made, with push attempts failing in between
    for n in range(1, 101):
        answer = app.put(alice, created["id"], {"title": f"v{n}", "description": f"edit {n}"})
        assert answer.status_code == 200
        if n % 25 == 0:
            app.push_all()
            app.clock.advance(hours=2)
    deleted = others[0]["id"]
    assert app.client.delete(f"/events/{deleted}", headers=alice.headers).status_code == 204
    listed = app.client.get("/events", headers=alice.headers).json()["events"]
    assert {e["title"] for e in listed} == {"v100", "other 1", "other 2"}
    assert {e["sync_state"] for e in listed} == {"pending"}

    # And Google recovers
    app.control.clear_faults()
    app.control.clear_requests()
    app.clock.advance(hours=2)
    app.push_all()

    # Then Google holds exactly the final state: one insert per event, no duplicates
    remote = app.remote(alice).list(calendarId=alice.primary).execute()["items"]
    assert sorted(e["summary"] for e in remote) == ["other 1", "other 2", "v100"]
    final = next(e for e in remote if e["summary"] == "v100")
    assert final["description"] == "edit 100"
    inserts = [r for r in app.google_requests("POST") if r["status"] == 200]
    assert len(inserts) == 3  # the deleted one never reached Google: nothing to insert
    patches = app.google_requests("PATCH")
    assert len(patches) <= 1  # the insert already carries v100
    shown = app.client.get("/events", headers=alice.headers).json()["events"]
    assert {e["sync_state"] for e in shown} == {"synced"}
    with app.services.sessions() as session:
        states = set(session.scalars(sa.select(OutboxEntry.status)))
        retries = session.scalar(
            sa.select(sa.func.count()).select_from(SyncLog).where(SyncLog.sync_status == "retry")
        )
    assert states == {"done"}
    assert retries


def test_retries_stop_after_the_attempt_budget_and_the_reason_is_shown(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    app.control.add_fault(kind="status", status=503, count=None, path=EVENTS)
    created = app.create(
        alice,
        {"title": "x", "start_time": "2031-03-04T10:00:00Z", "end_time": "2031-03-04T11:00:00Z"},
    )
    for _ in range(app.services.settings.outbox_max_attempts + 1):
        app.push_all()
        app.clock.advance(hours=2)
    shown = app.get(alice, created["id"])
    assert shown["sync_state"] == "error"
    assert "Transient" in shown["sync_error"]
    assert "attempts" in shown["sync_error"]


def test_a_permanent_refusal_marks_the_event_error_with_the_reason(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    app.control.add_fault(
        kind="status", status=400, reason="invalid", message="bad thing", path=EVENTS
    )
    created = app.create(
        alice,
        {"title": "x", "start_time": "2031-03-04T10:00:00Z", "end_time": "2031-03-04T11:00:00Z"},
    )
    (result,) = app.push_all()
    assert result.status == "error"
    shown = app.get(alice, created["id"])
    assert shown["sync_state"] == "error"
    assert shown["sync_error"]


def test_quota_exceeded_pauses_the_users_writes(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    app.control.add_fault(kind="status", status=403, reason="quotaExceeded", path=EVENTS)
    created = app.create(
        alice,
        {"title": "x", "start_time": "2031-03-04T10:00:00Z", "end_time": "2031-03-04T11:00:00Z"},
    )
    (result,) = app.push_all()
    assert result.status == "paused"
    assert app.push_all() == []  # nothing is due while paused
    app.clock.advance(hours=2)
    app.push_all()
    assert app.get(alice, created["id"])["sync_state"] == "synced"


def test_deleting_an_event_already_gone_on_google_is_success(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    created = app.create(
        alice,
        {"title": "x", "start_time": "2031-03-04T10:00:00Z", "end_time": "2031-03-04T11:00:00Z"},
    )
    app.push_all()
    app.remote(alice).delete(calendarId=alice.primary, eventId=created["google_event_id"]).execute()
    assert app.client.delete(f"/events/{created['id']}", headers=alice.headers).status_code == 204
    (result,) = app.push_all()
    assert result.status == "synced"
