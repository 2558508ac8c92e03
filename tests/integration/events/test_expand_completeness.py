"""Issue 17 items 1, 2, 3, 5 (several RRULEs) and 6: what an expanded list must hold,
through the API on both databases and for series pulled from Google (the emulator,
through the real Google client)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dateutil import rrule

from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration


def walk(app: EventsApp, user: User, query: dict[str, str], limit: int = 200) -> list[Any]:
    """Every item of an expanded list, following `next_cursor` to the end."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        params = query | {"expand": "true", "limit": str(limit)}
        if cursor:
            params["cursor"] = cursor
        response = app.client.get("/events", params=params, headers=user.headers)
        assert response.status_code == 200, response.text
        items += response.json()["events"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


def instants(items: list[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromisoformat(i["start_time"]).astimezone(UTC) for i in items]


def google_starts(app: EventsApp, user: User, series_id: str, **window: str) -> list[datetime]:
    found = app.remote(user).instances(calendarId=user.primary, eventId=series_id, **window)
    return [
        datetime.fromisoformat(i["start"]["dateTime"]).astimezone(UTC)
        for i in found.execute()["items"]
    ]


# Item 1 ---------------------------------------------------------------------------------

BUSY_RULE = "RRULE:FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;BYMINUTE=0,20,40"
BUSY_WINDOW = {"start_date": "1997-09-01T13:00:00Z", "end_date": "1998-10-06T13:00:00Z"}


def test_every_instance_of_a_window_is_listed_page_by_page(any_app: EventsApp) -> None:
    """A series with more instances in a window than the per-series bound (1,000) is
    listed whole: the cursor goes on where the page ended (was: 1,000 and no cursor)."""
    app = any_app
    alice = app.connect("alice@example.com")
    series = app.create(
        alice,
        {
            "title": "every 20 minutes",
            "start_time": "1997-09-02T09:00:00",
            "end_time": "1997-09-02T09:10:00",
            "timezone": "America/New_York",
            "recurrence": [BUSY_RULE],
        },
    )
    app.create(alice, {"title": "single", "start_time": "1998-03-01T12:00:00Z",
                       "end_time": "1998-03-01T13:00:00Z"})  # fmt: skip
    listed = walk(app, alice, BUSY_WINDOW)
    ours = [i for i in listed if i["series_id"] == series["id"]]
    assert len(ours) == 9576
    assert len({i["id"] for i in listed}) == len(listed) == 9577
    assert instants(listed) == sorted(instants(listed))
    # the oracle: dateutil on New York wall time
    from zoneinfo import ZoneInfo

    new_york = ZoneInfo("America/New_York")
    expected = [
        wall.replace(tzinfo=new_york).astimezone(UTC)
        for wall in rrule.rrulestr(
            BUSY_RULE.removeprefix("RRULE:"), dtstart=datetime(1997, 9, 2, 9, 0)
        ).between(datetime(1997, 9, 1, 8, 0), datetime(1998, 10, 6, 9, 0), inc=True)
    ]
    expected = [
        at
        for at in expected
        if datetime(1997, 9, 1, 13, tzinfo=UTC) - timedelta(minutes=10)
        < at
        < datetime(1998, 10, 6, 13, tzinfo=UTC)
    ]
    assert instants(ours) == expected


# Item 2 ---------------------------------------------------------------------------------

BERLIN_WEEKLY = {
    "title": "weekly",
    "start_time": "2024-01-01T09:00:00",
    "end_time": "2024-01-01T10:00:00",
    "timezone": "Europe/Berlin",
    "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
}
MARCH = {"start_date": "2024-02-25T00:00:00Z", "end_date": "2024-03-05T00:00:00Z"}


def test_an_instance_moved_past_the_series_end_is_listed(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    series = app.create(alice, BERLIN_WEEKLY)
    moved = app.put(
        alice,
        f"{series['id']}_20240108T080000Z",
        {"start_time": "2024-03-01T09:00:00+01:00", "end_time": "2024-03-01T10:00:00+01:00"},
    )
    assert moved.status_code == 200, moved.text
    listed = walk(app, alice, MARCH)
    assert [(i["id"], i["start_time"]) for i in listed] == [
        (f"{series['id']}_20240108T080000Z", "2024-03-01T09:00:00+01:00")
    ]
    # and the window of its original start no longer holds it
    january = walk(app, alice, {"start_date": "2024-01-01", "end_date": "2024-01-31"})
    assert [i["start_time"][:10] for i in january] == ["2024-01-01", "2024-01-15"]
    app.push_all()
    on_google = google_starts(app, alice, series["google_event_id"])
    assert datetime(2024, 3, 1, 8, tzinfo=UTC) in on_google


def test_an_instance_moved_before_the_series_start_is_listed(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    series = app.create(alice, BERLIN_WEEKLY)
    first = f"{series['id']}_20240101T080000Z"
    moved = app.put(
        alice,
        first,
        {"start_time": "2023-12-20T09:00:00+01:00", "end_time": "2023-12-20T10:00:00+01:00"},
    )
    assert moved.status_code == 200, moved.text
    listed = walk(app, alice, {"start_date": "2023-12-01", "end_date": "2023-12-31"})
    assert [i["id"] for i in listed] == [first]


def test_an_instance_moved_past_the_series_end_on_google_is_listed(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    google = app.remote(alice)
    series = google.insert(
        calendarId=alice.primary,
        body={
            "summary": "weekly",
            "start": {"dateTime": "2024-01-01T09:00:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2024-01-01T10:00:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
        },
    ).execute()
    google.patch(
        calendarId=alice.primary,
        eventId=f"{series['id']}_20240108T080000Z",
        body={
            "start": {"dateTime": "2024-03-01T09:00:00+01:00"},
            "end": {"dateTime": "2024-03-01T10:00:00+01:00"},
        },
    ).execute()
    app.pull(alice)
    on_google = google.list(
        calendarId=alice.primary,
        singleEvents=True,
        timeMin="2024-02-25T00:00:00Z",
        timeMax="2024-03-05T00:00:00Z",
    ).execute()["items"]
    assert [i["id"] for i in on_google] == [f"{series['id']}_20240108T080000Z"]
    listed = walk(app, alice, MARCH)
    assert [i["google_event_id"] for i in listed] == [f"{series['id']}_20240108T080000Z"]
    assert instants(listed) == [datetime(2024, 3, 1, 8, tzinfo=UTC)]


# Item 3 ---------------------------------------------------------------------------------

FALL_BACK = {
    "title": "night",
    "start_time": "2024-11-01T01:30:00",
    "end_time": "2024-11-01T02:00:00",
    "timezone": "America/New_York",
    "recurrence": ["RRULE:FREQ=DAILY;COUNT=5", "EXDATE:20241103T063000Z"],
}
NOVEMBER = {"start_date": "2024-10-30", "end_date": "2024-11-10"}
FIVE = [
    datetime(2024, 11, 1, 5, 30, tzinfo=UTC),
    datetime(2024, 11, 2, 5, 30, tzinfo=UTC),
    datetime(2024, 11, 3, 5, 30, tzinfo=UTC),  # the first 01:30; the EXDATE is the second
    datetime(2024, 11, 4, 6, 30, tzinfo=UTC),
    datetime(2024, 11, 5, 6, 30, tzinfo=UTC),
]


def test_an_exdate_at_the_second_fall_back_time_removes_no_instance(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    series = app.create(alice, FALL_BACK)
    assert instants(walk(app, alice, NOVEMBER)) == FIVE
    app.push_all()
    assert google_starts(app, alice, series["google_event_id"]) == FIVE


def test_a_pulled_exdate_at_the_second_fall_back_time_removes_no_instance(
    any_app: EventsApp,
) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    created = (
        app.remote(alice)
        .insert(
            calendarId=alice.primary,
            body={
                "summary": "night",
                "start": {"dateTime": "2024-11-01T01:30:00", "timeZone": "America/New_York"},
                "end": {"dateTime": "2024-11-01T02:00:00", "timeZone": "America/New_York"},
                "recurrence": FALL_BACK["recurrence"],
            },
        )
        .execute()
    )
    assert google_starts(app, alice, created["id"]) == FIVE
    app.pull(alice)
    assert instants(walk(app, alice, NOVEMBER)) == FIVE


# Items 5 and 6 --------------------------------------------------------------------------

TWO_RULES = [
    "RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20310331T235959Z",
    "RRULE:FREQ=MONTHLY;BYMONTHDAY=15;COUNT=2",
]
TWO_RULES_STARTS = [
    datetime(2031, 3, 3, 9, tzinfo=UTC),
    datetime(2031, 3, 10, 9, tzinfo=UTC),
    datetime(2031, 3, 15, 9, tzinfo=UTC),
    datetime(2031, 3, 17, 9, tzinfo=UTC),
    datetime(2031, 3, 24, 9, tzinfo=UTC),
    datetime(2031, 3, 31, 9, tzinfo=UTC),
]
SPRING = {"start_date": "2031-03-01", "end_date": "2031-04-30"}


def test_a_series_with_two_rrules_is_accepted_and_expanded(any_app: EventsApp) -> None:
    """COUNT counts the start as the first instance of each rule (decision 19): the
    monthly rule adds only 03-15."""
    app = any_app
    alice = app.connect("alice@example.com")
    series = app.create(
        alice,
        {"title": "two rules", "start_time": "2031-03-03T09:00:00Z",
         "end_time": "2031-03-03T10:00:00Z", "recurrence": TWO_RULES},
    )  # fmt: skip
    assert series["recurrence"] == TWO_RULES
    assert series["recurrence_error"] is None
    assert instants(walk(app, alice, SPRING)) == TWO_RULES_STARTS
    app.push_all()
    assert app.google_event(alice, series["google_event_id"])["recurrence"] == TWO_RULES


def test_a_series_with_two_rrules_pulled_from_google_is_expanded(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    created = (
        app.remote(alice)
        .insert(
            calendarId=alice.primary,
            body={
                "summary": "two rules",
                "start": {"dateTime": "2031-03-03T09:00:00Z", "timeZone": "UTC"},
                "end": {"dateTime": "2031-03-03T10:00:00Z", "timeZone": "UTC"},
                "recurrence": [
                    "RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20310331T235959Z",
                    "RRULE:FREQ=MONTHLY;BYMONTHDAY=15;UNTIL=20310430T235959Z",
                ],
            },
        )
        .execute()
    )
    on_google = google_starts(app, alice, created["id"])
    assert datetime(2031, 3, 15, 9, tzinfo=UTC) in on_google
    assert datetime(2031, 3, 17, 9, tzinfo=UTC) in on_google
    app.pull(alice)
    listed = walk(app, alice, SPRING)
    assert instants(listed) == on_google
    assert {i["recurrence_error"] for i in listed} == {None}


@pytest.mark.parametrize(
    "rule",
    [
        "RRULE:FREQ=DAILY;UNTIL=20310101T000000Z",  # UNTIL before the start
        "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",  # no such day
    ],
)
def test_a_pulled_rule_that_never_occurs_lists_its_start(any_app: EventsApp, rule: str) -> None:
    """RFC 5545 3.8.5.3: the start is always the first instance. Google keeps such a
    series and shows its start; so do the emulator and calsync (the API still refuses
    to create one: a client's mistake)."""
    app = any_app
    alice = app.connect("alice@example.com")
    created = (
        app.remote(alice)
        .insert(
            calendarId=alice.primary,
            body={
                "summary": "once",
                "start": {"dateTime": "2031-03-03T09:00:00Z", "timeZone": "UTC"},
                "end": {"dateTime": "2031-03-03T10:00:00Z", "timeZone": "UTC"},
                "recurrence": [rule],
            },
        )
        .execute()
    )
    start = datetime(2031, 3, 3, 9, tzinfo=UTC)
    assert google_starts(app, alice, created["id"]) == [start]
    app.pull(alice)
    listed = walk(app, alice, SPRING)
    assert instants(listed) == [start]
    assert listed[0]["id"].endswith("_20310303T090000Z")
    assert listed[0]["recurrence_error"] is None
    refused = app.client.post(
        "/events",
        headers=alice.headers,
        json={"title": "once", "start_time": "2031-03-03T09:00:00Z",
              "end_time": "2031-03-03T10:00:00Z", "recurrence": [rule]},
    )  # fmt: skip
    assert refused.status_code == 422, refused.text
    assert "never occurs" in refused.text
