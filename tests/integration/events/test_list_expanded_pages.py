"""Expanded lists page by page: small pages (which expand only the start of the window
first) walk exactly the items of one big page; an edited series lists as edited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

WINDOW = {"start_date": "2031-03-01", "end_date": "2031-04-30", "expand": "true"}
SERIES = [
    ("Daily Berlin", "2031-02-20T08:00:00", "Europe/Berlin", "RRULE:FREQ=DAILY"),
    ("Weekly NY", "2031-01-06T09:30:00", "America/New_York", "RRULE:FREQ=WEEKLY;BYDAY=MO,TH"),
    ("Count Tokyo", "2031-02-01T07:00:00", "Asia/Tokyo", "RRULE:FREQ=DAILY;COUNT=70"),
    ("Monthly", "2030-11-15T12:00:00", "UTC", "RRULE:FREQ=MONTHLY;BYMONTHDAY=15"),
]


def walk(app: EventsApp, user: User, limit: int, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(500):
        query = WINDOW | params | {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        response = app.client.get("/events", params=query, headers=user.headers)
        assert response.status_code == 200, response.text
        items += response.json()["events"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


def seed(app: EventsApp, user: User) -> dict[str, str]:
    ids = {}
    for title, start, zone, rule in SERIES:
        end = start[:11] + f"{int(start[11:13]) + 1:02d}" + start[13:]
        body = {"title": title, "start_time": start, "end_time": end, "timezone": zone}
        ids[title] = app.create(user, body | {"recurrence": [rule]})["id"]
    ids["All-day"] = app.create(
        user,
        {
            "title": "All-day",
            "start_time": "2031-03-02",
            "end_time": "2031-03-03",
            "timezone": "Pacific/Auckland",
            "recurrence": ["RRULE:FREQ=WEEKLY", "EXDATE;VALUE=DATE:20310316"],
        },
    )["id"]
    for day in (1, 9, 17, 25):
        app.create(
            user,
            {
                "title": f"single {day}",
                "start_time": f"2031-03-{day:02d}T10:00:00Z",
                "end_time": f"2031-03-{day:02d}T11:00:00Z",
                "category": "work" if day % 2 else None,
            },
        )
    return ids


def test_small_pages_walk_exactly_the_items_of_one_big_page(any_app: EventsApp) -> None:
    # Given series of several kinds, singles, a moved and a cancelled instance
    app = any_app
    alice = app.connect("alice@example.com")
    ids = seed(app, alice)
    whole = walk(app, alice, 200)
    daily = [i for i in whole if i["series_id"] == ids["Daily Berlin"]]
    moved = app.put(
        alice,
        daily[3]["id"],
        {"start_time": "2031-04-20T18:00:00+02:00", "end_time": "2031-04-20T19:00:00+02:00"},
    )
    assert moved.status_code == 200, moved.text
    cancelled = daily[5]["id"]
    assert app.client.delete(f"/events/{cancelled}", headers=alice.headers).status_code == 204
    # When the window is listed in one page and in pages of 1, 3 and 17
    whole = walk(app, alice, 200)
    # Then every paging gives the same items in the same order, sorted by start
    for limit in (1, 3, 17):
        assert [i["id"] for i in walk(app, alice, limit)] == [i["id"] for i in whole]
    starts = [datetime.fromisoformat(i["start_time"]) for i in whole if "T" in i["start_time"]]
    assert starts == sorted(starts)
    assert len(whole) > 120
    assert daily[3]["id"] in [i["id"] for i in whole]
    assert next(i for i in whole if i["id"] == daily[3]["id"])["start_time"].startswith(
        "2031-04-20T18:00"
    )
    assert cancelled not in [i["id"] for i in whole]
    # 07:00 Tokyo is 22:00Z the day before: 2031-03-02 to 2031-04-11 (the 70th)
    assert len([i for i in whole if i["series_id"] == ids["Count Tokyo"]]) == 41
    all_day = [i["start_time"] for i in whole if i["series_id"] == ids["All-day"]]
    assert "2031-03-16" not in all_day
    assert all_day[:2] == ["2031-03-02", "2031-03-09"]
    # And a category keeps its order across pages too
    work = walk(app, alice, 200, category="work")
    assert [i["id"] for i in walk(app, alice, 2, category="work")] == [i["id"] for i in work]
    assert {i["title"] for i in work} == {"single 1", "single 9", "single 17", "single 25"}


def test_an_edited_series_lists_as_edited(any_app: EventsApp) -> None:
    # Given a weekly series listed once (its rules parsed and cached)
    app = any_app
    alice = app.connect("alice@example.com")
    body = {
        "title": "Sync",
        "start_time": "2031-03-03T09:00:00",
        "end_time": "2031-03-03T09:30:00",
        "timezone": "Europe/Berlin",
        "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO"],
    }
    series = app.create(alice, body)
    before = walk(app, alice, 5)
    assert {datetime.fromisoformat(i["start_time"]).weekday() for i in before} == {0}
    # When its rule changes to Tuesdays and Thursdays
    changed = app.put(alice, series["id"], {"recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=TU,TH"]})
    assert changed.status_code == 200, changed.text
    # Then the list shows the new instances (after the start, always the first instance)
    after = walk(app, alice, 5)
    assert after[0]["start_time"] == "2031-03-03T09:00:00+01:00"
    assert {datetime.fromisoformat(i["start_time"]).weekday() for i in after[1:]} == {1, 3}
    assert {i["start_time"][11:19] for i in after} == {"09:00:00"}
    assert len(after) == 1 + 17  # Tue/Thu from 2031-03-04 to 2031-04-29
