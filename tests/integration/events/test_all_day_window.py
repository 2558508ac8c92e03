"""Where all-day events fall in a ``GET /events`` window: one rule for singles and series.

An all-day event dated D is listed when D is one of the window's days as the caller sees
them (the dates asked for, or the days of the caller's zone that date-times touch),
whatever the zone of its series, expanded or not (`calsync.domain.windows`). Each test
runs on both databases with users in zones far apart (UTC-11, UTC+14, UTC).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from calsync.domain.models import Event, EventTime
from calsync.events.listing import ListQuery
from calsync.store.event_filters import EventFilter, Kind, filter_shape, filter_values
from calsync.store.event_queries import _keys_statement, list_keys
from calsync.store.events import event_columns
from calsync.store.tables import Event as EventRow
from calsync.store.tables import User as UserRow
from calsync.web.list_query import parse_list_query
from tests.integration.events.conftest import EventsApp, User

pytestmark = pytest.mark.integration

# (user's zone, zone of the user's all-day series): the series' zone is the far side of
# the date line from the user, where midnight-to-midnight in either zone misses the day.
ZONES = [
    ("Pacific/Pago_Pago", "Pacific/Kiritimati"),
    ("Pacific/Kiritimati", "Pacific/Pago_Pago"),
    ("UTC", "Pacific/Kiritimati"),
]
ONE = timedelta(days=1)


def listed(app: EventsApp, user: User, **params: str) -> list[dict[str, Any]]:
    """Every item of the user's list for `params`, following the cursor."""
    found: list[dict[str, Any]] = []
    query = {"limit": "2"} | params  # small pages: the cursor is followed too
    while True:
        answer = app.client.get("/events", params=query, headers=user.headers)
        assert answer.status_code == 200, answer.text
        found += answer.json()["events"]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return found
        query["cursor"] = cursor


def user_in(app: EventsApp, email: str, zone_name: str) -> User:
    user = app.connect(email)
    with app.services.sessions.begin() as session:
        session.execute(sa.update(UserRow).where(UserRow.id == user.id).values(timezone=zone_name))
    return user


def test_a_single_and_a_series_instance_of_the_same_day_are_both_listed(
    any_app: EventsApp,
) -> None:
    # Given users in three zones, each with all-day singles on Feb 27, 28 and Mar 1 2025
    # and a daily all-day series over the same three days in a zone across the date line
    app = any_app
    users = []
    for n, (user_zone, series_zone) in enumerate(ZONES):
        user = user_in(app, f"user{n}@example.com", user_zone)
        singles = {
            day: app.create(user, {"title": "single", "start_time": day, "end_time": end})["id"]
            for day, end in [
                ("2025-02-27", "2025-02-28"),
                ("2025-02-28", "2025-03-01"),
                ("2025-03-01", "2025-03-02"),
            ]
        }
        series = app.create(
            user,
            {
                "title": "series",
                "start_time": "2025-02-27",
                "end_time": "2025-02-28",
                "timezone": series_zone,
                "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
            },
        )
        users.append((user, user_zone, singles["2025-02-28"], series["id"]))
    for user, user_zone, single_id, series_id in users:
        # The day as dates, and as date-times (10:00 to 14:00 in the user's zone)
        local = ZoneInfo(user_zone)
        windows = [
            {"start_date": "2025-02-28", "end_date": "2025-02-28"},
            {
                "start_date": datetime(2025, 2, 28, 10, tzinfo=local).isoformat(),
                "end_date": datetime(2025, 2, 28, 14, tzinfo=local).isoformat(),
            },
        ]
        for window in windows:
            # When the user lists the day, expanded and not
            expanded = listed(app, user, expand="true", **window)
            unexpanded = listed(app, user, **window)
            # Then the single of Feb 28 and the series' instance of Feb 28 are listed,
            # and nothing of the days around it (nor anything of the other users)
            assert {(e["id"], e["start_time"]) for e in expanded} == {
                (single_id, "2025-02-28"),
                (f"{series_id}_20250228", "2025-02-28"),
            }, (user_zone, window)
            assert {e["id"] for e in unexpanded} == {single_id, series_id}, (user_zone, window)


def test_a_window_of_one_day_lists_neither_neighbour(any_app: EventsApp) -> None:
    # Given a user in UTC with an all-day single on Feb 28 and a daily series of Feb 28
    # in Pacific/Kiritimati (UTC+14, where Feb 28 begins on Feb 27 at 10:00 UTC)
    app = any_app
    user = user_in(app, "utc@example.com", "UTC")
    other = user_in(app, "tokyo@example.com", "Asia/Tokyo")
    for owner in (user, other):
        app.create(owner, {"title": "single", "start_time": "2025-02-28", "end_time": "2025-03-01"})
        app.create(
            owner,
            {
                "title": "series",
                "start_time": "2025-02-28",
                "end_time": "2025-03-01",
                "timezone": "Pacific/Kiritimati",
                "recurrence": ["RRULE:FREQ=DAILY;COUNT=1"],
            },
        )
    # When the UTC user lists the last twelve hours of Feb 27
    window = {"start_date": "2025-02-27T12:00:00Z", "end_date": "2025-02-28T00:00:00Z"}
    # Then neither is listed: the window touches Feb 27 only, as the user sees it
    assert listed(app, user, expand="true", **window) == []
    assert listed(app, user, **window) == []
    # And the Tokyo user, for whom the same instants touch Feb 27 and 28, gets both
    assert sorted(e["title"] for e in listed(app, other, expand="true", **window)) == [
        "series",
        "single",
    ]


def test_a_date_window_compares_dates_whatever_the_zone(any_app: EventsApp) -> None:
    # Given users in UTC-11 and UTC+14, each with a three-day all-day single from Mar 1
    app = any_app
    users = [user_in(app, f"u{n}@example.com", z) for n, (z, _) in enumerate(ZONES[:2])]
    for user in users:
        app.create(user, {"title": "trip", "start_time": "2025-03-01", "end_time": "2025-03-04"})
    for user in users:
        # Then it is in the windows of Feb 28 to Mar 1, and of Mar 3, not of Feb 28 or Mar 4
        for first, last, found in [
            ("2025-02-28", "2025-03-01", 1),
            ("2025-03-03", "2025-03-03", 1),
            ("2025-02-28", "2025-02-28", 0),
            ("2025-03-04", "2025-03-04", 0),
        ]:
            for expand in ("true", "false"):
                items = listed(app, user, start_date=first, end_date=last, expand=expand)
                assert len(items) == found, (first, last, expand)


def test_the_singles_of_a_window_are_read_from_their_index_alone(app: EventsApp) -> None:
    # Given three PostgreSQL users with 2,000 singles each, every fifth one all-day
    users = [user_in(app, f"p{n}@example.com", "Pacific/Kiritimati") for n in range(3)]
    start = datetime(2029, 10, 1, tzinfo=UTC)
    rows = []
    for user in users:
        for i in range(2000):
            at = start + timedelta(hours=7 * i)
            if i % 5 == 0:
                when = {"start": EventTime.on(at.date()), "end": EventTime.on(at.date() + ONE)}
            else:
                end = at + timedelta(minutes=30)
                when = {
                    "start": EventTime(instant=at, timezone="UTC"),
                    "end": EventTime(instant=end, timezone="UTC"),
                }
            columns = event_columns(Event(title=f"{i}", **when))
            rows.append(
                {"id": uuid.uuid4(), "user_id": user.id, "calendar_id": user.calendar_id}
                | {"sync_state": "synced", **columns}
            )
    with app.services.sessions.begin() as session:
        session.execute(sa.insert(EventRow), rows)
    with app.services.engine.connect().execution_options(
        isolation_level="AUTOCOMMIT"
    ) as connection:
        connection.execute(sa.text("VACUUM ANALYZE events"))
    # When the keys of a month's singles, with all-day days, are planned and read
    query = parse_list_query(
        {"start_date": "2031-03-01", "end_date": "2031-03-31"}, user_zone="Pacific/Kiritimati"
    )
    spec = EventFilter(
        user_id=users[1].id, start=query.start, end=query.end, days=query.days, kind=Kind.SINGLE
    )
    statement = _keys_statement(filter_shape(spec), 51)
    with app.services.engine.connect() as connection:
        compiled = statement.compile(connection)
        parameters = compiled.construct_params(filter_values(spec))
        plan = "\n".join(
            row[0]
            for row in connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + compiled.string, parameters
            )
        )
    with app.services.sessions() as session:
        keys = list_keys(session, spec, limit=51)
    # Then PostgreSQL scans the singles' index by start and reads no row to filter
    assert "Index Only Scan using ix_events_singles_by_start" in plan, plan
    assert "Heap Fetches: 0" in plan, plan
    # And the keys are the user's first 51 singles of March as Kiritimati sees it
    assert query.start is not None
    first = [r for r in rows if r["user_id"] == users[1].id and falls_in(r, query)]
    first.sort(key=lambda r: (r["start_time"], r["id"]))
    assert keys == [(r["start_time"], r["id"]) for r in first[:51]]


def falls_in(row: dict[str, Any], query: ListQuery) -> bool:
    """The oracle of one stored single: its dates against March, or its instants."""
    if row["all_day"]:
        return date(2031, 3, 1) <= row["start_time"].date() <= date(2031, 3, 31)
    assert query.start is not None
    assert query.end is not None
    return bool(row["start_time"] < query.end and row["end_time"] > query.start)


def test_a_zone_change_moves_the_days_of_a_date_time_window_at_once(any_app: EventsApp) -> None:
    # Given a user in UTC with a daily all-day series, whose expanded hour was listed
    # (on PostgreSQL the series' items are then memoised for that window)
    app = any_app
    user = user_in(app, "alice@example.com", "UTC")
    other = user_in(app, "bob@example.com", "UTC")
    series = app.create(
        user,
        {
            "title": "daily",
            "start_time": "2031-03-01",
            "end_time": "2031-03-02",
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=5"],
        },
    )
    hour = {"start_date": "2031-03-02T12:00:00Z", "end_date": "2031-03-02T13:00:00Z"}
    first = listed(app, user, expand="true", **hour)
    assert [e["id"] for e in first] == [f"{series['id']}_20310302"]
    # When her zone becomes UTC+14, where that hour is on March 3
    with app.services.sessions.begin() as session:
        session.execute(
            sa.update(UserRow).where(UserRow.id == user.id).values(timezone="Pacific/Kiritimati")
        )
    # Then the same hour lists the instance of March 3, and the other user still none
    again = listed(app, user, expand="true", **hour)
    assert [e["id"] for e in again] == [f"{series['id']}_20310303"]
    assert listed(app, other, expand="true", **hour) == []
