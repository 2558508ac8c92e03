"""Exactly one Google write per local change, counted in the emulator's request log.

Each test makes local changes through the API, clears the emulator's request log, runs
the push (`push_all`, as the outbox sweep would) and counts the writes it sent: inserts,
patches, updates and deletes of events (reads such as a 409 read-back are not writes,
and none are expected either). Queued edits of one event collapse into one write of its
latest state. An event created and deleted before any write of it was sent costs no
write at all; one whose insert may have reached Google costs its delete.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

import pytest
import sqlalchemy as sa

from calsync.store import outbox
from calsync.store.tables import OutboxEntry, SyncLog
from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

MEETING: Final = {
    "title": "Planning",
    "start_time": "2031-03-04T10:00:00+01:00",
    "end_time": "2031-03-04T11:00:00+01:00",
    "timezone": "Europe/Berlin",
}
WEEKLY: Final = {
    "title": "Standup",
    "start_time": "2031-03-03T09:00:00+01:00",
    "end_time": "2031-03-03T09:15:00+01:00",
    "timezone": "Europe/Berlin",
    "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6"],
}
WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EVENTS: Final = r"/calendar/v3/calendars/[^/]+/events"


def google_calls(app: EventsApp) -> list[tuple[str, str]]:
    """(method, path) of every Calendar API call since the log was last cleared."""
    return [
        (r["method"], r["path"])
        for r in app.control.requests()
        if r["path"].startswith("/calendar/v3/") or r["path"].startswith("/batch/")
    ]


def pushed(app: EventsApp) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Run the push; (writes, reads) it sent to Google."""
    app.control.clear_requests()
    app.push_all()
    calls = google_calls(app)
    return [c for c in calls if c[0] in WRITES], [c for c in calls if c[0] not in WRITES]


def instances(app: EventsApp, user: User) -> list[dict[str, Any]]:
    page = app.client.get(
        "/events",
        params={"start_date": "2031-03-01", "end_date": "2031-04-30", "expand": "true"},
        headers=user.headers,
    )
    assert page.status_code == 200, page.text
    events: list[dict[str, Any]] = page.json()["events"]
    return events


def test_create_update_and_delete_of_a_single_event_are_one_write_each(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")

    created = app.create(alice, MEETING)
    writes, reads = pushed(app)
    assert [m for m, _ in writes] == ["POST"]
    assert reads == []

    assert app.put(alice, created["id"], {"title": "Planning (moved)"}).status_code == 200
    writes, reads = pushed(app)
    assert [m for m, _ in writes] == ["PATCH"]
    assert writes[0][1].endswith("/" + created["google_event_id"])
    assert reads == []

    assert app.client.delete(f"/events/{created['id']}", headers=alice.headers).status_code == 204
    writes, reads = pushed(app)
    assert [m for m, _ in writes] == ["DELETE"]
    assert reads == []

    # And nothing is left to push: a second sweep sends nothing
    assert pushed(app) == ([], [])


def test_a_series_and_its_instances_are_one_write_per_change(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    series = app.create(alice, WEEKLY)
    writes, _ = pushed(app)
    assert [m for m, _ in writes] == ["POST"]

    second, third = (i["id"] for i in instances(app, alice)[1:3])
    assert app.put(alice, second, {"title": "Standup (late)"}).status_code == 200
    writes, reads = pushed(app)
    assert [m for m, _ in writes] == ["PATCH"]  # the instance, under its instance id
    assert series["google_event_id"] + "_" in writes[0][1]
    # read once first: another client may have changed the instance since (decision E23)
    assert [m for m, _ in reads] == ["GET"]
    assert reads[0][1] == writes[0][1]

    assert app.client.delete(f"/events/{third}", headers=alice.headers).status_code == 204
    writes, reads = pushed(app)
    assert len(writes) == 1, writes  # the one instance cancelled
    assert series["google_event_id"] + "_" in writes[0][1]
    assert reads == []

    assert app.client.delete(f"/events/{series['id']}", headers=alice.headers).status_code == 204
    writes, reads = pushed(app)
    assert [m for m, _ in writes] == ["DELETE"]
    assert writes[0][1].endswith("/" + series["google_event_id"])


def test_queued_edits_of_one_event_collapse_into_one_write(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")

    # Created and edited three times before any push: one insert of the latest state
    created = app.create(alice, MEETING)
    for n in range(3):
        assert app.put(alice, created["id"], {"title": f"v{n}"}).status_code == 200
    writes, reads = pushed(app)
    assert [m for m, _ in writes] == ["POST"]
    assert reads == []
    assert app.google_event(alice, created["google_event_id"])["summary"] == "v2"

    # Synced, then edited five times: one patch of the latest state
    for n in range(5):
        assert app.put(alice, created["id"], {"location": f"Room {n}"}).status_code == 200
    writes, reads = pushed(app)
    assert [m for m, _ in writes] == ["PATCH"]
    assert reads == []
    assert app.google_event(alice, created["google_event_id"])["location"] == "Room 4"

    # Edited and then deleted before the push: only the delete goes out
    assert app.put(alice, created["id"], {"title": "doomed"}).status_code == 200
    assert app.client.delete(f"/events/{created['id']}", headers=alice.headers).status_code == 204
    writes, _ = pushed(app)
    assert [m for m, _ in writes] == ["DELETE"]


def outbox_rows(app: EventsApp, event_id: str) -> list[tuple[str, str, int]]:
    """(operation, status, attempts) of the event's outbox rows, oldest first."""
    with app.services.sessions() as session:
        rows = session.execute(
            sa.select(OutboxEntry.operation, OutboxEntry.status, OutboxEntry.attempts)
            .where(OutboxEntry.event_id == uuid.UUID(event_id))
            .order_by(OutboxEntry.id)
        )
        return [(r.operation, r.status, r.attempts) for r in rows]


def test_an_event_created_and_deleted_before_any_push_sends_nothing(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    created = app.create(alice, MEETING)
    assert app.put(alice, created["id"], {"title": "edited"}).status_code == 200
    assert app.client.delete(f"/events/{created['id']}", headers=alice.headers).status_code == 204

    writes, reads = pushed(app)

    # Google never had it: no write and no read; the queued rows are closed, and the push
    # says so in the sync log
    assert writes == []
    assert reads == []
    assert outbox_rows(app, created["id"]) == [
        ("insert", "done", 0),
        ("update", "done", 0),
        ("delete", "done", 0),
    ]
    with app.services.sessions() as session:
        messages = session.scalars(
            sa.select(SyncLog.message).where(SyncLog.event_id == uuid.UUID(created["id"]))
        ).all()
    assert messages == ["deleted before it reached Google: nothing sent"]
    assert pushed(app) == ([], [])


def test_a_deleted_event_whose_insert_answer_was_lost_is_deleted_on_google(
    app: EventsApp,
) -> None:
    alice = app.connect("alice@example.com")
    # Given Google stores the insert but answers 503, and the read-back after the
    # client's retry (409) fails too: the push cannot know whether it got through
    app.control.add_fault(
        kind="status", status=503, method="POST", path=EVENTS + "$", after_write=True
    )
    app.control.add_fault(kind="status", status=503, method="GET", path=EVENTS + "/", count=None)
    created = app.create(alice, MEETING)
    writes, _ = pushed(app)
    assert {m for m, _ in writes} == {"POST"}
    assert outbox_rows(app, created["id"]) == [("insert", "pending", 1)]
    app.control.clear_faults()
    assert app.google_event(alice, created["google_event_id"])["status"] == "confirmed"

    # When it is deleted locally before the retry
    assert app.client.delete(f"/events/{created['id']}", headers=alice.headers).status_code == 204
    app.clock.advance(hours=1)
    writes, _ = pushed(app)

    # Then the one write is the delete, and Google's copy is gone
    assert [m for m, _ in writes] == ["DELETE"]
    assert writes[0][1].endswith("/" + created["google_event_id"])
    assert app.google_event(alice, created["google_event_id"])["status"] == "cancelled"
    assert {status for _, status, _ in outbox_rows(app, created["id"])} == {"done"}


def test_a_deleted_event_whose_push_died_after_sending_the_insert_is_deleted_on_google(
    app: EventsApp,
) -> None:
    alice = app.connect("alice@example.com")
    created = app.create(alice, MEETING)
    event_id = uuid.UUID(created["id"])
    # Given a push that counted its insert, sent it, and died before recording anything
    with app.services.sessions.begin() as session:
        pending = outbox.pending_writes(session, event_id)
        assert pending is not None
        outbox.count_attempt(session, event_id, up_to=pending.last_id)
    app.remote(alice).insert(
        calendarId=alice.primary,
        body={
            "id": created["google_event_id"],
            "summary": MEETING["title"],
            "start": {"dateTime": MEETING["start_time"]},
            "end": {"dateTime": MEETING["end_time"]},
        },
    ).execute()

    # When the event is deleted locally and pushed
    assert app.client.delete(f"/events/{created['id']}", headers=alice.headers).status_code == 204
    writes, _ = pushed(app)

    # Then the delete is sent: Google may have the event, so "never sent" is not assumed
    assert [m for m, _ in writes] == ["DELETE"]
    assert app.google_event(alice, created["google_event_id"])["status"] == "cancelled"


def test_many_events_changed_at_once_are_one_write_each(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    created = [
        app.create(
            alice,
            MEETING
            | {
                "title": f"e{n}",
                "start_time": f"2031-03-{4 + n:02d}T10:00:00+01:00",
                "end_time": f"2031-03-{4 + n:02d}T11:00:00+01:00",
            },
        )
        for n in range(10)
    ]
    writes, _ = pushed(app)
    assert [m for m, _ in writes] == ["POST"] * 10

    for event in created:
        for n in range(2):
            assert app.put(alice, event["id"], {"description": f"d{n}"}).status_code == 200
    writes, reads = pushed(app)
    assert len({path for _, path in writes}) == len(writes)  # no event written twice
    assert [m for m, _ in writes] == ["PATCH"] * 10
    assert reads == []
