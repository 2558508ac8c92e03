"""A "this and following" split Google refuses because its author lost write access to
the shared calendar (decision JJ1; JI3 before). The cut of the old series is refused and
Google's copy restored (JD1), the new series' insert is refused and removed (JI2), and
the series' changed and cancelled instances after the split point, which the split
deleted locally, come back as Google still holds them. Before, they stayed deleted: the
writer listed the generated instances in their place (the renamed one under the series'
title, the cancelled one back). Three users: carol owns "Team", ann may write it until
carol makes her a reader at Google, bob reads it. Both databases."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from calsync.sync import calendar_list
from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

WEEKLY = {
    "title": "standup",
    "start_time": "2031-03-03T09:00:00",
    "end_time": "2031-03-03T09:15:00",
    "timezone": "Europe/Berlin",
    "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6"],
}
RANGE = {"start_date": "2031-03-01", "end_date": "2031-04-30"}
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def listed(app: EventsApp, user: User, calendar: uuid.UUID, *, expand: bool) -> list[Any]:
    """(start, title) of what `user` lists of `calendar` in the range, sorted."""
    query = RANGE | {"calendar_id": str(calendar), "expand": str(expand).lower()}
    response = app.client.get("/events", params=query, headers=user.headers)
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    assert {e["sync_state"] for e in events} <= {"synced"}, events
    return sorted((e["start_time"], e["title"]) for e in events)


def on_google(app: EventsApp, owner: User, team: str, *, expand: bool) -> list[Any]:
    """(start, title) of what Google lists of the calendar in the range, sorted; not
    the cancelled instances a listing without `singleEvents` carries (Google's events
    reference, ``showDeleted``), which calsync's listings leave out."""
    items = (
        app.remote(owner)
        .list(
            calendarId=team,
            singleEvents=expand,
            timeMin="2031-03-01T00:00:00Z",
            timeMax="2031-05-01T00:00:00Z",
        )
        .execute()["items"]
    )
    live = [e for e in items if e["status"] != "cancelled"]
    return sorted((e["start"]["dateTime"], e["summary"]) for e in live)


def writes_to(app: EventsApp, team: str) -> list[tuple[str, str]]:
    found = app.google_requests()
    return [
        (r["method"], r["path"])
        for r in found
        if r["method"] in WRITES and f"/calendars/{team}/events" in r["path"]
    ]


def test_a_split_refused_for_lost_write_access_keeps_googles_series(any_app: EventsApp) -> None:
    # Given carol's "Team" calendar, which ann may write and bob may read
    carol = any_app.connect("carol@example.com")
    ann = any_app.connect("ann@example.com")
    bob = any_app.connect("bob@example.com")
    team = any_app.control.add_calendar(carol.email, "Team")["id"]
    any_app.control.share(team, ann.email, "writer")
    any_app.control.share(team, bob.email, "reader")
    for user in (carol, ann, bob):
        calendar_list.sync_calendar_list(any_app.services, user.id)
    teams = {user.email: any_app.calendar_id(user, team) for user in (carol, ann, bob)}
    # and ann's weekly series there, its fifth instance renamed and its fourth cancelled
    series = any_app.create(ann, WEEKLY | {"calendar_id": str(teams[ann.email])})
    any_app.push_all()
    fifth, fourth = f"{series['id']}_20310331T070000Z", f"{series['id']}_20310324T080000Z"
    renamed = any_app.put(ann, fifth, {"title": "standup, moved"})
    assert renamed.status_code == 200, renamed.text
    cancelled = any_app.client.delete(f"/events/{fourth}", headers=ann.headers)
    assert cancelled.status_code == 204, cancelled.text
    assert [r.status for r in any_app.push_all()] == ["synced", "synced"]
    assert listed(any_app, ann, teams[ann.email], expand=True) == on_google(
        any_app, carol, team, expand=True
    )
    fifth_at_google = any_app.get(ann, fifth)["google_event_id"]
    # When carol makes ann a reader at Google, and before calsync hears of it ann changes
    # the series from its third instance on (accepted: writable as far as calsync knows)
    any_app.control.share(team, ann.email, "reader")
    third = f"{series['id']}_20310317T080000Z"
    split = any_app.put(ann, third, {"title": "standup v2"}, scope="following")
    assert split.status_code == 200, split.text
    # and carol renames the fifth instance again at Google, which ann's calsync pulls
    # before it pushes the split (the row is deleted locally: left to the push)
    any_app.remote(carol).patch(
        calendarId=team, eventId=fifth_at_google, body={"summary": "standup, carol's"}
    ).execute()
    any_app.pull(ann, teams[ann.email])
    expected = {expand: on_google(any_app, carol, team, expand=expand) for expand in (True, False)}
    assert [title for _, title in expected[True]] == ["standup"] * 3 + [
        "standup, carol's",
        "standup",
    ]
    before = len(writes_to(any_app, team))
    any_app.push_all()
    # Then Google refused both writes, each sent once, and kept the series as it was
    assert any_app.push_all() == []
    assert writes_to(any_app, team)[before:] == [
        ("PATCH", f"/calendar/v3/calendars/{team}/events/{series['google_event_id']}"),
        ("POST", f"/calendar/v3/calendars/{team}/events"),
    ]
    for expand in (True, False):
        assert on_google(any_app, carol, team, expand=expand) == expected[expand]
    # and ann, carol and bob each list exactly Google's series, expanded and not
    for user in (carol, bob):
        any_app.pull(user, teams[user.email])
    any_app.pull(ann, teams[ann.email])
    for user in (ann, carol, bob):
        for expand in (True, False):
            shown = listed(any_app, user, teams[user.email], expand=expand)
            assert shown == expected[expand], (user.email, expand)
    assert any_app.push_all() == []
    # and ann's sync log keeps the refused split: the cut and the new series
    logs = any_app.client.get("/sync/logs", params={"kind": "push"}, headers=ann.headers)
    assert logs.status_code == 200, logs.text
    refused = [row for row in logs.json()["logs"] if row["status"] == "error"]
    assert sorted(row["details"]["refused"] for row in refused) == ["edit", "insert"], refused
    cut = next(row for row in refused if row["details"]["refused"] == "edit")
    assert cut["details"]["exceptions_kept"] == 2  # the cancelled fourth, the renamed fifth
    assert all("requiredAccessLevel" in row["message"] for row in refused)
    new_series = next(row for row in refused if row["details"]["refused"] == "insert")
    assert new_series["details"]["local"]["title"] == "standup v2"
