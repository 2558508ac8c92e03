"""This-and-following splits through HTTP, and what Google holds afterwards (issue 17 item 4).

Each test splits a series with ``PUT /events/{instance}?scope=following``, lists the
instances calsync shows, pushes, and lists the instances Google shows (the emulator's
``singleEvents=true``): both must be the original's, the edit applied from the split on.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration


def series(app: EventsApp, user: User, start: str, end: str, zone: str, *lines: str) -> Any:
    return app.create(
        user,
        {
            "title": "Review",
            "start_time": start,
            "end_time": end,
            "timezone": zone,
            "recurrence": list(lines),
        },
    )


def shown(app: EventsApp, user: User, first: str, last: str) -> list[tuple[str, str]]:
    query = {"start_date": first, "end_date": last, "expand": "true"}
    response = app.client.get("/events", params=query, headers=user.headers)
    assert response.status_code == 200, response.text
    return [(e["start_time"], e["title"]) for e in response.json()["events"]]


def on_google(app: EventsApp, user: User) -> list[tuple[str, str]]:
    app.push_all()
    listed = app.remote(user).list(calendarId=user.primary, singleEvents=True).execute()["items"]
    rows = [(e["start"]["dateTime"], e["summary"]) for e in listed if e["status"] != "cancelled"]
    return sorted(rows)


def everywhere(app: EventsApp, user: User, first: str, last: str) -> list[tuple[str, str]]:
    """The instances calsync shows, after checking that Google shows the same and that
    calsync still shows them after pulling Google's copy back."""
    here = shown(app, user, first, last)
    assert on_google(app, user) == here
    app.pull(user)
    assert shown(app, user, first, last) == here
    return here


def split(app: EventsApp, user: User, instance: str, body: dict[str, Any]) -> Any:
    response = app.put(user, instance, body, scope="following")
    assert response.status_code == 200, response.text
    return response.json()


FRIDAYS = (
    "2024-01-05T09:00:00",
    "2024-01-05T10:00:00",
    "Europe/Berlin",
    "RRULE:FREQ=WEEKLY;COUNT=3",
    "RDATE;TZID=Europe/Berlin:20240110T090000,20240401T090000",
)


def test_a_split_at_an_added_date_keeps_the_rule_on_its_weekday(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    created = series(app, alice, *FRIDAYS)
    app.push_all()

    split(app, alice, f"{created['id']}_20240110T080000Z", {"title": "Review v2"})

    expected = [
        ("2024-01-05T09:00:00+01:00", "Review"),
        ("2024-01-10T09:00:00+01:00", "Review v2"),
        ("2024-01-12T09:00:00+01:00", "Review v2"),
        ("2024-01-19T09:00:00+01:00", "Review v2"),
        ("2024-04-01T09:00:00+02:00", "Review v2"),
    ]
    assert everywhere(app, alice, "2024-01-01", "2024-04-30") == expected


def test_a_split_at_an_added_date_with_a_new_time_lists_it_once(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    created = series(app, alice, *FRIDAYS)
    app.push_all()

    split(
        app,
        alice,
        f"{created['id']}_20240110T080000Z",
        {"start_time": "2024-01-10T11:00:00", "end_time": "2024-01-10T12:00:00"},
    )

    expected = [
        ("2024-01-05T09:00:00+01:00", "Review"),
        ("2024-01-10T11:00:00+01:00", "Review"),
        ("2024-01-12T11:00:00+01:00", "Review"),
        ("2024-01-19T11:00:00+01:00", "Review"),
        ("2024-04-01T11:00:00+02:00", "Review"),
    ]
    assert everywhere(app, alice, "2024-01-01", "2024-04-30") == expected


def test_a_split_with_a_new_time_keeps_the_deleted_instances_deleted(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    created = series(
        app,
        alice,
        "2024-01-05T09:00:00",
        "2024-01-05T09:30:00",
        "Europe/Berlin",
        "RRULE:FREQ=DAILY;COUNT=6",
        "EXDATE;TZID=Europe/Berlin:20240108T090000",
    )
    app.push_all()

    split(
        app,
        alice,
        f"{created['id']}_20240107T080000Z",
        {"start_time": "2024-01-07T10:00:00", "end_time": "2024-01-07T10:30:00"},
    )

    expected = [
        ("2024-01-05T09:00:00+01:00", "Review"),
        ("2024-01-06T09:00:00+01:00", "Review"),
        ("2024-01-07T10:00:00+01:00", "Review"),
        ("2024-01-09T10:00:00+01:00", "Review"),
        ("2024-01-10T10:00:00+01:00", "Review"),
    ]
    assert everywhere(app, alice, "2024-01-01", "2024-01-31") == expected


def test_a_split_with_a_later_time_keeps_the_last_instance_of_an_until(
    any_app: EventsApp,
) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    created = series(
        app,
        alice,
        "2024-01-05T09:00:00",
        "2024-01-05T09:30:00",
        "Europe/Berlin",
        "RRULE:FREQ=DAILY;UNTIL=20240110T080000Z",  # exactly the last instance, as Google writes it
    )
    app.push_all()

    split(
        app,
        alice,
        f"{created['id']}_20240108T080000Z",
        {"start_time": "2024-01-08T10:00:00", "end_time": "2024-01-08T10:30:00"},
    )

    expected = [
        *((f"2024-01-0{d}T09:00:00+01:00", "Review") for d in (5, 6, 7)),
        ("2024-01-08T10:00:00+01:00", "Review"),
        ("2024-01-09T10:00:00+01:00", "Review"),
        ("2024-01-10T10:00:00+01:00", "Review"),
    ]
    assert everywhere(app, alice, "2024-01-01", "2024-01-31") == expected


@pytest.mark.parametrize(
    ("zone", "first", "gap_id", "offsets"),
    [
        ("America/New_York", "2024-03-08", "20240310T073000Z", ("-05:00", "-04:00")),
        ("Europe/Berlin", "2024-03-29", "20240331T013000Z", ("+01:00", "+02:00")),
        ("Australia/Sydney", "2024-10-04", "20241005T163000Z", ("+10:00", "+11:00")),
    ],
)
def test_a_title_split_in_a_dst_gap_keeps_the_later_times(
    any_app: EventsApp, zone: str, first: str, gap_id: str, offsets: tuple[str, str]
) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    created = series(
        app,
        alice,
        f"{first}T02:30:00",
        f"{first}T03:00:00",
        zone,
        "RRULE:FREQ=DAILY;COUNT=5",
    )
    app.push_all()
    days = [(date.fromisoformat(first) + timedelta(days=n)).isoformat() for n in range(5)]

    split(app, alice, f"{created['id']}_{gap_id}", {"title": "Review v2"})

    expected = [
        (f"{days[0]}T02:30:00{offsets[0]}", "Review"),
        (f"{days[1]}T02:30:00{offsets[0]}", "Review"),
        (f"{days[2]}T03:30:00{offsets[1]}", "Review v2"),  # the gap's instance starts late
        (f"{days[3]}T02:30:00{offsets[1]}", "Review v2"),
        (f"{days[4]}T02:30:00{offsets[1]}", "Review v2"),
    ]
    window = (date.fromisoformat(first) - timedelta(days=1)).isoformat(), "2024-12-31"
    assert everywhere(app, alice, *window) == expected


def test_a_split_to_all_day_is_refused_and_changes_nothing(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    created = series(app, alice, *FRIDAYS)
    before = shown(app, alice, "2024-01-01", "2024-04-30")

    response = app.put(
        alice,
        f"{created['id']}_20240112T080000Z",
        {"start_time": "2024-01-12", "end_time": "2024-01-13", "all_day": True},
        scope="following",
    )

    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "start_time"
    assert shown(app, alice, "2024-01-01", "2024-04-30") == before
    assert app.get(alice, created["id"])["recurrence"] == list(FRIDAYS[3:])
