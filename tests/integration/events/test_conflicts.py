"""Concurrent local and remote edits: a push that gets 412 merges per field (design.md 5)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.config import ConflictPolicy, Settings
from calsync.providers.google.ids import google_event_id
from calsync.store.tables import SyncLog
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, User, running

pytestmark = pytest.mark.integration

BODY = {
    "title": "Base",
    "location": "Room 1",
    "start_time": "2031-03-04T10:00:00Z",
    "end_time": "2031-03-04T11:00:00Z",
}


def synced_event(app: EventsApp, alice: User) -> dict[str, Any]:
    created = app.create(alice, BODY)
    app.push_all()
    return created


def edit_on_google(app: EventsApp, alice: User, google_id: str, **fields: str) -> None:
    app.remote(alice).patch(calendarId=alice.primary, eventId=google_id, body=fields).execute()


def conflict_logs(app: EventsApp) -> list[SyncLog]:
    with app.services.sessions() as session:
        return list(session.scalars(sa.select(SyncLog).where(SyncLog.kind == "conflict")))


@pytest.fixture(params=list(ConflictPolicy))
def policy_app(
    request: pytest.FixtureRequest, production_settings: Settings, fake_google: FakeGoogle
) -> Iterator[EventsApp]:
    yield from running(production_settings, fake_google, conflict_policy=request.param)


def test_edits_of_different_fields_both_survive(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    created = synced_event(app, alice)
    edit_on_google(app, alice, created["google_event_id"], location="Room 2")
    assert app.put(alice, created["id"], {"title": "Local title"}).status_code == 200

    (result,) = app.push_all()

    assert result.status == "synced"
    remote = app.google_event(alice, created["google_event_id"])
    assert (remote["summary"], remote["location"]) == ("Local title", "Room 2")
    shown = app.get(alice, created["id"])
    assert (shown["title"], shown["location"], shown["sync_state"]) == (
        "Local title",
        "Room 2",
        "synced",
    )
    (entry,) = conflict_logs(app)
    assert entry.sync_status == "resolved"
    assert entry.conflicts == 0
    assert entry.details is not None
    chosen = {f["field"]: f["chosen"] for f in entry.details["fields"]}
    assert chosen == {"title": "local", "location": "remote"}
    assert entry.details["local"]["title"] == "Local title"
    assert entry.details["remote"]["location"] == "Room 2"


def test_edits_of_the_same_field_follow_the_policy(policy_app: EventsApp) -> None:
    app = policy_app
    policy = app.services.settings.conflict_policy
    alice = app.connect("alice@example.com")
    created = synced_event(app, alice)
    edit_on_google(app, alice, created["google_event_id"], summary="Remote title")
    assert app.put(alice, created["id"], {"title": "Local title"}).status_code == 200

    app.push_all()

    remote = app.google_event(alice, created["google_event_id"])
    shown = app.get(alice, created["id"])
    (entry,) = conflict_logs(app)
    assert entry.conflicts == 1
    assert entry.details is not None
    assert entry.details["policy"] == policy.value
    if policy is ConflictPolicy.REMOTE_WINS:
        assert (remote["summary"], shown["title"]) == ("Remote title", "Remote title")
        assert shown["sync_state"] == "synced"
    elif policy is ConflictPolicy.MANUAL:
        # Both are kept: the local value locally, Google's on Google, the conflict shown
        assert (remote["summary"], shown["title"]) == ("Remote title", "Local title")
        assert shown["sync_state"] == "conflict"
        assert shown["conflict"]["remote"]["title"] == "Remote title"
        assert entry.sync_status == "manual"
        # Until a PUT decides
        decided = app.put(alice, created["id"], {"title": "Decided"})
        assert decided.status_code == 200
        assert decided.json()["conflict"] is None
        app.push_all()
        assert app.google_event(alice, created["google_event_id"])["summary"] == "Decided"
        assert app.get(alice, created["id"])["sync_state"] == "synced"
    else:  # local_wins, and last_updated_wins (the local edit is the later one here)
        assert (remote["summary"], shown["title"]) == ("Local title", "Local title")
        assert shown["sync_state"] == "synced"


def test_a_calendars_own_policy_overrides_the_default(
    production_settings: Settings, fake_google: FakeGoogle
) -> None:
    for app in running(production_settings, fake_google, conflict_policy=ConflictPolicy.LOCAL_WINS):
        alice = app.connect("alice@example.com")
        changed = app.client.patch(
            f"/calendars/{alice.calendar_id}",
            json={"conflict_policy": "remote_wins"},
            headers=alice.headers,
        )
        assert changed.status_code == 200
        assert changed.json()["conflict_policy"] == "remote_wins"
        created = synced_event(app, alice)
        edit_on_google(app, alice, created["google_event_id"], summary="Remote title")
        app.put(alice, created["id"], {"title": "Local title"})
        app.push_all()
        assert app.get(alice, created["id"])["title"] == "Remote title"
        (entry,) = conflict_logs(app)
        assert entry.details is not None
        assert entry.details["policy"] == "remote_wins"


def test_a_pull_and_a_push_count_conflicts_alike(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    found_by_pull, found_by_push = synced_event(app, alice), synced_event(app, alice)
    # One event is edited in the same two fields here and on Google, then pulled
    edit_on_google(app, alice, found_by_pull["google_event_id"], summary="R", location="Room R")
    assert (
        app.put(alice, found_by_pull["id"], {"title": "L", "location": "Room L"}).status_code == 200
    )
    app.pull(alice)
    app.push_all()
    # The other is edited the same way after that pull, so its push gets 412 and merges
    assert (
        app.put(alice, found_by_push["id"], {"title": "L", "location": "Room L"}).status_code == 200
    )
    edit_on_google(app, alice, found_by_push["google_event_id"], summary="R", location="Room R")
    app.push_all()

    entries = {str(entry.event_id): entry for entry in conflict_logs(app)}
    assert set(entries) == {found_by_pull["id"], found_by_push["id"]}
    # Both merge rows count the conflicting fields (title and location)
    assert entries[found_by_pull["id"]].conflicts == entries[found_by_push["id"]].conflicts == 2
    # and the pull's own row counts the events whose merge had to pick a side
    with app.services.sessions() as session:
        pulls = session.scalars(
            sa.select(SyncLog.conflicts).where(SyncLog.kind.in_(["pull", "full_sync"]))
        ).all()
    assert sorted(pulls)[-1] == 1


def test_a_lost_insert_answer_then_a_local_edit_keeps_the_edit(policy_app: EventsApp) -> None:
    app = policy_app  # whatever the policy: Google's copy is calsync's own, not a change
    # Given an event created here, then edited here before Google answered its insert
    alice = app.connect("alice@example.com")
    created = app.create(alice, BODY | {"title": "v1"})
    assert app.put(alice, created["id"], {"title": "v2"}).status_code == 200
    # and the first insert (v1) lands on Google only now, its answer lost on the way back
    google_id = google_event_id(uuid.UUID(created["id"]))
    app.remote(alice).insert(
        calendarId=alice.primary,
        body={
            "id": google_id,
            "summary": "v1",
            "location": BODY["location"],
            "start": {"dateTime": BODY["start_time"]},
            "end": {"dateTime": BODY["end_time"]},
            "extendedProperties": {"private": {"calsync_id": created["id"]}},
        },
    ).execute()

    # When a pull sees Google's copy (stamped after the local edit) before the push runs
    app.pull(alice)
    app.push_all()

    # Then the local edit is not taken for a remote change: both sides end with v2
    assert app.get(alice, created["id"])["title"] == "v2"
    assert app.google_event(alice, google_id)["summary"] == "v2"
