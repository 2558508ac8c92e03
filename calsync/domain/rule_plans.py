"""Recurrence rules evaluated with bounded work.

`dateutil.rrule` looks at candidate days and times inside its generator: a rule whose
periods are mostly empty (`FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=29` tests every day until
a 29 February; a rule that never matches again tests every period up to year 9999) keeps
it busy between two yields, where no caller can stop it, and a rule with many BY-values
(every BYHOUR, BYMINUTE and BYSECOND) builds and skips millions of candidates. So no rule
is given to dateutil as it is. `plan` splits it into

- a *generator* for dateutil: the same frequency, interval, times and the BY-parts that
  leave no period empty (a period is a year, month, week, day, or for HOURLY to SECONDLY
  one valid step), so dateutil's work between two of its yields is bounded by the rule's
  shape alone; and
- a *filter*: the other day BY-parts, applied here to each candidate. dateutil keeps a day
  when it passes every BY-part's test (a conjunction of tests that each look at the day
  alone), so testing some of them afterwards keeps exactly the same days: the candidates
  that pass are the rule's instances, in order.

BYSETPOS picks among a period's days after all tests, so a rule with BYSETPOS keeps all
its tests in dateutil and is accepted only when that leaves no period empty.

Work is counted in *work units* (about 0.1 µs of CPU each on the machine of
docs/benchmarks.md; the weights below are calibrated there), never in time. `Plan.
span_cost` and `Plan.count_cost` bound the work of producing candidates over a span of
time or up to a number of candidates; `Plan.candidates` charges every candidate to a
`WorkBudget` and stops with `OverBudget` (a `ValidationError` naming ``recurrence``)
*before* asking dateutil for one it could not afford. Both bounds hold for any rule
`plan` accepts, which is what makes the budget a bound and not a hope:

- between two candidates dateutil visits at most one period without candidates (the
  first period is partial) for YEARLY to DAILY, and for HOURLY to SECONDLY at most one
  *cycle* of steps (the times of day a step of INTERVAL reaches repeat after
  `cycle` steps, of which `valid_per_cycle` pass BYHOUR/BYMINUTE/BYSECOND);
- a visited period costs at most `period_cost` units (its day set, masks, BYSETPOS
  lists, time set), a step of a sub-daily rule `STEP` units, a candidate `CANDIDATE`.

RFC 5545 section 3.3.10; dateutil's `rrule._iter` is the generator bounded here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Final

from dateutil.relativedelta import relativedelta

from calsync.domain.errors import NeverOccurs, ValidationError
from calsync.domain.rfc5545 import RecurrenceRule
from calsync.domain.rule_days import (
    DAYS_PER_PERIOD,
    DayFilter,
    Generator,
    RuleParts,
    split_days,
)

__all__ = [
    "WORK_LIMIT",
    "OverBudget",
    "Plan",
    "WorkBudget",
    "plan",
]

WORK_LIMIT: Final = 200_000
"""Work units one evaluation of a series (a validation, a window, a series' end) may
spend: about 20 ms of CPU (docs/benchmarks.md)."""

# Weights of dateutil's operations, in work units (calibrated in docs/benchmarks.md).
CANDIDATE: Final = 16
"""A candidate: built and yielded by dateutil, then handled by the caller."""
FILTER: Final = 10
"""Testing a candidate's day against the BY-parts left out of the generator."""
PERIOD: Final = 20
"""A visited period of a YEARLY to DAILY rule: its day-set and mask lists, the step to
the next period."""
SUB_DAILY_PERIOD: Final = 30
"""A visited (valid) step of an HOURLY to SECONDLY rule: the same, and its time set."""
DAY: Final = 2
"""A day of a period's day set tested by dateutil (or a day of a BYSETPOS list)."""
STEP: Final = 2
"""A step of INTERVAL units of an HOURLY to SECONDLY rule that dateutil takes to find the
next valid time."""
TIME: Final = 5
"""A time of day built into a time set."""
MONTH: Final = 8
"""A month dateutil walks through to carry a WEEKLY, DAILY or finer step into the next
month (it looks each month's length up)."""
SETUP: Final = 100
"""Building one dateutil rule."""

_FIELD: Final = "recurrence"
_FIXED_STEP: Final = {
    "WEEKLY": timedelta(weeks=1),
    "DAILY": timedelta(days=1),
    "HOURLY": timedelta(hours=1),
    "MINUTELY": timedelta(minutes=1),
    "SECONDLY": timedelta(seconds=1),
}
_UNITS_PER_DAY: Final = {"HOURLY": 24, "MINUTELY": 1440, "SECONDLY": 86400}
_SUB_DAILY: Final = frozenset(_UNITS_PER_DAY)
_SECOND: Final = timedelta(seconds=1)
_MICROSECOND: Final = timedelta(microseconds=1)
_MICROS: Final = 1_000_000
_CHUNK: Final = 32
"""Candidates paid for at once while the count bound fits the budget."""
_MONTHS_IN_CALENDAR: Final = 12 * 9999


class OverBudget(ValidationError):
    """Evaluating a rule would take more than the work allowed (a `ValidationError` on
    ``recurrence``, so every caller that handles an invalid rule handles this one)."""

    def __init__(self, message: str) -> None:
        super().__init__(_FIELD, message)


class WorkBudget:
    """The work units one evaluation may still spend; shared by the rules it evaluates.

    Not thread-safe: one evaluation, one budget.
    """

    __slots__ = ("limit", "used")

    def __init__(self, limit: int = WORK_LIMIT) -> None:
        self.limit = limit
        self.used = 0

    def afford(self, units: int, what: str) -> None:
        """Raise `OverBudget` (naming `what`) unless `units` more fit in the budget."""
        if self.used + units > self.limit:
            raise OverBudget(
                f"{what} takes more than the work calsync allows for a series "
                f"({self.used + units} > {self.limit} units)"
            )

    def charge(self, units: int) -> None:
        """Spend `units` (already checked with `afford`)."""
        self.used += units


@dataclass(frozen=True, slots=True)
class Plan:
    """How one rule of a series starting at `dtstart` is evaluated with bounded work.

    `generator` is given to dateutil and `filter` tests its candidates. The costs, in work
    units: `setup_cost` to build the generator and skip the candidates of its first period
    before the begin; `period_cost` per visited period (YEARLY to DAILY) or per valid step
    (HOURLY to SECONDLY), and `STEP` per step of the latter; `CANDIDATE` per candidate. A
    full period gives from `least_per_period` to `most_per_period` candidates. For HOURLY to
    SECONDLY, the times of day reached repeat every `cycle` steps, `valid_per_cycle` of
    them valid, at most `valid_per_day` valid steps a day. Built by `plan`; immutable.
    """

    dtstart: datetime
    generator: Generator
    filter: DayFilter
    setup_cost: int
    period_cost: int
    least_per_period: int
    most_per_period: int
    candidate_cost: int = CANDIDATE
    cycle: int = 1
    valid_per_cycle: int = 1
    gap: int = 0
    valid_per_day: int = 1

    @property
    def freq(self) -> str:
        return self.generator.freq

    @property
    def sub_daily(self) -> bool:
        return self.generator.freq in _SUB_DAILY

    def candidates(
        self, begin: datetime, until: datetime | None, budget: WorkBudget
    ) -> Iterator[datetime]:
        """The rule's starts from `begin` (`dtstart`, or for a rule without COUNT a
        `shifted` begin) to shortly after `until` (or without end), in order, every
        candidate charged to `budget`.

        Raises `OverBudget` before asking dateutil for a candidate that could take the
        budget past its limit (the starts yielded before stay right).
        """
        what = f"evaluating {self.freq} rule"
        budget.afford(self.setup_cost, what)
        stream = iter(self.generator.build(begin, until))
        budget.charge(self.setup_cost)
        charged = self.setup_cost  # what this evaluation has charged to the budget
        keep = None if self.filter.empty else self.filter.test
        count_cost = self.count_cost
        received = 0
        paid = 0  # candidates whose work is charged
        last = begin
        while True:
            if received == paid:
                # Charge, before dateutil is asked, a bound of the work done once more
                # candidates are in: by their count for a chunk of them (cheap), else for
                # one, by the span covered if that is lower.
                paid = received + _CHUNK
                ahead = count_cost(paid)
                if ahead - charged > budget.limit - budget.used:
                    paid = received + 1
                    steps = self._steps(begin, last) + self._steps_to_next
                    ahead = min(count_cost(paid), self._span_cost(steps))
                    budget.afford(ahead - charged, what)
                if ahead > charged:
                    budget.used += ahead - charged
                    charged = ahead
            value = next(stream, None)
            if value is None:
                return
            received += 1
            last = value
            if keep is None or keep(value):
                yield value

    def count_cost(self, received: int) -> int:
        """Work units that bound producing the first `received` candidates from a begin."""
        valid = -(-received // self.least_per_period) + 2
        cost = self.setup_cost + valid * self.period_cost + received * self.candidate_cost
        if self.sub_daily:
            # at most `gap` invalid steps come before a valid one, and `valid` valid steps
            # lie within so many cycles
            by_gap = valid * (self.gap + 1)
            by_cycles = (-(-valid // self.valid_per_cycle) + 1) * self.cycle
            cost += min(by_gap, by_cycles) * STEP
        return cost

    def span_cost(self, span: timedelta) -> int:
        """Work units that bound producing every candidate up to `span` after a begin and
        the first one after that."""
        return self._span_cost(self._steps_in(span) + self._steps_to_next)

    def _span_cost(self, steps: int) -> int:
        steps += 2  # the begin's own period and the partial first one
        per_valid = self.period_cost + self.most_per_period * self.candidate_cost
        if not self.sub_daily:
            return self.setup_cost + steps * per_valid
        days = steps * self.generator.interval // _UNITS_PER_DAY[self.freq] + 2
        valid = min(steps, days * self.valid_per_day)
        return self.setup_cost + steps * STEP + valid * per_valid

    @property
    def _steps_to_next(self) -> int:
        """Steps from one candidate to the next at most: to the next period, or past the
        longest run of invalid steps."""
        return self.gap + 2

    def _steps_in(self, span: timedelta) -> int:
        interval = self.generator.interval
        if self.freq == "YEARLY":
            return span.days // (365 * interval) + 1
        if self.freq == "MONTHLY":
            return span.days // (28 * interval) + 1
        return span // _SECOND // self._step_seconds + 1

    def _steps(self, begin: datetime, value: datetime) -> int:
        interval = self.generator.interval
        if self.freq == "YEARLY":
            return (value.year - begin.year) // interval
        if self.freq == "MONTHLY":
            return ((value.year - begin.year) * 12 + value.month - begin.month) // interval
        return (value - begin) // _SECOND // self._step_seconds

    @property
    def _step_seconds(self) -> int:
        """A step of a WEEKLY to SECONDLY rule in seconds (as an int: INTERVAL times a
        week may be longer than a `timedelta` holds)."""
        return _FIXED_STEP[self.freq] // _SECOND * self.generator.interval

    def shifted(self, low: datetime) -> datetime:
        """A begin for `candidates` a whole number of INTERVAL periods after `dtstart`, at
        or before `low` and less than one step of INTERVAL periods before it: the rule has
        the same starts from `low` on from there as from `dtstart`. Not for COUNT rules,
        which count from `dtstart`.

        dateutil's first period is the one its start lies in, cut at the start: for
        YEARLY, MONTHLY and WEEKLY it is a whole year, month or week (from WKST) only when
        the start is that period's first midnight. BYSETPOS picks among the days of the
        period *before* the start cuts it, so a begin inside a week (dateutil's week runs
        from its start's day to the next WKST) would pick among the rest of that week:
        the begin of these rules is the first midnight of a period (`dtstart` itself
        while `low` is in `dtstart`'s own period, whose cut dateutil makes too). Days
        (DAILY) and finer periods are whole from any time of their first step."""
        start, interval = self.dtstart, self.generator.interval
        if low <= start:
            return start
        if self.freq == "WEEKLY":
            return self._shifted_week(low)
        if self.freq in _FIXED_STEP:
            step = self._step_seconds
            return start + timedelta(seconds=step * ((low - start) // _SECOND // step))
        if self.freq == "MONTHLY":
            months = (low.year - start.year) * 12 + low.month - start.month
            moved = start + relativedelta(months=(months // interval) * interval)
            return datetime.combine(moved.date().replace(day=1), time(), tzinfo=start.tzinfo)
        year = start.year + ((low.year - start.year) // interval) * interval
        return datetime(year, 1, 1, tzinfo=start.tzinfo)

    def _shifted_week(self, low: datetime) -> datetime:
        """`shifted` for WEEKLY: the midnight starting a week (at WKST) a whole number of
        INTERVAL weeks after `dtstart`'s, the last at or before `low` (`dtstart` while
        that is `dtstart`'s own week). It lies less than one step before `low`, as any
        begin does, so the work bounds (`span_cost`) still hold."""
        start = self.dtstart
        step = self._step_seconds * _MICROS
        # from the midnight of `dtstart`'s week to `dtstart`, in microseconds (counted, not
        # subtracted: that midnight may lie before year 1)
        into = (
            ((start.weekday() - self.generator.wkst) % 7) * 86400
            + start.hour * 3600
            + start.minute * 60
            + start.second
        ) * _MICROS + start.microsecond
        weeks = ((low - start) // _MICROSECOND + into) // step
        if weeks == 0:
            return start
        return start + timedelta(microseconds=weeks * step - into)


def plan(rule: RecurrenceRule, dtstart: datetime) -> Plan:
    """How `rule` of a series whose first start is `dtstart` (a wall-clock time, naive or
    aware) is evaluated with bounded work.

    Raises `ValidationError("recurrence", ...)` for a rule whose work cannot be bounded:
    BYWEEKNO without a week from -52 to 52, BYSETPOS over BY-parts that can leave a
    period without a day, times of day its INTERVAL never reaches.
    """
    parts = RuleParts.pinned(rule, dtstart)
    split = split_days(parts)
    if parts.bysetpos and not split.left_out.empty:
        raise ValidationError(
            _FIELD,
            "BYSETPOS needs BY parts that give every period a day (calsync cannot bound "
            f"the work of the others) in {rule.source!r}",
        )
    times, built = _time_set(parts)
    if parts.bysetpos:
        if not any(abs(pos) <= split.least * times for pos in parts.bysetpos):
            raise ValidationError(
                _FIELD, f"BYSETPOS can select nothing in some periods in {rule.source!r}"
            )
        least, most = 1, len(parts.bysetpos)
    else:
        least, most = split.least * times, split.most * times
    days = DAYS_PER_PERIOD.get(parts.freq, 1)
    period_cost = (
        (SUB_DAILY_PERIOD if parts.freq in _SUB_DAILY else PERIOD)
        + days * DAY
        + len(parts.bysetpos) * days * DAY  # each position lists the period's days
        + 7 * len(split.generator.byweekno) * DAY  # the week masks of a year
        + 31 * len(parts.nth) * DAY  # the numbered weekday masks of a month or year
        + (times * TIME if parts.freq in _SUB_DAILY else 0)  # a time set per step
        + _months_per_step(parts) * MONTH
    )
    cycle = _time_cycle(parts, dtstart)
    return Plan(
        dtstart=dtstart,
        generator=split.generator,
        filter=split.left_out,
        setup_cost=SETUP + built * TIME + period_cost + most * (CANDIDATE + FILTER),
        period_cost=period_cost,
        least_per_period=least,
        most_per_period=most,
        candidate_cost=CANDIDATE + (0 if split.left_out.empty else FILTER),
        cycle=cycle.steps,
        valid_per_cycle=cycle.valid,
        gap=cycle.gap,
        valid_per_day=cycle.per_day,
    )


def _time_set(parts: RuleParts) -> tuple[int, int]:
    """The candidates per day (YEARLY to DAILY) or per valid step (finer) that the
    times give, and how many times dateutil builds when it builds the rule."""
    hours, minutes, seconds = (len(p) or 1 for p in (parts.byhour, parts.byminute, parts.bysecond))
    if parts.freq == "HOURLY":
        return minutes * seconds, 0
    if parts.freq == "MINUTELY":
        return seconds, 0
    if parts.freq == "SECONDLY":
        return 1, 0
    product = hours * minutes * seconds
    return product, product


def _months_per_step(parts: RuleParts) -> int:
    """The months beyond the next at most that dateutil walks through, one at a time, to
    carry a step of a WEEKLY, DAILY or finer rule into a later month (into the next one
    is part of `PERIOD`; YEARLY and MONTHLY steps add to the year or month at once)."""
    if parts.freq in ("YEARLY", "MONTHLY"):
        return 0
    seconds = _FIXED_STEP[parts.freq] // _SECOND * parts.interval
    # past year 9999 dateutil stops: no step walks more months than the calendar has
    return min(seconds // (28 * 86400), _MONTHS_IN_CALENDAR)


@dataclass(frozen=True, slots=True)
class _Cycle:
    """The times of day an HOURLY to SECONDLY rule reaches repeat every `steps` steps;
    `valid` of them pass BYHOUR/BYMINUTE/BYSECOND, at most `gap` invalid ones come in a
    row, and at most `per_day` valid ones fall on a day. Every period of a coarser rule
    is visited: one step, valid."""

    steps: int = 1
    valid: int = 1
    gap: int = 0
    per_day: int = 1


_GAP_ENUMERATION: Final = 4096
"""Valid times up to which the longest run of invalid steps is computed exactly (above
it, `cycle - valid` bounds it)."""


def _time_cycle(parts: RuleParts, dtstart: datetime) -> _Cycle:
    """The `_Cycle` of `parts` from `dtstart`. Costs at most about `_GAP_ENUMERATION`
    plus BYHOUR x BYMINUTE operations.

    Raises `ValidationError` when the INTERVAL reaches no valid time of day (dateutil
    would loop through a day of steps, then fail).
    """
    if parts.freq not in _SUB_DAILY:
        return _Cycle()
    per_day = _UNITS_PER_DAY[parts.freq]
    residue = math.gcd(parts.interval, per_day)
    steps = per_day // residue
    unit_seconds = {"HOURLY": 3600, "MINUTELY": 60, "SECONDLY": 1}[parts.freq]
    origin = (dtstart.hour * 3600 + dtstart.minute * 60 + dtstart.second) // unit_seconds
    hours = parts.byhour or tuple(range(24))
    minutes = (parts.byminute or tuple(range(60))) if parts.freq != "HOURLY" else (0,)
    seconds = (parts.bysecond or tuple(range(60))) if parts.freq == "SECONDLY" else (0,)
    # The steps reach the units of the day in origin's class modulo `residue`; group the
    # seconds by class so that counting costs hours x minutes, not a loop over the day.
    by_class: dict[int, list[int]] = {}
    for second in seconds:
        by_class.setdefault(second % residue, []).append(second)
    reached: list[tuple[int, list[int]]] = []
    valid = 0
    for hour in hours:
        for minute in minutes:
            unit = (hour * 3600 + minute * 60) // unit_seconds
            found = by_class.get((origin - unit) % residue, [])
            valid += len(found)
            reached.append((unit, found))
    if not valid:
        raise NeverOccurs(
            _FIELD, "the rule never occurs: its INTERVAL never reaches BYHOUR/BYMINUTE/BYSECOND"
        )
    gap = steps - valid
    if valid <= _GAP_ENUMERATION and valid < steps:
        # step j reaches unit origin + j * interval (mod a day): j from the unit
        inverse = pow(parts.interval // residue, -1, steps)
        order = sorted(
            ((unit + extra - origin) // residue * inverse) % steps
            for unit, found in reached
            for extra in found
        )
        gap = max(b - a for a, b in zip(order, [*order[1:], order[0] + steps], strict=True)) - 1
    steps_per_day = -(-per_day // parts.interval) + 1
    # one day's valid steps are distinct valid times of the same class
    return _Cycle(steps, valid, gap, min(valid, steps_per_day))
