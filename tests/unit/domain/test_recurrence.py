"""Expansion of recurring series: DST, exceptions, all-day series, bounds, ids."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from calsync.domain.errors import ValidationError
from calsync.domain.models import Event, EventStatus, EventTime
from calsync.domain.recurrence import (
    expand,
    instance_id,
    occurrences,
    recurrence_problem,
    series_end,
    validate_recurrence,
)

BERLIN = "Europe/Berlin"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def timed_series(
    *lines: str, start: datetime, minutes: int = 60, zone: str = BERLIN, master_id: str = "m"
) -> Event:
    return Event(
        title="series",
        start=EventTime.at(start, zone),
        end=EventTime.at(start + timedelta(minutes=minutes), zone),
        recurrence=lines,
        provider_event_id=master_id,
    )


def local_starts(events: tuple[Event, ...]) -> list[str]:
    return [e.start.local().strftime("%Y-%m-%d %H:%M %Z") for e in events]


def test_weekly_wall_clock_time_is_kept_across_both_dst_changes() -> None:
    # Given 09:00 Berlin every Monday from winter time
    master = timed_series("RRULE:FREQ=WEEKLY;BYDAY=MO", start=datetime(2024, 3, 18, 9))
    # When expanded over the March and October changes
    spring = expand(master, utc(2024, 3, 18), utc(2024, 4, 2))
    autumn = expand(master, utc(2024, 10, 21), utc(2024, 11, 5))
    # Then it is 09:00 local each time, 08:00Z in winter and 07:00Z in summer
    assert local_starts(spring) == [
        "2024-03-18 09:00 CET",
        "2024-03-25 09:00 CET",
        "2024-04-01 09:00 CEST",
    ]
    assert [e.start.instant for e in autumn] == [
        utc(2024, 10, 21, 7),
        utc(2024, 10, 28, 8),
        utc(2024, 11, 4, 8),
    ]


def test_daily_start_in_the_spring_gap_moves_forward_on_that_day_only() -> None:
    # Given 02:30 Berlin daily: on 2024-03-31 02:30 does not exist
    master = timed_series(
        "RRULE:FREQ=DAILY;COUNT=3", start=datetime(2024, 3, 30, 2, 30), minutes=30
    )
    # When expanded
    got = expand(master, utc(2024, 3, 29), utc(2024, 4, 3))
    # Then the gap day's instance starts at 03:30 CEST (01:30Z), as RFC 5545 says
    assert [e.start.instant for e in got] == [
        utc(2024, 3, 30, 1, 30),
        utc(2024, 3, 31, 1, 30),
        utc(2024, 4, 1, 0, 30),
    ]


def test_daily_start_in_the_repeated_autumn_hour_takes_the_first_one() -> None:
    master = timed_series(
        "RRULE:FREQ=DAILY;COUNT=3", start=datetime(2024, 10, 26, 2, 30), minutes=30
    )
    got = expand(master, utc(2024, 10, 25), utc(2024, 10, 30))
    # 02:30 CEST (00:30Z) on the change day, not 02:30 CET (01:30Z)
    assert [e.start.instant for e in got] == [
        utc(2024, 10, 26, 0, 30),
        utc(2024, 10, 27, 0, 30),
        utc(2024, 10, 28, 1, 30),
    ]


def test_exdate_in_the_repeated_hour_removes_that_instance() -> None:
    master = timed_series(
        "RRULE:FREQ=DAILY;COUNT=3",
        "EXDATE;TZID=Europe/Berlin:20241027T023000",
        start=datetime(2024, 10, 26, 2, 30),
        minutes=30,
    )
    got = expand(master, utc(2024, 10, 25), utc(2024, 10, 30))
    assert [e.start.instant for e in got] == [utc(2024, 10, 26, 0, 30), utc(2024, 10, 28, 1, 30)]


def test_lord_howe_half_hour_dst_keeps_wall_clock() -> None:
    master = timed_series(
        "RRULE:FREQ=WEEKLY", start=datetime(2024, 3, 31, 10), zone="Australia/Lord_Howe"
    )
    got = expand(master, utc(2024, 3, 30), utc(2024, 4, 15))
    assert [e.start.local().hour for e in got] == [10, 10, 10]
    # +11:00 until 2024-04-07 02:00 local, +10:30 after
    assert [e.start.instant for e in got] == [
        utc(2024, 3, 30, 23),
        utc(2024, 4, 6, 23, 30),
        utc(2024, 4, 13, 23, 30),
    ]


def test_exdate_forms_google_sends_remove_instances() -> None:
    master = timed_series(
        "RRULE:FREQ=DAILY;COUNT=6",
        "EXDATE;TZID=Europe/Berlin:20240102T090000",
        "EXDATE:20240103T080000Z",
        "EXDATE;VALUE=DATE:20240104",
        start=datetime(2024, 1, 1, 9),
    )
    got = expand(master, utc(2024, 1, 1), utc(2024, 1, 10))
    assert [e.start.local().day for e in got] == [1, 5, 6]


def test_rdate_adds_instances_and_the_start_is_always_the_first() -> None:
    # Given a start on a Wednesday that the rule (Mondays) does not yield
    master = timed_series(
        "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=3",
        "RDATE;TZID=Europe/Berlin:20240112T150000",
        start=datetime(2024, 1, 3, 9),
    )
    got = expand(master, utc(2024, 1, 1), utc(2024, 2, 1))
    # Then the start counts as the first of COUNT=3, and the RDATE comes on top
    assert local_starts(got) == [
        "2024-01-03 09:00 CET",
        "2024-01-08 09:00 CET",
        "2024-01-12 15:00 CET",
        "2024-01-15 09:00 CET",
    ]


def test_until_in_utc_is_inclusive() -> None:
    master = timed_series("RRULE:FREQ=DAILY;UNTIL=20240103T080000Z", start=datetime(2024, 1, 1, 9))
    got = expand(master, utc(2024, 1, 1), utc(2024, 2, 1))
    assert [e.start.local().day for e in got] == [1, 2, 3]


def test_instances_carry_google_ids_and_link_to_the_master() -> None:
    master = timed_series(
        "RRULE:FREQ=DAILY;COUNT=2", start=datetime(2024, 7, 1, 9), master_id="abc123"
    )
    first, second = expand(master, utc(2024, 7, 1), utc(2024, 7, 3))
    assert first.provider_event_id == "abc123_20240701T070000Z"
    assert second.provider_event_id == "abc123_20240702T070000Z"
    assert second.recurring_event_id == "abc123"
    assert second.original_start == second.start
    assert second.recurrence == ()
    assert second.end.local() == datetime(2024, 7, 2, 10, tzinfo=ZoneInfo(BERLIN))


def test_instance_id_for_all_day_uses_the_date() -> None:
    assert instance_id("x1", EventTime.on(date(2024, 2, 29))) == "x1_20240229"


def test_moved_exception_replaces_its_instance_and_shows_at_its_new_time() -> None:
    # Given a daily series and an exception moving 2024-01-02 to 2024-01-20 (outside the window)
    master = timed_series("RRULE:FREQ=DAILY;COUNT=5", start=datetime(2024, 1, 1, 9))
    moved = dataclasses.replace(
        master,
        recurrence=(),
        title="moved",
        start=EventTime.at(datetime(2024, 1, 20, 14), BERLIN),
        end=EventTime.at(datetime(2024, 1, 20, 15), BERLIN),
        recurring_event_id="m",
        original_start=EventTime.at(datetime(2024, 1, 2, 9), BERLIN),
        provider_event_id="m_20240102T080000Z",
    )
    # When expanding the first days only, the original instance is gone
    early = expand(master, utc(2024, 1, 1), utc(2024, 1, 4), [moved])
    assert [e.start.local().day for e in early] == [1, 3]
    # And when expanding around the new time only, the exception is there
    late = expand(master, utc(2024, 1, 19), utc(2024, 1, 22), [moved])
    assert [(e.title, e.start.local().hour) for e in late] == [("moved", 14)]


def test_cancelled_exception_removes_its_instance() -> None:
    master = timed_series("RRULE:FREQ=DAILY;COUNT=3", start=datetime(2024, 1, 1, 9))
    cancelled = dataclasses.replace(
        master,
        recurrence=(),
        status=EventStatus.CANCELLED,
        recurring_event_id="m",
        original_start=EventTime.at(datetime(2024, 1, 2, 9), BERLIN),
    )
    got = expand(master, utc(2024, 1, 1), utc(2024, 1, 5), [cancelled])
    assert [e.start.local().day for e in got] == [1, 3]


def test_exceptions_of_another_series_are_ignored() -> None:
    master = timed_series("RRULE:FREQ=DAILY;COUNT=3", start=datetime(2024, 1, 1, 9))
    other = dataclasses.replace(
        master,
        recurrence=(),
        status=EventStatus.CANCELLED,
        recurring_event_id="other",
        original_start=EventTime.at(datetime(2024, 1, 2, 9), BERLIN),
    )
    assert len(expand(master, utc(2024, 1, 1), utc(2024, 1, 5), [other])) == 3


def test_all_day_series_with_date_exdate_and_until() -> None:
    master = Event(
        start=EventTime.on(date(2024, 1, 31)),
        end=EventTime.on(date(2024, 2, 1)),
        timezone=BERLIN,
        recurrence=(
            "RRULE:FREQ=MONTHLY;BYMONTHDAY=-1;UNTIL=20240630",
            "EXDATE;VALUE=DATE:20240430",
        ),
        provider_event_id="ad",
    )
    got = expand(master, utc(2023, 12, 1), utc(2025, 1, 1))
    assert [e.provider_event_id for e in got] == [
        "ad_20240131",
        "ad_20240229",
        "ad_20240331",
        "ad_20240531",
        "ad_20240630",
    ]
    assert all(
        e.end.day == e.start.day + timedelta(days=1) for e in got if e.start.day and e.end.day
    )


def test_all_day_instance_overlaps_by_the_calendar_zone() -> None:
    # A day in Berlin starts at 23:00Z the evening before
    master = Event(
        start=EventTime.on(date(2024, 1, 1)),
        end=EventTime.on(date(2024, 1, 2)),
        timezone=BERLIN,
        recurrence=("RRULE:FREQ=DAILY",),
        provider_event_id="d",
    )
    got = expand(master, utc(2024, 1, 4, 23, 30), utc(2024, 1, 5))
    assert [e.start.day for e in got] == [date(2024, 1, 5)]


def test_secondly_rule_without_end_is_bounded_and_quick() -> None:
    master = timed_series("RRULE:FREQ=SECONDLY", start=datetime(2000, 1, 1), minutes=0, zone="UTC")
    master = dataclasses.replace(master, end=master.start.shifted(timedelta(seconds=1)))
    began = time.perf_counter()
    got = expand(master, utc(2030, 6, 1), utc(2031, 6, 1), max_instances=500)
    elapsed = time.perf_counter() - began
    assert len(got) == 500
    assert got[0].start.instant == utc(2030, 6, 1)
    assert got[-1].start.instant == utc(2030, 6, 1, 0, 8, 19)
    assert elapsed < 5  # a guard against iterating 30 years of seconds, not a benchmark


def test_minutely_rule_with_interval_keeps_its_phase_far_from_the_start() -> None:
    master = timed_series(
        "RRULE:FREQ=MINUTELY;INTERVAL=7", start=datetime(2001, 1, 1, 0, 3), minutes=1, zone="UTC"
    )
    got = expand(master, utc(2024, 5, 5), utc(2024, 5, 5, 1), max_instances=100)
    assert got
    steps = {(e.start.start_in("UTC") - utc(2001, 1, 1, 0, 3)) % timedelta(minutes=7) for e in got}
    assert steps == {timedelta(0)}


def test_max_instances_caps_the_result_at_the_earliest() -> None:
    master = timed_series("RRULE:FREQ=DAILY", start=datetime(2024, 1, 1, 9))
    got = expand(master, utc(2024, 1, 1), utc(2025, 1, 1), max_instances=3)
    assert [e.start.local().day for e in got] == [1, 2, 3]


def test_single_and_cancelled_masters() -> None:
    single = timed_series(start=datetime(2024, 1, 1, 9))
    assert expand(single, utc(2024, 1, 1), utc(2024, 1, 2)) == (single,)
    assert expand(single, utc(2024, 1, 2), utc(2024, 1, 3)) == ()
    cancelled = dataclasses.replace(
        timed_series("RRULE:FREQ=DAILY", start=datetime(2024, 1, 1, 9)),
        status=EventStatus.CANCELLED,
    )
    assert expand(cancelled, utc(2024, 1, 1), utc(2024, 1, 5)) == ()


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ((datetime(2024, 1, 1), utc(2024, 1, 2)), "aware"),
        ((utc(2024, 1, 2), utc(2024, 1, 1)), "end after"),
    ],
)
def test_bad_windows_are_refused(window: tuple[datetime, datetime], message: str) -> None:
    master = timed_series("RRULE:FREQ=DAILY", start=datetime(2024, 1, 1, 9))
    with pytest.raises(ValueError, match=message):
        expand(master, *window)


def test_unnamed_master_cannot_be_expanded() -> None:
    master = dataclasses.replace(
        timed_series("RRULE:FREQ=DAILY", start=datetime(2024, 1, 1, 9)), provider_event_id=None
    )
    with pytest.raises(ValueError, match="master id"):
        expand(master, utc(2024, 1, 1), utc(2024, 1, 2))
    assert len(expand(master, utc(2024, 1, 1), utc(2024, 1, 2), master_id="local-1")) == 1


START = EventTime.at(datetime(2024, 1, 1, 9), BERLIN)  # a Monday


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("RRULE:FREQ=DAILY;INTERVAL=0", "INTERVAL"),
        ("RRULE:FREQ=DAILY;COUNT=5001", "COUNT must be at most 5000"),
        ("RRULE:FREQ=DAILY;COUNT=0", "COUNT"),
        ("RRULE:FREQ=DAILY;COUNT=3;UNTIL=20240301T000000Z", "COUNT and UNTIL"),
        ("RRULE:FREQ=FORTNIGHTLY", "FREQ"),
        ("RRULE:INTERVAL=2", "FREQ"),
        ("RRULE:FREQ=DAILY;BYHOUR=24", "BYHOUR value 24"),
        ("RRULE:FREQ=WEEKLY;BYDAY=XX", "BYDAY"),
        ("RRULE:FREQ=WEEKLY;BYDAY=1MO", "needs FREQ=MONTHLY or YEARLY"),
        ("RRULE:FREQ=MONTHLY;BYDAY=6MO", "out of range"),
        ("RRULE:FREQ=DAILY;FOO=1", "unknown rule part"),
        ("RRULE:FREQ=DAILY;FREQ=WEEKLY", "twice"),
        ("RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "never occurs"),
        ("RRULE:FREQ=MONTHLY;BYMONTH=4,6;BYMONTHDAY=31", "never occurs"),
        ("RRULE:FREQ=MONTHLY;BYDAY=1MO;BYMONTHDAY=20", "never occurs"),
        ("RRULE:FREQ=DAILY;INTERVAL=14;BYDAY=TU", "never lands on BYDAY"),
        ("RRULE:FREQ=HOURLY;INTERVAL=168;BYDAY=WE", "never lands on BYDAY"),
        ("RRULE:FREQ=DAILY;UNTIL=20231231T000000Z", "never occurs after the start"),
        ("RRULE:FREQ=DAILY;BYSETPOS=1", "BYSETPOS is not supported"),
        ("RRULE:FREQ=MONTHLY;BYDAY=MO;BYSETPOS=40", "BYSETPOS is out of range"),
        ("RRULE:FREQ=HOURLY;BYYEARDAY=1", "BYYEARDAY"),
        ("RRULE:FREQ=DAILY;UNTIL=20240230", "not a real date"),
        ("RRULE:FREQ=DAILY;COUNT=²", "COUNT"),
        ("DTSTART:20240101T090000Z", "DTSTART is not allowed"),
        ("EXDATE;TZID=Mars/Olympus:20240102T090000", "not an IANA time zone"),
        ("EXDATE;VALUE=DATE:20240102T090000", "has a time"),
        ("RDATE;VALUE=PERIOD:20240102T090000Z/PT1H", "not supported"),
        ("EXDATE", "malformed"),
        ("VEVENT:FOO", "unknown recurrence line"),
    ],
)
def test_invalid_recurrence_is_rejected_with_the_reason(line: str, complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint) as caught:
        validate_recurrence([line], START)
    assert caught.value.field == "recurrence"


def test_two_rrules_are_accepted_and_expanded_together() -> None:
    """Google takes several RRULE lines (its `recurrence` is a list of RRULE, EXRULE,
    RDATE and EXDATE lines): the instances are their union."""
    lines = ("RRULE:FREQ=WEEKLY;BYDAY=MO", "RRULE:FREQ=MONTHLY;BYMONTHDAY=15")
    validate_recurrence(lines, EventTime.at(datetime(2024, 1, 1, 9), BERLIN))
    master = timed_series(*lines, start=datetime(2024, 1, 1, 9))
    assert [e.start.local().date() for e in expand(master, utc(2024, 1, 1), utc(2024, 2, 1))] == [
        date(2024, 1, d) for d in (1, 8, 15, 22, 29)
    ]


@pytest.mark.parametrize(
    "line",
    [
        "RRULE:FREQ=DAILY;UNTIL=20231231T000000Z",
        "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "RRULE:FREQ=DAILY;INTERVAL=14;BYDAY=TU",
        "RRULE:FREQ=MINUTELY;INTERVAL=120;BYMINUTE=30",
    ],
)
def test_a_rule_that_never_occurs_expands_to_its_start(line: str) -> None:
    """Refused for writes (`validate_recurrence`), but a series Google holds with such
    a rule has its start as its one instance (RFC 5545 3.8.5.3), as at Google."""
    master = timed_series(line, "RDATE:20240110T080000Z", start=datetime(2024, 1, 1, 9))
    found = expand(master, utc(2023, 12, 1), utc(2024, 3, 1))
    assert [e.start.instant for e in found] == [utc(2024, 1, 1, 8), utc(2024, 1, 10, 8)]
    assert series_end(master) == utc(2024, 1, 10, 9)
    assert recurrence_problem(master) is None


def test_an_exdate_of_the_second_fall_back_time_keeps_the_first() -> None:
    """01:30 happens twice in New York on 2024-11-03: 05:30Z is the series' instance,
    an EXDATE of 06:30Z names none and removes nothing (it removed 05:30Z)."""
    master = timed_series(
        "RRULE:FREQ=DAILY;COUNT=5",
        "EXDATE:20241103T063000Z",
        start=datetime(2024, 11, 1, 1, 30),
        minutes=30,
        zone="America/New_York",
    )
    found = expand(master, utc(2024, 10, 30), utc(2024, 11, 10))
    assert utc(2024, 11, 3, 5, 30) in [e.start.instant for e in found]
    assert len(found) == 5
    first = dataclasses.replace(master, recurrence=("RRULE:FREQ=DAILY;COUNT=5",
                                                    "EXDATE:20241103T053000Z"))  # fmt: skip
    assert utc(2024, 11, 3, 5, 30) not in [
        e.start.instant for e in expand(first, utc(2024, 10, 30), utc(2024, 11, 10))
    ]


def test_count_cap_is_configurable() -> None:
    validate_recurrence(["RRULE:FREQ=DAILY;COUNT=20"], START, max_count=20)
    with pytest.raises(ValidationError, match="at most 19"):
        validate_recurrence(["RRULE:FREQ=DAILY;COUNT=20"], START, max_count=19)


@pytest.mark.parametrize(
    "lines",
    [
        ["RRULE:FREQ=DAILY"],
        ["RRULE:FREQ=WEEKLY;UNTIL=20240701T170000Z;BYDAY=MO,WE;WKST=SU"],
        ["RRULE:FREQ=MONTHLY;BYDAY=-1FR", "EXDATE;TZID=Europe/Berlin:20240126T090000"],
        ["RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"],
        ["RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"],
        ["RRULE:FREQ=MINUTELY;INTERVAL=15;BYHOUR=9,10"],
        ["RDATE;VALUE=DATE:20240105,20240106", "EXDATE:20240108T080000Z"],
        ["rrule:freq=daily;count=3"],
        ["RRULE:FREQ=DAILY;X-NAME=1"],
    ],
)
def test_valid_recurrence_is_accepted(lines: list[str]) -> None:
    validate_recurrence(lines, START)


def test_impossible_rule_is_rejected_quickly() -> None:
    began = time.perf_counter()
    for line in [
        "RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",
        "RRULE:FREQ=SECONDLY;BYSETPOS=2",
        "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;INTERVAL=4;UNTIL=20230101",
    ]:
        with pytest.raises(ValidationError):
            validate_recurrence([line], START)
    assert time.perf_counter() - began < 2


@pytest.mark.parametrize(
    ("line", "start", "zone", "span"),
    [
        ("RRULE:FREQ=SECONDLY;INTERVAL=7", datetime(2024, 10, 27, 1, 0), BERLIN, 2),
        ("RRULE:FREQ=MINUTELY;BYSECOND=0,30", datetime(2024, 11, 3, 0, 0), "America/New_York", 8),
        (
            "RRULE:FREQ=DAILY;BYHOUR=1,2,3;BYMINUTE=0,30",
            datetime(2024, 11, 1, 0, 0),
            "America/New_York",
            24 * 60,
        ),
    ],
)
def test_pages_from_not_before_are_the_whole_expansion_in_order(
    line: str, start: datetime, zone: str, span: int
) -> None:
    """A list pages through a series with `not_before` (its cursor's instant): the pages
    of at most 40 instances, each from the last one shown, are the whole expansion,
    across a change of offset (whose wall-clock slack must not use up the bound)."""
    master = timed_series(line, start=start, minutes=5, zone=zone)
    low = master.start.instant
    assert low is not None
    window = (low - timedelta(hours=1), low + timedelta(hours=span))
    whole = [
        value.instant
        for value in occurrences(
            master.recurrence, master.start, master.end, *window,
            series_id="m", timezone=zone, max_instances=10_000,
        ).starts
    ]  # fmt: skip
    assert len(whole) > 200
    paged: list[datetime] = []
    after = None
    for _ in range(len(whole)):
        found = occurrences(
            master.recurrence, master.start, master.end, *window,
            series_id="m", timezone=zone, max_instances=40, not_before=after,
        )  # fmt: skip
        shown = [v.instant for v in found.starts if v.instant is not None]
        fresh = [at for at in shown if after is None or at > after]
        if not fresh:
            break
        paged += fresh
        after = fresh[-1]
    assert paged == whole
