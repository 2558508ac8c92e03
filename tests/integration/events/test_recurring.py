"""Series through HTTP: create, expand, edit or cancel one instance, split, and Google."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

WEEKLY = {
    "title": "Standup",
    "start_time": "2031-03-03T09:00:00",
    "end_time": "2031-03-03T09:15:00",
    "timezone": "Europe/Berlin",
    "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6"],
}


def expanded(app: EventsApp, user: User, **params: str) -> list[dict[str, Any]]:
    query = {"start_date": "2031-03-01", "end_date": "2031-04-30", "expand": "true"} | params
    response = app.client.get("/events", params=query, headers=user.headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_a_series_expands_across_dst_and_reaches_google(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    series = app.create(alice, WEEKLY)

    instances = expanded(app, alice)

    # 09:00 Berlin before and after the change to summer time (2031-03-30)
    assert [i["start_time"] for i in instances] == [
        "2031-03-03T09:00:00+01:00",
        "2031-03-10T09:00:00+01:00",
        "2031-03-17T09:00:00+01:00",
        "2031-03-24T09:00:00+01:00",
        "2031-03-31T09:00:00+02:00",
        "2031-04-07T09:00:00+02:00",
    ]
    assert {i["series_id"] for i in instances} == {series["id"]}
    assert instances[0]["id"] == f"{series['id']}_20310303T080000Z"
    masters = app.client.get("/events", headers=alice.headers, params={"recurring": "true"})
    assert [e["id"] for e in masters.json()["events"]] == [series["id"]]
    app.push_all()
    remote = app.google_event(alice, series["google_event_id"])
    assert remote["recurrence"] == ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6"]
    google_instances = (
        app.remote(alice)
        .instances(calendarId=alice.primary, eventId=series["google_event_id"])
        .execute()["items"]
    )
    assert len(google_instances) == 6


def test_one_instance_edited_and_another_cancelled(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    series = app.create(alice, WEEKLY)
    app.push_all()
    second, third = (i["id"] for i in expanded(app, alice)[1:3])

    moved = app.put(
        alice,
        second,
        {
            "title": "Standup (late)",
            "start_time": "2031-03-10T10:00:00+01:00",
            "end_time": "2031-03-10T10:15:00+01:00",
        },
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["id"] == second
    assert app.client.delete(f"/events/{third}", headers=alice.headers).status_code == 204

    instances = expanded(app, alice)
    assert len(instances) == 5
    assert instances[1]["title"] == "Standup (late)"
    assert instances[1]["start_time"] == "2031-03-10T10:00:00+01:00"
    assert app.get(alice, second)["title"] == "Standup (late)"
    assert app.client.get(f"/events/{third}", headers=alice.headers).status_code == 404

    app.push_all()
    google = (
        app.remote(alice)
        .instances(calendarId=alice.primary, eventId=series["google_event_id"])
        .execute()["items"]
    )
    assert len(google) == 5
    assert google[1]["summary"] == "Standup (late)"
    assert google[1]["start"]["dateTime"] == "2031-03-10T10:00:00+01:00"


def test_this_and_following_splits_the_series(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    series = app.create(alice, WEEKLY)
    app.push_all()
    fourth = expanded(app, alice)[3]["id"]

    split = app.put(alice, fourth, {"title": "Standup v2"}, scope="following")

    assert split.status_code == 200, split.text
    titles = [i["title"] for i in expanded(app, alice)]
    assert titles == ["Standup"] * 3 + ["Standup v2"] * 3
    old = app.get(alice, series["id"])
    assert old["recurrence"] == ["RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20310324T075959Z"]
    assert split.json()["recurrence"] == ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=3"]
    app.push_all()
    listed = app.remote(alice).list(calendarId=alice.primary, singleEvents=True).execute()["items"]
    assert [e["summary"] for e in listed] == ["Standup"] * 3 + ["Standup v2"] * 3


def test_changes_made_on_google_show_up_in_the_api(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    app.remote(alice).insert(
        calendarId=alice.primary,
        body={
            "summary": "From Google",
            "start": {"dateTime": "2031-03-04T10:00:00Z"},
            "end": {"dateTime": "2031-03-04T11:00:00Z"},
        },
    ).execute()
    app.pull(alice)
    listed = app.client.get("/events", headers=alice.headers).json()["events"]
    assert [(e["title"], e["sync_state"]) for e in listed] == [("From Google", "synced")]


def test_a_window_of_a_weekly_setpos_series_lists_what_the_whole_series_does(
    any_app: EventsApp,
) -> None:
    # Given the second of Monday, Wednesday and Friday each week, from Wednesday 5 March
    # (its first week, cut at the start, has Wednesday and Friday: the Friday is second)
    app = any_app
    alice = app.connect("alice@example.com")
    body = {
        "title": "Second meeting of the week",
        "start_time": "2031-03-05T09:00:00",
        "end_time": "2031-03-05T09:30:00",
        "timezone": "UTC",
        "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;BYSETPOS=2"],
    }
    app.create(alice, body)
    whole = [i["start_time"] for i in expanded(app, alice)]
    # When a window from Friday 14 March is listed (a Friday, where calsync began the
    # week's expansion on the Wednesday before and took that week's second day after it)
    window = expanded(app, alice, start_date="2031-03-14", end_date="2031-03-28")
    # Then it lists that week's Wednesdays, as the whole series and dateutil do
    assert [i["start_time"] for i in window] == [
        "2031-03-19T09:00:00+00:00",
        "2031-03-26T09:00:00+00:00",
    ]
    assert whole[:4] == [
        "2031-03-05T09:00:00+00:00",
        "2031-03-07T09:00:00+00:00",
        "2031-03-12T09:00:00+00:00",
        "2031-03-19T09:00:00+00:00",
    ]
