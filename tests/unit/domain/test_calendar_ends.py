"""The ends of the calendar and the zone names: clear refusals, never an overflow.

Recurrence dates (UNTIL, RDATE, EXDATE) near year 1 or 9999 are refused naming
``recurrence``; arithmetic on valid series with extreme durations saturates instead of
overflowing; only IANA zone names pass `zone`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import available_timezones

import pytest

from calsync.domain.errors import ValidationError
from calsync.domain.models import Event, EventTime
from calsync.domain.recurrence import (
    LATEST_RULE_DATE,
    expand,
    series_end,
    validate_recurrence,
)
from calsync.domain.timezones import iana_zone_names, is_valid_zone, zone

START = EventTime.at(datetime(2031, 3, 4, 10, tzinfo=UTC), "Pacific/Kiritimati")


@pytest.mark.parametrize(
    "name", ["localtime", "posixrules", "Factory", "right/UTC", "posix/Europe/Berlin"]
)
def test_zoneinfo_files_that_are_no_iana_zone_are_refused(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        zone(name)
    assert caught.value.field == "timezone"
    assert not is_valid_zone(name)


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "US/Eastern", "Etc/GMT+5"])
def test_iana_names_and_their_links_pass(name: str) -> None:
    assert zone(name).key == name


def test_the_iana_names_are_read_once_from_the_zoneinfo_database() -> None:
    names = iana_zone_names()
    assert names is iana_zone_names()
    assert names <= available_timezones()
    assert "Europe/Berlin" in names
    assert "localtime" not in names


@pytest.mark.parametrize(
    "line",
    [
        "RRULE:FREQ=SECONDLY;UNTIL=99991231T235959Z",
        "RRULE:FREQ=DAILY;UNTIL=99990101",
        "RRULE:FREQ=DAILY;UNTIL=00011231T000000",
        "RDATE:99991231T120000Z",
        "EXDATE;VALUE=DATE:00010101",
        "EXDATE;TZID=Pacific/Kiritimati:99991231T235959",
    ],
)
def test_a_recurrence_date_at_the_ends_of_the_calendar_is_refused(line: str) -> None:
    lines = [line] if line.startswith("RRULE") else ["RRULE:FREQ=DAILY", line]
    with pytest.raises(ValidationError) as caught:
        validate_recurrence(lines, START)
    assert caught.value.field == "recurrence"
    assert "supported range" in caught.value.message


def test_the_refusal_of_a_far_until_says_how_to_write_a_series_without_end() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_recurrence(["RRULE:FREQ=DAILY;UNTIL=99991231T235959Z"], START)
    assert "leave UNTIL out" in caught.value.message


@pytest.mark.parametrize("zone_name", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"])
def test_the_latest_supported_until_expands_in_the_farthest_zones(zone_name: str) -> None:
    # Given a secondly series that ends on the last supported day, in a +14 or -11 zone
    start = datetime(9998, 12, 31, 10, tzinfo=UTC)
    master = Event(
        title="x",
        start=EventTime.at(start, zone_name),
        end=EventTime.at(start + timedelta(hours=1), zone_name),
        recurrence=(f"RRULE:FREQ=SECONDLY;UNTIL={LATEST_RULE_DATE:%Y%m%d}T235959Z",),
        provider_event_id="m",
    )
    # When it is validated, bounded and expanded over its first minute
    validate_recurrence(master.recurrence, master.start)
    end = series_end(master)
    found = expand(master, start, start + timedelta(minutes=1))
    # Then nothing overflows: 60 instances, and the bound covers the last one
    assert len(found) == 60
    assert end is not None
    assert end >= datetime(9999, 1, 1, tzinfo=UTC)


def test_a_series_lasting_millennia_is_bounded_and_expanded_without_overflow() -> None:
    # Given yearly instances that each last until the year 9990
    first = datetime(2031, 3, 4, 10, tzinfo=UTC)
    master = Event(
        title="x",
        start=EventTime.at(first, "UTC"),
        end=EventTime.at(datetime(9990, 1, 1, tzinfo=UTC), "UTC"),
        recurrence=("RRULE:FREQ=YEARLY;UNTIL=99981231T000000Z",),
        provider_event_id="m",
    )
    # When its end bound is computed and a window in 2040 expanded
    end = series_end(master)
    found = expand(master, datetime(2040, 1, 1, tzinfo=UTC), datetime(2040, 1, 2, tzinfo=UTC))
    # Then the bound saturates at the end of the calendar and every started instance shows
    assert end is not None
    assert end.year == 9999
    assert [e.start.instant for e in found] == [
        datetime(year, 3, 4, 10, tzinfo=UTC) for year in range(2031, 2040)
    ]
