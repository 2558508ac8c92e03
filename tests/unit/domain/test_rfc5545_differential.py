"""calsync's expansion agrees with an independent RFC 5545 implementation.

The oracle is recurring-ical-events with icalendar (`tests/rfc5545_oracle.py`); the
series are generated (`tests/rfc5545_rules.py`): every FREQ, the BY parts, COUNT and
UNTIL, RDATE and EXDATE, all-day and timed, in zones with DST in both hemispheres. This
is the bulk of the differential test (issue 17's acceptance); the API and a Google pull
are compared with the same oracle on fewer examples in
tests/integration/events/test_rfc5545_differential.py. The deliberate differences are
normalised in the oracle module (decision O1). Each divergence that is a bug is pinned
below by a strict xfail with a minimal series, so that the fix turns it into a pass.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

import icalendar
import recurring_ical_events
from hypothesis import HealthCheck, event, given, settings

from calsync.domain.errors import ValidationError
from calsync.domain.models import EventTime
from tests.rfc5545_oracle import (
    Series,
    Window,
    calsync_starts,
    normalised_for_oracle,
    oracle_starts,
    vcalendar,
)
from tests.rfc5545_rules import Case, cases


def _compare(case: Case) -> None:
    try:
        got = calsync_starts(case.series, case.window)
    except ValidationError as err:
        event(f"refused: {err.message.split(':')[0][:50]}")  # rules calsync does not take
        return
    want = oracle_starts(case.series, case.window)
    event("some instances" if want else "no instance in the window")
    assert got == want, (case, sorted(set(got) - set(want))[:5], sorted(set(want) - set(got))[:5])


SCALE = int(os.environ.get("CALSYNC_ORACLE_SCALE", "1"))
"""``CALSYNC_ORACLE_SCALE=N`` runs N times the examples, randomised (a search for new
divergences); by default the examples are derandomised: the same on every run (CI)."""
DERANDOMIZE = "CALSYNC_ORACLE_SCALE" not in os.environ


@settings(
    max_examples=350 * SCALE,
    deadline=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=cases())
def test_expansion_agrees_with_the_oracle(case: Case) -> None:
    # Given a generated series and window; when calsync and the oracle expand it,
    # then they list the same instances (calsync's answer is a list: no duplicates)
    _compare(case)


@settings(
    max_examples=100 * SCALE,
    deadline=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=cases(all_day=True, freqs=("YEARLY", "MONTHLY", "WEEKLY", "DAILY")))
def test_all_day_expansion_agrees_with_the_oracle(case: Case) -> None:
    _compare(case)


def timed(local: datetime, zone: str, minutes: int, *lines: str, label: str = "") -> Series:
    start = EventTime.at(local, zone)
    assert start.instant is not None
    end = EventTime.at(start.instant + timedelta(minutes=minutes), zone)
    return Series(start, end, lines, label=label)


def utc_window(first: date, last: date) -> Window:
    return Window(
        datetime(first.year, first.month, first.day, tzinfo=UTC),
        datetime(last.year, last.month, last.day, tzinfo=UTC),
    )


def test_the_oracle_normalisations_change_nothing_for_plain_series() -> None:
    # A start the rule yields, no RDATE in UTC, no EXDATE: the oracle is given the lines
    # as they are; 09:00 stays 09:00 in Berlin across the spring change on 31 March
    series = timed(datetime(2024, 3, 25, 9, 0), "Europe/Berlin", 30, "RRULE:FREQ=WEEKLY;COUNT=3")
    assert normalised_for_oracle(series) == list(series.recurrence)
    want = [
        datetime(2024, 3, 25, 8, 0, tzinfo=UTC),
        datetime(2024, 4, 1, 7, 0, tzinfo=UTC),
        datetime(2024, 4, 8, 7, 0, tzinfo=UTC),
    ]
    window = utc_window(date(2024, 3, 1), date(2024, 5, 1))
    assert oracle_starts(series, window) == want == calsync_starts(series, window)


def test_a_start_the_rule_does_not_yield_counts_toward_count() -> None:
    # Friday start, Mondays rule, COUNT=2: RFC 5545 (and calsync) list the Friday and one
    # Monday; recurring-ical-events alone would list two Mondays after it (normalised)
    series = timed(
        datetime(2024, 11, 1, 9, 0), "America/New_York", 30, "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=2"
    )
    window = utc_window(date(2024, 10, 1), date(2024, 12, 1))
    want = [datetime(2024, 11, 1, 13, 0, tzinfo=UTC), datetime(2024, 11, 4, 14, 0, tzinfo=UTC)]
    assert calsync_starts(series, window) == want == oracle_starts(series, window)


def test_an_instance_across_a_dst_change_lasts_its_exact_duration() -> None:
    # 02:30-03:30 daily in Sydney; on 6 April 2025 the clocks go back at 03:00, so the
    # instance at 02:30 AEDT (15:30Z) ends at 16:30Z after exactly an hour (calsync,
    # RFC 5545 3.8.5.3 "exact duration"), where recurring-ical-events ends it at 03:30
    # AEST (17:30Z). The comparison places the oracle's starts by the exact duration
    # (decision O1): a window from 16:30Z holds the instance for neither.
    series = timed(datetime(2025, 4, 5, 2, 30), "Australia/Sydney", 60, "RRULE:FREQ=DAILY;COUNT=3")
    instance = datetime(2025, 4, 5, 15, 30, tzinfo=UTC)
    raw = icalendar.Calendar.from_ical(vcalendar(series))
    (component,) = recurring_ical_events.of(raw).at(date(2025, 4, 6))
    assert component["DTSTART"].dt.astimezone(UTC) == instance
    assert component["DTEND"].dt.astimezone(UTC) == instance + timedelta(hours=2)
    before = Window(instance + timedelta(minutes=59), instance + timedelta(hours=3))
    after = Window(instance + timedelta(hours=1), instance + timedelta(hours=3))
    assert calsync_starts(series, before) == [instance] == oracle_starts(series, before)
    assert calsync_starts(series, after) == [] == oracle_starts(series, after)


def test_a_yearly_nth_weekday_on_a_month_day_occurs() -> None:
    # Given a YEARLY rule whose 35th Monday of the year is the 1st of a month (2025-09-01);
    # calsync read the nth as within a month and dropped the rule as never occurring
    series = timed(
        datetime(2023, 3, 12, 0, 0),
        "America/New_York",
        30,
        "RRULE:FREQ=YEARLY;BYDAY=35MO;BYMONTHDAY=1",
    )
    window = utc_window(date(2023, 3, 1), date(2030, 10, 1))
    want = oracle_starts(series, window)
    assert want == [datetime(2023, 3, 12, 5, 0, tzinfo=UTC), datetime(2025, 9, 1, 4, 0, tzinfo=UTC)]
    assert calsync_starts(series, window) == want


def test_issue_17_item_3_exdate_at_the_repeated_hour() -> None:
    series = timed(
        datetime(2024, 11, 1, 1, 30),
        "America/New_York",
        30,
        "RRULE:FREQ=DAILY;COUNT=5",
        "EXDATE:20241103T063000Z",
    )
    window = utc_window(date(2024, 10, 31), date(2024, 11, 7))
    want = oracle_starts(series, window)
    assert len(want) == 5
    assert calsync_starts(series, window) == want


def test_sub_daily_rule_across_a_gap_lists_each_instant_once() -> None:
    # 00:30, 01:30, 02:30 (no such time: 03:30 EDT), 03:30 EDT on 10 March 2024
    series = timed(
        datetime(2024, 3, 10, 0, 30), "America/New_York", 30, "RRULE:FREQ=HOURLY;COUNT=4"
    )
    window = utc_window(date(2024, 3, 10), date(2024, 3, 11))
    want = oracle_starts(series, window)
    assert len(want) == 3
    assert calsync_starts(series, window) == want


def test_all_day_series_with_byhour_lists_each_date_once() -> None:
    series = Series(
        EventTime.on(date(2024, 1, 1)),
        EventTime.on(date(2024, 1, 2)),
        ("RRULE:FREQ=DAILY;BYHOUR=9,10;COUNT=4",),
        timezone="Europe/Berlin",
    )
    window = utc_window(date(2024, 1, 1), date(2024, 1, 10))
    try:
        got = calsync_starts(series, window)
    except ValidationError:
        return  # refusing it (the API's 422) is a fix too
    assert got == sorted(set(got))
