"""A window of a series lists what the whole series lists there, for rules whose instances
depend on their whole period (BYSETPOS).

A rule without COUNT is evaluated from a begin near the window (`Plan.shifted`) instead
of from its start. dateutil's first period is the one its start lies in, cut at the
start, and BYSETPOS picks among the days of the period: a WEEKLY rule begun inside a
week picked among the rest of that week (`FREQ=WEEKLY;BYDAY=MO,WE;BYSETPOS=1` from a
Wednesday listed that Wednesday instead of the Monday before it). dateutil evaluated
from the series' start is the oracle, for calsync's expansion (`expand`), the plan
itself, and the emulator's expansion.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import takewhile

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from calsync.domain.errors import ValidationError
from calsync.domain.models import Event, EventTime
from calsync.domain.recurrence import expand, validate_recurrence
from calsync.domain.rfc5545 import parse_rule
from calsync.domain.rule_plans import WorkBudget, plan
from calsync.emulator.recurrence import build_series, occurrences
from tests.unit.domain.test_rule_plans import direct

DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
LENGTH = timedelta(minutes=30)


def master(rule: str, start: datetime) -> Event:
    return Event(
        start=EventTime.at(start, "UTC"),
        end=EventTime.at(start + LENGTH, "UTC"),
        recurrence=(f"RRULE:{rule}",),
        provider_event_id="m",
    )


def expanded(rule: str, start: datetime, low: datetime, high: datetime) -> list[datetime]:
    """The starts `expand` lists for the window `[low, high)` (naive UTC)."""
    found = expand(master(rule, start), low.replace(tzinfo=UTC), high.replace(tzinfo=UTC))
    return [e.start.start_in("UTC").replace(tzinfo=None) for e in found]


def emulated(rule: str, start: datetime, low: datetime, high: datetime) -> list[datetime]:
    """The starts the emulator lists from `low` (inclusive) to `high` (naive UTC)."""
    series = build_series([f"RRULE:{rule}"], start=start.replace(tzinfo=UTC), all_day=False)
    found = occurrences(series, after=low.replace(tzinfo=UTC), before=high.replace(tzinfo=UTC))
    return [s.replace(tzinfo=None) for s in found]


def oracle(rule: str, start: datetime, low: datetime, high: datetime) -> list[datetime]:
    """dateutil's starts from the series' start, and the start itself (always the first
    instance), from `low` (inclusive) to `high`."""
    starts = set(direct(parse_rule(rule), start).between(low, high, inc=True)) | {start}
    return sorted(s for s in starts if low <= s < high)


def test_a_weekly_setpos_window_lists_the_monday_not_the_start_s_weekday() -> None:
    # Given a series on Mondays and Wednesdays, taking the first of each week, that starts
    # on a Wednesday (its first week, cut at the start, holds only that Wednesday)
    rule = "FREQ=WEEKLY;BYDAY=MO,WE;BYSETPOS=1"
    start = datetime(2020, 1, 1)
    # When a window from the next Wednesday is expanded
    low, high = datetime(2020, 1, 8), datetime(2020, 1, 22)
    # Then its instances are the Mondays, as from the start (and as dateutil says)
    assert oracle(rule, start, low, high) == [datetime(2020, 1, 13), datetime(2020, 1, 20)]
    assert emulated(rule, start, low, high) == [datetime(2020, 1, 13), datetime(2020, 1, 20)]
    shape = plan(parse_rule(rule), start)
    candidates = shape.candidates(shape.shifted(low), None, WorkBudget())
    assert [c for c in takewhile(lambda c: c < high, candidates) if c >= low] == [
        datetime(2020, 1, 13),
        datetime(2020, 1, 20),
    ]


def test_a_weekly_setpos_window_of_a_timed_series_lists_the_second_day_of_each_week() -> None:
    # Given the second of Monday, Wednesday and Friday each week, from a Wednesday at 09:00
    rule = "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYSETPOS=2"
    start = datetime(2020, 1, 1, 9)
    # When a window from Friday 10 January is expanded (the Wednesday before it is the
    # second of its week; the Friday would be the second of the week cut there)
    low, high = datetime(2020, 1, 10), datetime(2020, 1, 24)
    # Then it lists the Wednesdays after it
    wednesdays = [datetime(2020, 1, 15, 9), datetime(2020, 1, 22, 9)]
    assert oracle(rule, start, low, high) == wednesdays
    assert expanded(rule, start, low, high) == wednesdays
    assert emulated(rule, start, low, high) == wednesdays


def _values(draw: st.DrawFn, low: int, high: int, size: int) -> str:
    numbers = st.one_of(st.integers(low, high), st.integers(-high, -low))
    return ",".join(str(v) for v in sorted(draw(st.sets(numbers, min_size=1, max_size=size))))


@st.composite
def setpos_rules(draw: st.DrawFn) -> str:
    """A WEEKLY, MONTHLY or YEARLY rule with BYSETPOS over BY parts that give every
    period days, with any WKST, a few times of day, and week or year days for YEARLY."""
    freq = draw(st.sampled_from(["WEEKLY", "WEEKLY", "MONTHLY", "YEARLY"]))
    parts = [f"FREQ={freq}", f"INTERVAL={draw(st.integers(1, 3))}"]
    parts.append(f"WKST={draw(st.sampled_from(DAYS))}")
    days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=5, unique=True))
    kind = draw(st.sampled_from(["weekdays", "numbered", "monthdays", "yeardays", "weeks"]))
    if kind == "monthdays" and freq != "WEEKLY":
        parts.append(f"BYMONTHDAY={_values(draw, 1, 28, 4)}")
    elif kind == "numbered" and freq != "WEEKLY":
        parts.append("BYDAY=" + ",".join(f"{draw(st.sampled_from([1, 2, -1]))}{d}" for d in days))
    elif kind == "yeardays" and freq == "YEARLY":
        parts.append(f"BYYEARDAY={_values(draw, 1, 365, 4)}")
    elif kind == "weeks" and freq == "YEARLY":
        parts.append(f"BYWEEKNO={_values(draw, 1, 52, 2)}")
        if draw(st.booleans()):
            parts.append("BYDAY=" + ",".join(days))
    else:
        parts.append("BYDAY=" + ",".join(days))
    if freq == "YEARLY" and kind in ("weekdays", "numbered", "monthdays") and draw(st.booleans()):
        months = draw(st.sets(st.integers(1, 12), min_size=1, max_size=3))
        parts.append(f"BYMONTH={','.join(str(m) for m in sorted(months))}")
    if draw(st.integers(0, 3)) == 0:
        hours = draw(st.sets(st.integers(0, 23), min_size=1, max_size=2))
        parts.append(f"BYHOUR={','.join(str(h) for h in sorted(hours))}")
    parts.append(f"BYSETPOS={_values(draw, 1, 4, 2)}")
    return ";".join(parts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    rule=setpos_rules(),
    start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31)),
    later=st.one_of(
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=1500)),
        # the first days of a later week, where a begin inside the week went wrong
        st.builds(
            lambda weeks, hours: timedelta(weeks=weeks, hours=hours),
            st.integers(1, 200),
            st.integers(-48, 72),
        ),
    ),
    span=st.timedeltas(min_value=timedelta(hours=1), max_value=timedelta(days=120)),
)
def test_a_window_of_a_setpos_rule_lists_what_the_whole_series_lists_there(
    rule: str, start: datetime, later: timedelta, span: timedelta
) -> None:
    # Given a rule with BYSETPOS that calsync accepts, and a window some time after its start
    start = start.replace(second=0, microsecond=0)
    low = max(start, start + later).replace(microsecond=0)
    high = low + timedelta(seconds=span // timedelta(seconds=1))
    try:
        validate_recurrence((f"RRULE:{rule}",), EventTime.at(start, "UTC"))
        shape = plan(parse_rule(rule), start)
    except ValidationError:
        assume(False)
        return
    truth = oracle(rule, start, low, high)
    # When the plan is evaluated from its start, and from a begin near the window
    from_start = shape.candidates(start, None, WorkBudget())
    begin = shape.shifted(low)
    from_window = shape.candidates(begin, None, WorkBudget())
    # (a begin less than one step before the window, so the work bounds hold)
    assert begin <= low
    if shape.freq == "WEEKLY":
        assert low - begin < timedelta(weeks=shape.generator.interval)
    # Then the window holds the same rule starts either way, those of dateutil
    by_rule = [s for s in truth if s != start or s in direct(parse_rule(rule), start)]
    assert [c for c in takewhile(lambda c: c < high, from_start) if c >= low] == by_rule
    assert [c for c in takewhile(lambda c: c < high, from_window) if c >= low] == by_rule
    # And calsync's expansion and the emulator's list the window's instances as dateutil
    assert emulated(rule, start, low, high) == truth
    overlapping = oracle(rule, start, low - LENGTH + timedelta(seconds=1), high)
    assert expanded(rule, start, low, high) == overlapping
