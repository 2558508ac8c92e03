"""An edit Google refuses because its author lost write access to a shared calendar
(decision JD1): the edit is discarded, the event shows Google's copy again and is
``synced``, and the sync log keeps the refused version; other users' copies and Google's
event are untouched. Before, the event stayed ``error`` with content Google never had,
and every later edit or delete of it was 403 (the calendar is read-only now), so nothing
could clear it. Both databases, three users."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from calsync.store.tables import SyncLog
from calsync.sync import calendar_list
from calsync.sync.write_back import PushStatus
from tests.integration.events.conftest import EventsApp

pytestmark = pytest.mark.integration

BODY = {
    "title": "planning",
    "location": "room 1",
    "start_time": "2031-03-10T09:00:00Z",
    "end_time": "2031-03-10T10:00:00Z",
}


def test_an_edit_refused_for_lost_write_access_restores_googles_copy(any_app: EventsApp) -> None:
    # Given a team calendar of owner's that ann and ben may write, and an event ann made
    owner = any_app.connect("owner@example.com")
    ann = any_app.connect("ann@example.com")
    ben = any_app.connect("ben@example.com")
    team = any_app.control.add_calendar(owner.email, "Team")
    for user in (ann, ben):
        any_app.control.share(team["id"], user.email, "writer")
        calendar_list.sync_calendar_list(any_app.services, user.id)
    anns_team = any_app.calendar_id(ann, team["id"])
    made = any_app.create(ann, BODY | {"calendar_id": str(anns_team)})
    assert any_app.push(made["id"]).status is PushStatus.SYNCED
    google_id = any_app.get(ann, made["id"])["google_event_id"]
    # and ann's own primary event, which keeps syncing
    own = any_app.create(ann, BODY | {"title": "mine"})
    assert any_app.push(own["id"]).status is PushStatus.SYNCED
    # When the owner makes ann a reader at Google, and before calsync hears of it ann
    # edits the event (accepted: her calendar is still writable as far as calsync knows)
    any_app.control.share(team["id"], ann.email, "reader")
    edited = any_app.put(ann, made["id"], {"title": "ann's plan", "location": "room 2"})
    assert edited.status_code == 200, edited.text
    mine = any_app.put(ann, own["id"], {"title": "mine, edited"})
    assert mine.status_code == 200, mine.text
    pushed = [any_app.push(made["id"]).status, any_app.push(own["id"]).status]
    # Then Google refused the shared event's edit, and its copy is shown again, synced
    assert pushed == [PushStatus.SYNCED, PushStatus.SYNCED]
    assert any_app.push_all() == []
    shown = any_app.get(ann, made["id"])
    assert (shown["title"], shown["location"]) == ("planning", "room 1")
    assert (shown["sync_state"], shown["sync_error"]) == ("synced", None)
    assert any_app.get(ann, own["id"])["title"] == "mine, edited"
    on_google = any_app.google_event(owner, google_id, calendar=team["id"])
    assert (on_google["summary"], on_google["location"]) == ("planning", "room 1")
    # and the sync log keeps the refused version, naming why
    with any_app.services.sessions() as session:
        rows = session.execute(
            sa.select(SyncLog.sync_status, SyncLog.message, SyncLog.details).where(
                SyncLog.event_id == uuid.UUID(made["id"]), SyncLog.kind == "push"
            )
        ).all()
    refused = [row for row in rows if row.sync_status == "error"]
    assert len(refused) == 1, rows
    assert "requiredAccessLevel" in refused[0].message
    assert refused[0].details["local"]["title"] == "ann's plan"
    # and nothing of ben's changed: his copy, pulled, has Google's version
    bens_team = any_app.calendar_id(ben, team["id"])
    any_app.pull(ben, bens_team)
    with any_app.services.sessions() as session:
        bens = session.scalars(
            sa.select(SyncLog.id).where(SyncLog.user_id == ben.id, SyncLog.sync_status == "error")
        ).all()
    assert bens == []
    listed = any_app.client.get(
        "/events", params={"calendar_id": str(bens_team)}, headers=ben.headers
    ).json()["events"]
    assert [(e["title"], e["sync_state"]) for e in listed] == [("planning", "synced")]
    # and once calsync reads ann's calendar list, the calendar is read-only for her
    calendar_list.sync_calendar_list(any_app.services, ann.id)
    again = any_app.put(ann, made["id"], {"title": "again"})
    assert again.status_code == 403


@pytest.mark.xfail(
    strict=True,
    reason="JD3, left: a delete Google refuses for lost write access stays error and "
    "hidden locally while Google (and the other writers) keep the event; restoring "
    "it needs an undelete in the store (the row, its read model and reminders)",
)
def test_a_delete_refused_for_lost_write_access_brings_the_event_back(
    any_app: EventsApp,
) -> None:
    # Given a team calendar of owner's that ann may write, and an event ann made there
    owner = any_app.connect("owner@example.com")
    ann = any_app.connect("ann@example.com")
    ben = any_app.connect("ben@example.com")
    team = any_app.control.add_calendar(owner.email, "Team")
    for user in (ann, ben):
        any_app.control.share(team["id"], user.email, "writer")
        calendar_list.sync_calendar_list(any_app.services, user.id)
    made = any_app.create(ann, BODY | {"calendar_id": str(any_app.calendar_id(ann, team["id"]))})
    assert any_app.push(made["id"]).status is PushStatus.SYNCED
    google_id = any_app.get(ann, made["id"])["google_event_id"]
    # When ann, made a reader at Google before calsync hears of it, deletes the event
    any_app.control.share(team["id"], ann.email, "reader")
    deleted = any_app.client.delete(f"/events/{made['id']}", headers=ann.headers)
    assert deleted.status_code == 204
    any_app.push(made["id"])
    # Then Google kept it, and so does ann's copy again
    assert any_app.google_event(owner, google_id, calendar=team["id"])["status"] == "confirmed"
    shown = any_app.client.get(f"/events/{made['id']}", headers=ann.headers)
    assert shown.status_code == 200
    assert shown.json()["sync_state"] == "synced"
