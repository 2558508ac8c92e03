"""The emulator expands every rule with bounded work, counted in dateutil's lines.

Google accepts any valid RFC 5545 rule and documents nothing about rules too costly to
expand; the emulator accepts them too, and lists the starts it finds within the work
limit, so a hostile series never keeps it (or `calsync dev`, which runs it in-process)
busy for minutes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from calsync.emulator import recurrence
from calsync.emulator.errors import GoogleApiError
from tests.dateutil_work import DateutilWork
from tests.unit.domain.test_rule_plans import CAP, HOSTILE

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("rule", HOSTILE)
@pytest.mark.parametrize("all_day", [False, True])
def test_a_hostile_series_is_listed_within_the_work_limit(rule: str, all_day: bool) -> None:
    # Given a series Google would hold with a rule built to cost
    start = datetime(2025, 3, 5) if all_day else datetime(2025, 3, 5, 9, 30, tzinfo=BERLIN)
    try:
        series = recurrence.build_series([f"RRULE:{rule}"], start=start, all_day=all_day)
    except GoogleApiError as refused:
        status = refused.status
    else:
        status = 200
    if status != 200:
        assert status == 400  # it does not parse: refused as Google refuses
        return
    # When it is listed over a year, without end, and asked whether a time is a start
    for after, before in ((start, start + timedelta(days=365)), (start, None)):
        with DateutilWork(cap=CAP) as work:
            recurrence.occurrences(series, after=after, before=before)
        # Then each answer costs at most what the work limit stands for
        assert work.lines <= CAP
    with DateutilWork(cap=CAP):
        recurrence.has_occurrence(series, start + timedelta(days=3000))


def test_a_cheap_series_is_listed_as_dateutil_lists_it() -> None:
    start = datetime(2025, 3, 5, 9, 30, tzinfo=BERLIN)
    series = recurrence.build_series(
        ["RRULE:FREQ=MONTHLY;BYDAY=-1FR;BYMONTH=3,6;COUNT=5", "EXDATE:20250627T073000Z"],
        start=start,
        all_day=False,
    )
    # the start, not on the rule, is the first instance and the first COUNT counts
    # (RFC 5545 3.8.5.3; as calsync counts, decision 19)
    assert recurrence.occurrences(series) == [
        datetime(2025, 3, 5, 9, 30, tzinfo=BERLIN),
        datetime(2025, 3, 28, 9, 30, tzinfo=BERLIN),
        datetime(2026, 3, 27, 9, 30, tzinfo=BERLIN),
        datetime(2026, 6, 26, 9, 30, tzinfo=BERLIN),
    ]
