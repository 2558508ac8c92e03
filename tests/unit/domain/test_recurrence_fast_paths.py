"""The fast paths of `instance_id` and `plus` give what their plain definitions give."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from calsync.domain.models import EventTime
from calsync.domain.recurrence import instance_id
from calsync.domain.series_starts import plus

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), ZONES)
def test_an_instant_id_is_strftime_of_its_fields(moment: datetime, zone: timezone) -> None:
    at = moment.replace(tzinfo=zone)
    value = EventTime.trusted(None, at, "UTC")
    assert instance_id("series", value) == f"series_{at:%Y%m%dT%H%M%SZ}"


@given(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
def test_a_day_id_is_strftime_of_the_day(day: date) -> None:
    assert instance_id("series", EventTime.on(day)) == f"series_{day:%Y%m%d}"


def saturated(moment: datetime, delta: timedelta) -> datetime:
    """`plus` as defined: held a week inside the ends of the calendar."""
    low = datetime(1, 1, 8, tzinfo=moment.tzinfo)
    high = datetime(9999, 12, 25, tzinfo=moment.tzinfo)
    if delta >= timedelta(0):
        return high if moment >= high or delta >= high - moment else moment + delta
    return low if moment <= low or -delta >= moment - low else moment + delta


@given(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    ZONES,
    st.timedeltas(min_value=timedelta(days=-800), max_value=timedelta(days=800)),
)
def test_plus_holds_bounds_only_near_the_ends(
    moment: datetime, zone: timezone, delta: timedelta
) -> None:
    at = moment.replace(tzinfo=zone)
    assert plus(at, delta) == saturated(at, delta)
