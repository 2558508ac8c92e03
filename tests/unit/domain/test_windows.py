"""The listing rule for all-day events (`calsync.domain.windows`) and the days of a
``GET /events`` window (`parse_list_query`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calsync.domain.windows import DayRange, all_day_in_window, days_touched, timed_in_window
from calsync.web.errors import APIError
from calsync.web.list_query import parse_list_query

ZONES = [
    "UTC",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Santiago",  # DST changes at midnight: some days begin at 01:00
]
ONE = timedelta(days=1)


def test_the_rule_compares_dates_end_exclusive() -> None:
    window = DayRange(date(2025, 2, 28), date(2025, 3, 1))  # Feb 28 alone
    assert all_day_in_window(date(2025, 2, 28), date(2025, 3, 1), window)
    assert all_day_in_window(date(2025, 2, 26), date(2025, 3, 4), window)
    assert not all_day_in_window(date(2025, 2, 27), date(2025, 2, 28), window)
    assert not all_day_in_window(date(2025, 3, 1), date(2025, 3, 2), window)


def test_a_day_range_is_never_empty() -> None:
    with pytest.raises(ValueError, match="empty"):
        DayRange(date(2025, 3, 1), date(2025, 3, 1))


def test_a_timed_event_of_no_length_lies_in_the_window_or_not() -> None:
    at = datetime(2025, 2, 28, 10, tzinfo=UTC)
    assert timed_in_window(at, at, at, at + ONE)
    assert not timed_in_window(at + ONE, at + ONE, at, at + ONE)
    assert timed_in_window(at, at + ONE, at - ONE, at + timedelta(seconds=1))
    assert not timed_in_window(at - ONE, at, at, at + ONE)


@given(
    zone_name=st.sampled_from(ZONES),
    start=st.datetimes(datetime(2024, 1, 1), datetime(2026, 12, 31), timezones=st.just(UTC)),
    length=st.timedeltas(timedelta(seconds=1), timedelta(days=5)),
)
def test_the_days_touched_are_the_local_dates_of_the_instants(
    zone_name: str, start: datetime, length: timedelta
) -> None:
    # The oracle: the local dates of the first and of the last instant of the window
    local = ZoneInfo(zone_name)
    first = start.astimezone(local).date()
    last = (start + length - timedelta(microseconds=1)).astimezone(local).date()
    assert days_touched(start, start + length, zone_name) == DayRange(first, last + ONE)


@given(zone_name=st.sampled_from(ZONES), first=st.dates(date(2024, 1, 1), date(2026, 12, 31)))
def test_a_window_from_one_local_midnight_to_another_touches_exactly_its_days(
    zone_name: str, first: date
) -> None:
    # As the API reads YYYY-MM-DD bounds: midnight (or where a DST gap moves it) local
    local = ZoneInfo(zone_name)
    start = datetime.combine(first, datetime.min.time(), tzinfo=local)
    end = datetime.combine(first + 2 * ONE, datetime.min.time(), tzinfo=local)
    assert days_touched(start, end, zone_name) == DayRange(first, first + 2 * ONE)


@pytest.mark.parametrize(
    ("params", "zone_name", "days"),
    [
        # dates name their days, end_date inclusive, whatever the zone
        ({"start_date": "2025-02-28", "end_date": "2025-02-28"}, "Pacific/Kiritimati", (28, 29)),
        ({"start_date": "2025-02-28", "end_date": "2025-03-01"}, "Pacific/Pago_Pago", (28, 30)),
        # date-times: the days of the user's zone they touch (22:00 to 02:00 in Berlin)
        (
            {"start_date": "2025-02-28T21:00:00Z", "end_date": "2025-03-01T01:00:00Z"},
            "Europe/Berlin",
            (28, 30),
        ),
        # the same instants for a user in New York: 16:00 to 20:00 on Feb 28
        (
            {"start_date": "2025-02-28T21:00:00Z", "end_date": "2025-03-01T01:00:00Z"},
            "America/New_York",
            (28, 29),
        ),
        # an end at a local midnight leaves that day out
        (
            {"start_date": "2025-02-28T12:00:00+01:00", "end_date": "2025-03-01T00:00:00+01:00"},
            "Europe/Berlin",
            (28, 29),
        ),
        # mixed: a date and a date-time
        ({"start_date": "2025-02-28", "end_date": "2025-02-28T18:00:00Z"}, "UTC", (28, 29)),
    ],
)
def test_the_query_names_the_days_the_user_sees(
    params: dict[str, str], zone_name: str, days: tuple[int, int]
) -> None:
    query = parse_list_query(params, user_zone=zone_name)
    feb = date(2025, 1, 31)  # day n of February is feb + n days
    assert query.days == DayRange(feb + days[0] * ONE, feb + days[1] * ONE)


@pytest.mark.parametrize("zone_name", ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_the_days_are_cut_to_the_listed_range(zone_name: str) -> None:
    query = parse_list_query(
        {"start_date": "0001-01-01", "end_date": "9999-12-31"}, user_zone=zone_name
    )
    assert query.days == DayRange(date(1, 1, 8), date(9999, 12, 25))


def test_a_day_past_the_listed_range_is_a_422_naming_it() -> None:
    # Dec 25 of 9999 begins before the listed range ends in UTC+14, but is not listed
    with pytest.raises(APIError) as caught:
        parse_list_query(
            {"start_date": "9999-12-25", "end_date": "9999-12-25"}, user_zone="Pacific/Kiritimati"
        )
    assert [d["field"] for d in caught.value.details] == ["start_date"]
    with pytest.raises(APIError) as caught:
        parse_list_query(
            {"start_date": "0001-01-07", "end_date": "0001-01-07"}, user_zone="Pacific/Pago_Pago"
        )
    assert [d["field"] for d in caught.value.details] == ["end_date"]
