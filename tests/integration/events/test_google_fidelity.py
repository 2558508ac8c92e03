"""Series Google accepts and calsync must accept, expand and push as Google has them
(issue 17, items 5 and 7), through the HTTP API on both databases, with the jobs run by
hand against the emulator.

- A timed event of no length (start == end) is common in Google exports: created as a
  series, expanded, pushed and pulled back unchanged.
- One instance of a timed series changed to all-day: Google keeps its timed
  ``originalStartTime``; calsync stores, lists and pushes it so.
- A series whose start its rule does not produce: the start is the first instance at
  Google and in calsync; editing it reaches Google (it used to end in ``error``).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

NY = "America/New_York"


def _expanded(app: EventsApp, user: User, start: str, end: str) -> list[dict[str, Any]]:
    query = {"start_date": start, "end_date": end, "expand": "true"}
    response = app.client.get("/events", params=query, headers=user.headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def _google_instances(app: EventsApp, user: User, google_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        app.remote(user).instances(calendarId=user.primary, eventId=google_id).execute()["items"]
    )
    return items


def test_a_zero_length_timed_series_is_accepted_pushed_and_pulled(any_app: EventsApp) -> None:
    app = any_app
    for email in ("alice@example.com", "bob@example.com"):
        user = app.connect(email)
        series = app.create(
            user,
            {
                "title": f"Reminder of {email}",
                "start_time": "2031-03-03T09:00:00",
                "end_time": "2031-03-03T09:00:00",
                "timezone": NY,
                "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
            },
        )
        assert series["start_time"] == series["end_time"] == "2031-03-03T09:00:00-05:00"
        listed = _expanded(app, user, "2031-03-01", "2031-03-31")
        assert [(e["start_time"], e["end_time"]) for e in listed] == [
            ("2031-03-03T09:00:00-05:00", "2031-03-03T09:00:00-05:00"),
            ("2031-03-10T09:00:00-04:00", "2031-03-10T09:00:00-04:00"),
            ("2031-03-17T09:00:00-04:00", "2031-03-17T09:00:00-04:00"),
        ]
        app.push_all()
        assert app.get(user, series["id"])["sync_state"] == "synced"
        remote = app.google_event(user, series["google_event_id"])
        assert (
            remote["start"]
            == remote["end"]
            == {"dateTime": "2031-03-03T09:00:00-05:00", "timeZone": NY}
        )
        assert len(_google_instances(app, user, series["google_event_id"])) == 3
        # A zero-length single event too; a zero-length all-day one stays refused (Google
        # refuses it: timeRangeEmpty).
        single = app.create(
            user,
            {
                "title": "point",
                "start_time": "2031-03-04T12:00:00Z",
                "end_time": "2031-03-04T12:00:00Z",
            },
        )
        refused = app.client.post(
            "/events",
            json={"title": "no day", "start_time": "2031-03-04", "end_time": "2031-03-04"},
            headers=user.headers,
        )
        assert refused.status_code == 422
        assert refused.json()["error"]["details"][0]["field"] == "end_time"
        app.push_all()
        assert app.get(user, single["id"])["sync_state"] == "synced"
        app.pull(user)
        again = app.get(user, series["id"])
        assert (again["sync_state"], again["end_time"]) == ("synced", "2031-03-03T09:00:00-05:00")


def test_an_instance_changed_from_timed_to_all_day(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    bob = app.connect("bob@example.com")
    for user in (alice, bob):
        series = app.create(
            user,
            {
                "title": "Standup",
                "start_time": "2031-03-03T09:00:00",
                "end_time": "2031-03-03T09:30:00",
                "timezone": NY,
                "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
            },
        )
        app.push_all()
        second = _expanded(app, user, "2031-03-01", "2031-03-31")[1]
        assert second["id"] == f"{series['id']}_20310304T140000Z"

        changed = app.put(
            user,
            second["id"],
            {"all_day": True, "start_time": "2031-03-04", "end_time": "2031-03-05"},
        )

        assert changed.status_code == 200, changed.text
        body = changed.json()
        assert (body["all_day"], body["start_time"], body["end_time"]) == (
            True,
            "2031-03-04",
            "2031-03-05",
        )
        assert body["original_start_time"] == "2031-03-04T09:00:00-05:00"
        listed = _expanded(app, user, "2031-03-01", "2031-03-31")
        assert [(e["id"], e["all_day"]) for e in listed] == [
            (f"{series['id']}_20310303T140000Z", False),
            (second["id"], True),
            (f"{series['id']}_20310305T140000Z", False),
        ]
        app.push_all()
        assert app.get(user, second["id"])["sync_state"] == "synced"
        google = _google_instances(app, user, series["google_event_id"])
        assert [i["start"] for i in google] == [
            {"dateTime": "2031-03-03T09:00:00-05:00", "timeZone": NY},
            {"date": "2031-03-04"},
            {"dateTime": "2031-03-05T09:00:00-05:00", "timeZone": NY},
        ]
        assert google[1]["originalStartTime"] == {
            "dateTime": "2031-03-04T09:00:00-05:00",
            "timeZone": NY,
        }
        app.pull(user)
        after = _expanded(app, user, "2031-03-01", "2031-03-31")
        assert [(e["all_day"], e["sync_state"]) for e in after] == [
            (False, "synced"),
            (True, "synced"),
            (False, "synced"),
        ]


def test_an_off_rule_start_is_an_instance_that_can_be_edited(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    bob = app.connect("bob@example.com")
    for user in (alice, bob):
        # Wednesday 2031-03-05; the rule yields Thursdays.
        series = app.create(
            user,
            {
                "title": "Thursdays",
                "start_time": "2031-03-05T10:00:00",
                "end_time": "2031-03-05T11:00:00",
                "timezone": NY,
                "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=TH;COUNT=3"],
            },
        )
        app.push_all()
        listed = _expanded(app, user, "2031-03-01", "2031-03-31")
        assert [e["start_time"] for e in listed] == [
            "2031-03-05T10:00:00-05:00",
            "2031-03-06T10:00:00-05:00",
            "2031-03-13T10:00:00-04:00",
        ]

        edited = app.put(user, listed[0]["id"], {"title": "Kick-off"})

        assert edited.status_code == 200, edited.text
        app.push_all()
        # Google had no such instance: the patch got 404 and the edit ended in `error`.
        assert app.get(user, listed[0]["id"])["sync_state"] == "synced"
        google = _google_instances(app, user, series["google_event_id"])
        assert [(i["summary"], i["start"]["dateTime"]) for i in google] == [
            ("Kick-off", "2031-03-05T10:00:00-05:00"),
            ("Thursdays", "2031-03-06T10:00:00-05:00"),
            ("Thursdays", "2031-03-13T10:00:00-04:00"),
        ]


def test_an_override_of_an_off_rule_start_made_on_google_is_pulled(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    events = app.remote(alice)
    master = events.insert(
        calendarId=alice.primary,
        body={
            "summary": "Thursdays",
            "start": {"dateTime": "2031-03-05T10:00:00", "timeZone": NY},
            "end": {"dateTime": "2031-03-05T11:00:00", "timeZone": NY},
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=TH;COUNT=3"],
        },
    ).execute()
    first = _google_instances(app, alice, master["id"])[0]
    events.patch(
        calendarId=alice.primary,
        eventId=first["id"],
        body={
            "summary": "Kick-off, later",
            "start": {"dateTime": "2031-03-05T15:00:00", "timeZone": NY},
            "end": {"dateTime": "2031-03-05T16:00:00", "timeZone": NY},
        },
    ).execute()
    app.pull(alice)
    listed = _expanded(app, alice, "2031-03-01", "2031-03-31")
    assert [(e["title"], e["start_time"], e["sync_state"]) for e in listed] == [
        ("Kick-off, later", "2031-03-05T15:00:00-05:00", "synced"),
        ("Thursdays", "2031-03-06T10:00:00-05:00", "synced"),
        ("Thursdays", "2031-03-13T10:00:00-04:00", "synced"),
    ]
    # And calsync's own edit of that exception reaches Google.
    again = app.put(alice, listed[0]["id"], {"location": "Room 4"})
    assert again.status_code == 200, again.text
    app.push_all()
    assert app.get(alice, listed[0]["id"])["sync_state"] == "synced"
    assert app.google_event(alice, first["id"])["location"] == "Room 4"


def test_an_instance_in_a_daylight_saving_gap_can_be_edited(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    # 02:30 does not exist in New York on 2031-03-09: that instance starts at 03:30 EDT.
    series = app.create(
        alice,
        {
            "title": "Night shift",
            "start_time": "2031-03-08T02:30:00",
            "end_time": "2031-03-08T03:00:00",
            "timezone": NY,
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
        },
    )
    app.push_all()
    gap = _expanded(app, alice, "2031-03-01", "2031-03-31")[1]
    assert (gap["id"], gap["start_time"]) == (
        f"{series['id']}_20310309T073000Z",
        "2031-03-09T03:30:00-04:00",
    )

    edited = app.put(alice, gap["id"], {"title": "Short night"})

    assert edited.status_code == 200, edited.text
    app.push_all()
    # Google listed the instance but answered 404 to its patch: the edit ended in `error`.
    assert app.get(alice, gap["id"])["sync_state"] == "synced"
    google = _google_instances(app, alice, series["google_event_id"])
    assert [(i["summary"], i["start"]["dateTime"], i["end"]["dateTime"]) for i in google] == [
        ("Night shift", "2031-03-08T02:30:00-05:00", "2031-03-08T03:00:00-05:00"),
        ("Short night", "2031-03-09T03:30:00-04:00", "2031-03-09T04:00:00-04:00"),
        ("Night shift", "2031-03-10T02:30:00-04:00", "2031-03-10T03:00:00-04:00"),
    ]


def test_an_event_across_the_fall_back_hour_reaches_google(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    # 01:30 EDT to 01:15 EST on 2031-11-02: 45 minutes.
    created = app.create(
        alice,
        {
            "title": "Across the hour",
            "start_time": "2031-11-02T01:30:00-04:00",
            "end_time": "2031-11-02T01:15:00-05:00",
            "timezone": NY,
        },
    )
    app.push_all()
    # The emulator refused it with timeRangeEmpty: the push ended in `error`.
    assert app.get(alice, created["id"])["sync_state"] == "synced"
    remote = app.google_event(alice, created["google_event_id"])
    assert (remote["start"]["dateTime"], remote["end"]["dateTime"]) == (
        "2031-11-02T01:30:00-04:00",
        "2031-11-02T01:15:00-05:00",
    )


def test_an_instance_of_an_all_day_series_changed_to_timed(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    series = app.create(
        alice,
        {
            "title": "Holiday",
            "start_time": "2031-03-03",
            "end_time": "2031-03-04",
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
        },
    )
    app.push_all()
    second = _expanded(app, alice, "2031-03-01", "2031-03-31")[1]
    assert second["id"] == f"{series['id']}_20310304"

    changed = app.put(
        alice,
        second["id"],
        {
            "all_day": False,
            "start_time": "2031-03-04T13:00:00",
            "end_time": "2031-03-04T14:00:00",
            "timezone": NY,
        },
    )

    assert changed.status_code == 200, changed.text
    assert changed.json()["original_start_time"] == "2031-03-04"
    app.push_all()
    assert app.get(alice, second["id"])["sync_state"] == "synced"
    google = _google_instances(app, alice, series["google_event_id"])
    assert [i["start"] for i in google] == [
        {"date": "2031-03-03"},
        {"dateTime": "2031-03-04T13:00:00-05:00", "timeZone": NY},
        {"date": "2031-03-05"},
    ]
    assert google[1]["originalStartTime"] == {"date": "2031-03-04"}
    app.pull(alice)
    after = _expanded(app, alice, "2031-03-01", "2031-03-31")
    assert [(e["all_day"], e["sync_state"]) for e in after] == [
        (True, "synced"),
        (False, "synced"),
        (True, "synced"),
    ]
