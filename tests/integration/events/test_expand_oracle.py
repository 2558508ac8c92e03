"""``GET /events?expand=true`` agrees with python-dateutil on generated series.

Series are created through the API (rules, zones, EXDATEs), one instance is cancelled
through the API as an exception, and the instants the API lists in a random window are
compared with dateutil's rruleset evaluated on the aware start (wall-clock arithmetic in
the series' zone, as RFC 5545 wants). Only starts the rule itself yields are generated,
where RFC 5545 and dateutil agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrule, rruleset, rrulestr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from calsync.config import Settings
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, User, running

pytestmark = pytest.mark.integration

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@st.composite
def series(draw: st.DrawFn) -> tuple[str, datetime, timedelta, list[datetime], list[datetime]]:
    tz = ZoneInfo(draw(st.sampled_from(ZONES)))
    start = draw(
        st.datetimes(min_value=datetime(2030, 1, 1), max_value=datetime(2032, 12, 31))
    ).replace(second=0, microsecond=0)
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY"]))
    parts = [f"FREQ={freq}", f"INTERVAL={draw(st.integers(1, 4))}"]
    if freq == "WEEKLY" and draw(st.booleans()):
        days = draw(st.sets(st.sampled_from(DAYS), min_size=1, max_size=4))
        parts.append("BYDAY=" + ",".join(sorted(days | {DAYS[start.weekday()]})))
    end_kind = draw(st.sampled_from(["count", "until", "none"]))
    if end_kind == "count":
        parts.append(f"COUNT={draw(st.integers(1, 60))}")
    elif end_kind == "until":
        until = start + timedelta(days=draw(st.integers(0, 500)))
        parts.append(f"UNTIL={until.replace(tzinfo=tz).astimezone(UTC):%Y%m%dT%H%M%SZ}")
    rule = "RRULE:" + ";".join(parts)
    aware = start.replace(tzinfo=tz)
    assume(aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == start)  # not in a gap
    first = list(rrulestr(rule, dtstart=aware).xafter(aware, count=30, inc=True))
    assume(first and first[0] == aware)
    excluded = draw(st.lists(st.sampled_from(first), max_size=3, unique=True))
    cancelled = draw(st.lists(st.sampled_from(first), max_size=1))
    duration = timedelta(minutes=draw(st.integers(15, 60 * 30)))
    return rule, aware, duration, excluded, [c for c in cancelled if c not in excluded]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings.embedded(tmp_path_factory.mktemp("oracle"))


@pytest.fixture
def oracle_app(embedded: Settings, fake_google: FakeGoogle) -> Iterator[tuple[EventsApp, User]]:
    for app in running(embedded, fake_google):
        yield app, app.connect("oracle@example.com")


def listed(app: EventsApp, user: User, start: datetime, end: datetime) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    params = {
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "expand": "true",
        "limit": "200",
    }
    while True:
        page = app.client.get("/events", params=params, headers=user.headers).json()
        found += page["events"]
        if page["next_cursor"] is None:
            return found
        params["cursor"] = page["next_cursor"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=series(), offset_days=st.integers(-20, 300), length_days=st.integers(1, 90))
def test_expanded_listing_agrees_with_dateutil(
    oracle_app: tuple[EventsApp, User],
    data: tuple[str, datetime, timedelta, list[datetime], list[datetime]],
    offset_days: int,
    length_days: int,
) -> None:
    app, user = oracle_app
    rule, start, duration, excluded, cancelled = data
    zone_name = str(start.tzinfo)
    exdates = [f"EXDATE;TZID={zone_name}:{d:%Y%m%dT%H%M%S}" for d in excluded]
    created = app.create(
        user,
        {
            "title": "s",
            "start_time": start.isoformat(),
            "end_time": (start.astimezone(UTC) + duration).isoformat(),
            "timezone": zone_name,
            "recurrence": [rule, *exdates],
        },
    )
    try:
        for moment in cancelled:
            instance = f"{created['id']}_{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"
            answer = app.client.delete(f"/events/{instance}", headers=user.headers)
            assert answer.status_code == 204, answer.text
        window_start = (start + timedelta(days=offset_days)).astimezone(UTC)
        window_end = window_start + timedelta(days=length_days)

        got = [
            datetime.fromisoformat(e["start_time"]).astimezone(UTC)
            for e in listed(app, user, window_start, window_end)
        ]

        oracle = rruleset()
        parsed = rrulestr(rule, dtstart=start)
        assert isinstance(parsed, rrule)
        oracle.rrule(parsed)
        for moment in [*excluded, *cancelled]:
            oracle.exdate(moment)
        want = [
            s.astimezone(UTC)
            for s in oracle.between(window_start - duration - timedelta(days=2), window_end)
            if s.astimezone(UTC) < window_end and s.astimezone(UTC) + duration > window_start
        ]
        assert got == sorted(want)
    finally:
        app.client.delete(f"/events/{created['id']}", headers=user.headers)
