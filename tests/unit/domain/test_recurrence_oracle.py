"""Expansion agrees with python-dateutil's rruleset on generated series.

The oracle is dateutil evaluated on an aware start in the series' zone (dateutil does
wall-clock arithmetic, as RFC 5545 wants), with the EXDATEs given to the rruleset. Only
starts that the rule itself yields are generated: for those RFC 5545 and dateutil agree
(for the others RFC 5545 adds the start and dateutil does not; see test_recurrence.py).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rruleset, rrulestr
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from calsync.domain.models import Event, EventTime
from calsync.domain.recurrence import expand

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@st.composite
def series(draw: st.DrawFn) -> tuple[str, datetime, timedelta, list[datetime]]:
    tz = ZoneInfo(draw(st.sampled_from(ZONES)))
    start = draw(
        st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2026, 12, 31))
    ).replace(second=0, microsecond=0)
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY"]))
    parts = [f"FREQ={freq}", f"INTERVAL={draw(st.integers(1, 4))}"]
    if freq == "WEEKLY" and draw(st.booleans()):
        days = draw(st.sets(st.sampled_from(DAYS), min_size=1, max_size=4))
        parts.append("BYDAY=" + ",".join(sorted(days | {DAYS[start.weekday()]})))
    if freq == "MONTHLY" and draw(st.booleans()):
        parts.append(f"BYMONTHDAY={start.day}")
    end_kind = draw(st.sampled_from(["count", "until", "none"]))
    if end_kind == "count":
        parts.append(f"COUNT={draw(st.integers(1, 60))}")
    elif end_kind == "until":
        until = start + timedelta(days=draw(st.integers(0, 700)), hours=draw(st.integers(0, 23)))
        parts.append(f"UNTIL={until.replace(tzinfo=tz).astimezone(UTC):%Y%m%dT%H%M%SZ}")
    rule = "RRULE:" + ";".join(parts)
    aware_start = start.replace(tzinfo=tz)
    assume(aware_start.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == start)  # not in a gap
    first = list(rrulestr(rule, dtstart=aware_start).xafter(aware_start, count=40, inc=True))
    assume(first and first[0] == aware_start)
    excluded = draw(st.lists(st.sampled_from(first), max_size=4, unique=True))
    duration = timedelta(minutes=draw(st.integers(15, 60 * 30)))
    return rule, aware_start, duration, excluded


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    data=series(),
    offset_days=st.integers(-30, 400),
    length_days=st.integers(1, 120),
)
def test_expansion_agrees_with_dateutil(
    data: tuple[str, datetime, timedelta, list[datetime]], offset_days: int, length_days: int
) -> None:
    # Given a series with EXDATEs and a random window
    rule, start, duration, excluded = data
    zone_name = str(start.tzinfo)
    exdates = [f"EXDATE;TZID={zone_name}:{d:%Y%m%dT%H%M%S}" for d in excluded]
    master = Event(
        start=EventTime.at(start, zone_name),
        end=EventTime.at(start.astimezone(UTC) + duration, zone_name),  # exact, not wall-clock
        recurrence=(rule, *exdates),
        provider_event_id="master",
    )
    window_start = (start + timedelta(days=offset_days)).astimezone(UTC)
    window_end = window_start + timedelta(days=length_days)

    # When calsync expands it
    got = expand(master, window_start, window_end, max_instances=10_000)

    # Then it yields the instants dateutil yields that overlap the window
    oracle = rruleset()
    oracle.rrule(rrulestr(rule, dtstart=start, forceset=False))  # type: ignore[arg-type]
    for day in excluded:
        oracle.exdate(day)
    expected = []
    for occurrence in oracle:
        begin = occurrence.astimezone(UTC)
        if begin >= window_end:
            break
        if begin + duration > window_start:
            expected.append(begin)
    event(f"instances in window: {'none' if not expected else 'some'}")
    assert [e.start.instant for e in got] == expected
    assert all(e.start.timezone == zone_name for e in got)
    assert all(e.duration == duration for e in got)
    # built unchecked (Event.trusted), each instance is what the checked construction makes
    assert all(e == dataclasses.replace(e) for e in got)
