"""An edit Google refuses because its author lost write access to a shared calendar
(decision JD1): the edit is discarded, the event shows Google's copy again and is
``synced``, and the sync log keeps the refused version; other users' copies and Google's
event are untouched. Before, the event stayed ``error`` with content Google never had,
and every later edit or delete of it was 403 (the calendar is read-only now), so nothing
could clear it. Both databases, three users."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.store.tables import SyncLog
from calsync.sync import calendar_list
from calsync.sync.write_back import PushStatus
from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

BODY = {
    "title": "planning",
    "location": "room 1",
    "start_time": "2031-03-10T09:00:00Z",
    "end_time": "2031-03-10T10:00:00Z",
}


def _team_of_writers(app: EventsApp) -> tuple[User, User, User, dict[str, Any], uuid.UUID]:
    """owner's "Team" calendar at Google, which ann and ben may write and have listed:
    the owner, ann, ben, the Google calendar, and ann's calendar id for it."""
    owner = app.connect("owner@example.com")
    ann = app.connect("ann@example.com")
    ben = app.connect("ben@example.com")
    team = app.control.add_calendar(owner.email, "Team")
    for user in (ann, ben):
        app.control.share(team["id"], user.email, "writer")
        calendar_list.sync_calendar_list(app.services, user.id)
    return owner, ann, ben, team, app.calendar_id(ann, team["id"])


def test_an_edit_refused_for_lost_write_access_restores_googles_copy(any_app: EventsApp) -> None:
    # Given a team calendar of owner's that ann and ben may write, and an event ann made
    owner, ann, ben, team, anns_team = _team_of_writers(any_app)
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


def test_a_delete_refused_for_lost_write_access_brings_the_event_back(
    any_app: EventsApp,
) -> None:
    """Decision JI1 (JD3 before): the row comes back with Google's copy, ``synced``."""
    # Given a team calendar of owner's that ann and ben may write, and an event ann made
    owner, ann, ben, team, anns_team = _team_of_writers(any_app)
    made = any_app.create(ann, BODY | {"calendar_id": str(anns_team)})
    assert any_app.push(made["id"]).status is PushStatus.SYNCED
    google_id = any_app.get(ann, made["id"])["google_event_id"]
    # and ann's own event, which she may still delete
    own = any_app.create(ann, BODY | {"title": "mine"})
    assert any_app.push(own["id"]).status is PushStatus.SYNCED
    # When ann, made a reader at Google before calsync hears of it, deletes both
    any_app.control.share(team["id"], ann.email, "reader")
    for event in (made, own):
        deleted = any_app.client.delete(f"/events/{event['id']}", headers=ann.headers)
        assert deleted.status_code == 204, deleted.text
    assert any_app.client.get(f"/events/{made['id']}", headers=ann.headers).status_code == 404
    pushed = [any_app.push(made["id"]).status, any_app.push(own["id"]).status]
    # Then Google kept the team event, and ann's copy is back, synced, listed again
    assert pushed == [PushStatus.SYNCED, PushStatus.SYNCED]
    assert any_app.push_all() == []
    on_google = any_app.google_event(owner, google_id, calendar=team["id"])
    assert (on_google["status"], on_google["summary"]) == ("confirmed", "planning")
    shown = any_app.client.get(f"/events/{made['id']}", headers=ann.headers)
    assert shown.status_code == 200, shown.text
    assert (shown.json()["sync_state"], shown.json()["sync_error"]) == ("synced", None)
    assert shown.json()["title"] == "planning"
    listed = any_app.client.get(
        "/events", params={"calendar_id": str(anns_team)}, headers=ann.headers
    ).json()["events"]
    assert [(e["id"], e["sync_state"]) for e in listed] == [(made["id"], "synced")]
    # while her own event's delete went through
    assert any_app.client.get(f"/events/{own['id']}", headers=ann.headers).status_code == 404
    # and the sync log keeps the refused delete, naming why
    with any_app.services.sessions() as session:
        rows = session.execute(
            sa.select(SyncLog.sync_status, SyncLog.message, SyncLog.details).where(
                SyncLog.event_id == uuid.UUID(made["id"]), SyncLog.kind == "push"
            )
        ).all()
    refused = [row for row in rows if row.sync_status == "error"]
    assert len(refused) == 1, rows
    assert "requiredAccessLevel" in refused[0].message
    assert "delete was discarded" in refused[0].message
    assert refused[0].details["refused"] == "delete"
    # and ben's copy, pulled, is the event as it was, with nothing failed
    bens_team = any_app.calendar_id(ben, team["id"])
    any_app.pull(ben, bens_team)
    listed = any_app.client.get(
        "/events", params={"calendar_id": str(bens_team)}, headers=ben.headers
    ).json()["events"]
    assert [(e["title"], e["sync_state"]) for e in listed] == [("planning", "synced")]
    with any_app.services.sessions() as session:
        failed = session.scalars(
            sa.select(SyncLog.id).where(SyncLog.user_id == ben.id, SyncLog.sync_status == "error")
        ).all()
    assert failed == []
    # and once calsync reads ann's calendar list, she may not delete it again
    calendar_list.sync_calendar_list(any_app.services, ann.id)
    again = any_app.client.delete(f"/events/{made['id']}", headers=ann.headers)
    assert again.status_code == 403


WEEKLY = {
    "title": "standup",
    "start_time": "2031-03-03T09:00:00",
    "end_time": "2031-03-03T09:15:00",
    "timezone": "Europe/Berlin",
    "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6"],
}


def _instances(app: EventsApp, user: User, calendar: uuid.UUID) -> list[tuple[str, str]]:
    query = {"start_date": "2031-03-01", "end_date": "2031-04-30", "expand": "true"}
    response = app.client.get(
        "/events", params=query | {"calendar_id": str(calendar)}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    return [(e["title"], e["sync_state"]) for e in response.json()["events"]]


def test_a_series_delete_refused_for_lost_write_access_brings_back_its_instances(
    any_app: EventsApp,
) -> None:
    """Decision JI1: the series and the exception its delete deleted are live again."""
    # Given a weekly series on owner's team calendar, made by ann, one instance renamed
    owner, ann, ben, team, anns_team = _team_of_writers(any_app)
    series = any_app.create(ann, WEEKLY | {"calendar_id": str(anns_team)})
    any_app.push_all()
    query = {"start_date": "2031-03-01", "end_date": "2031-04-30", "expand": "true"}
    second = any_app.client.get(
        "/events", params=query | {"calendar_id": str(anns_team)}, headers=ann.headers
    ).json()["events"][1]["id"]
    renamed = any_app.put(ann, second, {"title": "standup, moved"})
    assert renamed.status_code == 200, renamed.text
    any_app.push_all()
    expected = [("standup", "synced"), ("standup, moved", "synced")] + [("standup", "synced")] * 4
    assert _instances(any_app, ann, anns_team) == expected
    # When ann, made a reader at Google before calsync hears of it, deletes the series
    any_app.control.share(team["id"], ann.email, "reader")
    deleted = any_app.client.delete(f"/events/{series['id']}", headers=ann.headers)
    assert deleted.status_code == 204, deleted.text
    assert _instances(any_app, ann, anns_team) == []
    any_app.push_all()
    # Then Google kept the series, and ann lists every instance again, the renamed one too
    on_google = any_app.google_event(owner, series["google_event_id"], calendar=team["id"])
    assert on_google["status"] == "confirmed"
    assert _instances(any_app, ann, anns_team) == expected
    assert any_app.get(ann, series["id"])["sync_state"] == "synced"
    assert any_app.push_all() == []
    # and ben, pulled, lists the same
    bens_team = any_app.calendar_id(ben, team["id"])
    any_app.pull(ben, bens_team)
    assert _instances(any_app, ben, bens_team) == expected


def test_a_create_refused_for_lost_write_access_goes_and_the_log_keeps_it(
    any_app: EventsApp,
) -> None:
    """Decision JI2: a create Google never had, refused for good, is deleted locally
    (not ``error``, local only and 403 to every later edit) and kept in the sync log."""
    # Given a team calendar of owner's that ann and ben may write
    owner, ann, ben, team, anns_team = _team_of_writers(any_app)
    # When ann, made a reader at Google before calsync hears of it, creates an event
    # there (accepted: writable as far as calsync knows), and ben one of his own there
    any_app.control.share(team["id"], ann.email, "reader")
    made = any_app.create(ann, BODY | {"calendar_id": str(anns_team), "title": "ann's"})
    bens_team = any_app.calendar_id(ben, team["id"])
    bens = any_app.create(ben, BODY | {"calendar_id": str(bens_team), "title": "ben's"})
    pushed = [any_app.push(made["id"]).status, any_app.push(bens["id"]).status]
    # Then Google refused ann's: it is gone locally too, nothing left to push or fail
    assert pushed == [PushStatus.SYNCED, PushStatus.SYNCED]
    assert any_app.push_all() == []
    assert any_app.client.get(f"/events/{made['id']}", headers=ann.headers).status_code == 404
    listed = any_app.client.get(
        "/events", params={"calendar_id": str(anns_team)}, headers=ann.headers
    ).json()["events"]
    assert listed == []
    # and the sync log keeps what was refused, where ann can read it
    logs = any_app.client.get("/sync/logs", params={"kind": "push"}, headers=ann.headers)
    assert logs.status_code == 200, logs.text
    rows = [row for row in logs.json()["logs"] if row["event_id"] == made["id"]]
    assert [row["status"] for row in rows] == ["error"], rows
    assert "requiredAccessLevel" in rows[0]["message"]
    assert "create was discarded" in rows[0]["message"]
    assert (rows[0]["details"]["refused"], rows[0]["details"]["local"]["title"]) == (
        "insert",
        "ann's",
    )
    # and ben sees nothing of it
    theirs = any_app.client.get("/sync/logs", headers=ben.headers).json()["logs"]
    assert [row for row in theirs if row["event_id"] == made["id"]] == []
    # while ben's is on Google, and the owner sees only his
    on_google = any_app.remote(owner).list(calendarId=team["id"]).execute()["items"]
    assert [e["summary"] for e in on_google] == ["ben's"]
    any_app.pull(ben, bens_team)
    listed = any_app.client.get(
        "/events", params={"calendar_id": str(bens_team)}, headers=ben.headers
    ).json()["events"]
    assert [(e["title"], e["sync_state"]) for e in listed] == [("ben's", "synced")]


def test_a_refused_create_an_earlier_attempt_made_keeps_googles_copy(any_app: EventsApp) -> None:
    """Decision JI2: a refused insert whose earlier attempt reached Google (its answer
    lost) is not deleted: Google holds the event, so its copy is kept, ``synced``."""
    owner, ann, ben, team, anns_team = _team_of_writers(any_app)
    # Given ann's create reached Google, its answer lost, and Google cannot be read
    events = r"/calendar/v3/calendars/[^/]+/events"
    any_app.control.add_fault(kind="reset", method="POST", path=events + "$", after_write=True)
    any_app.control.add_fault(
        kind="status", status=503, method="GET", path=events + "/", count=None
    )
    made = any_app.create(ann, BODY | {"calendar_id": str(anns_team)})
    assert any_app.push(made["id"]).status is PushStatus.RETRY
    # When ann is made a reader before the retry, which Google refuses
    any_app.control.clear_faults()
    any_app.control.share(team["id"], ann.email, "reader")
    any_app.clock.advance(minutes=5)
    assert any_app.push(made["id"]).status is PushStatus.SYNCED
    # Then the event stays, as Google holds it: synced, once on Google
    shown = any_app.get(ann, made["id"])
    assert (shown["title"], shown["sync_state"]) == ("planning", "synced")
    on_google = any_app.remote(owner).list(calendarId=team["id"]).execute()["items"]
    assert [e["summary"] for e in on_google] == ["planning"]
    assert any_app.push_all() == []
    bens_team = any_app.calendar_id(ben, team["id"])
    any_app.pull(ben, bens_team)
    listed = any_app.client.get(
        "/events", params={"calendar_id": str(bens_team)}, headers=ben.headers
    ).json()["events"]
    assert [(e["title"], e["sync_state"]) for e in listed] == [("planning", "synced")]
