"""Recurrence lines -> a validated series (`validate_recurrence`), or why not.

A series validates when its lines parse (`calsync.domain.rfc5545`), its dates lie in
`EARLIEST_RULE_DATE`..`LATEST_RULE_DATE`, and its evaluation is bounded: every rule's
first instance, a COUNT rule's whole run and any window of `MAX_WINDOW` of the others
fit in `WORK_LIMIT` (`calsync.domain.rule_plans`). A rule that never yields an instance
after the start is refused to the API (`NeverOccurs`) but dropped from a series that
Google holds (`expandable_series`). Answers are kept (`checked_series`), as values.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Final, NamedTuple

from calsync.domain.errors import NeverOccurs, ValidationError
from calsync.domain.models import Event, EventTime
from calsync.domain.rfc5545 import (
    DEFAULT_MAX_COUNT,
    DateValue,
    RecurrenceRule,
    RecurrenceSet,
    parse_recurrence,
)
from calsync.domain.rule_plans import WORK_LIMIT, OverBudget, Plan, WorkBudget
from calsync.domain.series_starts import UNTIL_SLACK, Series, rule_plan

__all__ = [
    "DEFAULT_MAX_INSTANCES",
    "EARLIEST_RULE_DATE",
    "LATEST_RULE_DATE",
    "MAX_INSTANCES",
    "MAX_WINDOW",
    "CheckedSeries",
    "checked_series",
    "expandable_series",
    "recurrence_problem",
    "validate_recurrence",
]

DEFAULT_MAX_INSTANCES: Final = 1000
EARLIEST_RULE_DATE: Final = date(2, 1, 1)
LATEST_RULE_DATE: Final = date(9998, 12, 31)
MAX_WINDOW: Final = timedelta(days=402)
"""The longest window a validated series is expanded over within `WORK_LIMIT`: a
listing spans at most 400 days (`calsync.web.event_reads.MAX_EXPAND_DAYS`), plus a day
each side for the zones."""
MAX_INSTANCES: Final = 2 * DEFAULT_MAX_INSTANCES
"""The most instances of a window that `validate_recurrence` guarantees within
`WORK_LIMIT` (with one more start per EXDATE) when every candidate of a rule is an
instance, however many the window holds: what a listing (1,000) or the reminder planner
(2,000) asks for. A larger request (an instance looked up by id asks for up to
`MAX_INSTANCES_LIMIT`) over a window wider than its candidates allow fails with
`OverBudget`."""
_FIELD: Final = "recurrence"
_CHECKED_CACHE_SIZE: Final = 4096
"""Validated series kept: twice the compiled ones, as writes validate series no read asks
for (yet)."""
_FIXED_PERIOD: Final = {
    "SECONDLY": timedelta(seconds=1),
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
}


def validate_recurrence(
    lines: Iterable[str], start: EventTime, *, max_count: int = DEFAULT_MAX_COUNT
) -> RecurrenceSet:
    """Parse `lines` and check them against the series' `start`.

    Returns the parsed set. Raises `ValidationError("recurrence", ...)` for anything
    `parse_recurrence` rejects, for a rule that never yields an instance after the start
    (UNTIL before the start, an interval that never lands on the BYDAY days), and for
    date-only values on a timed series' UNTIL that precede the start, and for dates
    (UNTIL, RDATE, EXDATE) outside `EARLIEST_RULE_DATE`..`LATEST_RULE_DATE`.

    Also for a series whose evaluation could take more than `WORK_LIMIT` work units
    (`calsync.domain.rule_plans`): a rule whose first instance is not found within it,
    COUNT rules whose instances all take more, or other rules whose expansion over a
    window of `MAX_WINDOW` could (unless every candidate is an instance and the starts a
    window asks for, `MAX_INSTANCES` and one per EXDATE, fit). A series that validates
    is therefore expanded within the limit for any such window (`occurrences`,
    `expand`), and its end found within it (`series_end`). The check costs at most about
    `WORK_LIMIT` units itself, and its answer is kept (`clear_rule_cache`).
    """
    lines = tuple(lines)
    if not all(isinstance(line, str) for line in lines):
        raise ValidationError(_FIELD, "recurrence lines must be strings")
    checked = checked_series(lines, start, max_count)
    if isinstance(checked, tuple):
        raise ValidationError(*checked)
    if checked.recurrence.never:
        raise NeverOccurs(_FIELD, checked.recurrence.never[0])
    return checked.recurrence


def expandable_series(lines: Iterable[str], start: EventTime, max_count: int) -> CheckedSeries:
    """The kept `_check` of a series as expansion sees it: rules that never occur are
    left out (`RecurrenceSet.never`; the start is still an instance, as at Google);
    raises `ValidationError` for everything else `validate_recurrence` refuses."""
    lines = tuple(lines)
    if not all(isinstance(line, str) for line in lines):
        raise ValidationError(_FIELD, "recurrence lines must be strings")
    checked = checked_series(lines, start, max_count)
    if isinstance(checked, tuple):
        raise ValidationError(*checked)
    return checked


def recurrence_problem(event: Event, *, max_count: int = DEFAULT_MAX_COUNT) -> str | None:
    """Why calsync does not expand `event`'s recurrence (what `validate_recurrence` says,
    from its kept answer), or None for an event that does not recur or whose rules
    validate. Google may hold rules calsync refuses: such a series is stored and shown as
    its master alone."""
    if not event.recurrence or event.is_exception:
        return None
    try:
        expandable_series(event.recurrence, event.start, max_count)
    except ValidationError as err:
        return err.message
    return None


@dataclass(frozen=True, slots=True)
class CheckedSeries:
    """A validated series: its parsed lines, and the last wall-clock start of each COUNT
    rule (found while validating; `series_end` needs it)."""

    recurrence: RecurrenceSet
    last_counted: dict[RecurrenceRule, datetime]


@lru_cache(maxsize=_CHECKED_CACHE_SIZE)
def checked_series(
    lines: tuple[str, ...], start: EventTime, max_count: int
) -> CheckedSeries | tuple[str, str]:
    """`_check` of a series, or the (field, message) of its `ValidationError` (a value:
    a cached exception would grow a traceback each time it is raised again). Pure."""
    try:
        return _check(lines, start, max_count)
    except ValidationError as err:
        return err.field, err.message


def _check(lines: tuple[str, ...], start: EventTime, max_count: int) -> CheckedSeries:
    """Parse and check a series as `validate_recurrence` says; a rule that never occurs is
    dropped from the set and named in its `never` (the caller decides whether to refuse)."""
    recurrence = parse_recurrence(lines, max_count=max_count)
    _check_dates_in_range(recurrence)
    series = Series(start)
    counted = WorkBudget()  # COUNT rules' whole runs: what any later evaluation repeats
    windows = 0  # the other rules' dearest window, as bounded by their shape
    wanted = MAX_INSTANCES + len(recurrence.exdates) + 1
    last_counted: dict[RecurrenceRule, datetime] = {}
    never = list(recurrence.never)
    dead: set[RecurrenceRule] = set()
    for rule in recurrence.rrules + recurrence.exrules:
        try:
            _check_interval_reaches_byday(rule, series.dtstart)
            plan = rule_plan(rule, series.dtstart)
        except NeverOccurs as err:
            never.append(err.message)
            dead.add(rule)
            continue
        checked = _check_rule(rule, plan, series, counted, wanted)
        windows += checked.window_cost
        if checked.never is not None:
            never.append(checked.never)
            dead.add(rule)
        elif checked.last is not None:
            last_counted[rule] = checked.last
    if counted.used + windows > WORK_LIMIT:
        raise ValidationError(
            _FIELD,
            f"expanding the series over {MAX_WINDOW.days} days could take more than the work "
            f"calsync allows for a series ({counted.used + windows} > {WORK_LIMIT} units): "
            "use fewer BY values, a coarser FREQ, a larger INTERVAL or a COUNT",
        )
    if dead or never:
        recurrence = dataclasses.replace(
            recurrence,
            rrules=tuple(r for r in recurrence.rrules if r not in dead),
            exrules=tuple(r for r in recurrence.exrules if r not in dead),
            never=tuple(never),
        )
    return CheckedSeries(recurrence, last_counted)


class _RuleCheck(NamedTuple):
    """What checking one rule of a series found."""

    window_cost: int  # the bound of a window of a rule without COUNT (0 for a COUNT rule)
    last: datetime | None  # a COUNT rule's last wall-clock start
    never: str | None  # why the rule never occurs after the start (it is dropped then)


def _check_rule(
    rule: RecurrenceRule, plan: Plan, series: Series, counted: WorkBudget, wanted: int
) -> _RuleCheck:
    """Check one rule of `series` (its `plan` made): one period within `WORK_LIMIT`, a first
    instance found within it, and for a COUNT rule its whole run, charged to `counted`.
    Raises `ValidationError` for a rule over the limit (or that dateutil refuses)."""
    if plan.setup_cost > WORK_LIMIT:
        raise ValidationError(
            _FIELD,
            f"one period of the rule takes more than the work calsync allows for a series "
            f"({plan.setup_cost} > {WORK_LIMIT} units; too many BY values, or too large an "
            f"INTERVAL): {rule.source!r}",
        )
    window_cost = _window_cost(plan, wanted) if rule.count is None else 0
    budget = WorkBudget() if rule.count is None else counted
    starts = series.rule_starts(rule, series.dtstart, None, budget)
    allowed = f"the work calsync allows for a series ({WORK_LIMIT} units)"
    try:
        first = next(starts, None)
    except OverBudget:
        raise ValidationError(
            _FIELD, f"the rule finds no instance within {allowed}: {rule.source!r}"
        ) from None
    except ValidationError:
        raise
    except ValueError as err:  # dateutil's own "empty rule" checks
        raise ValidationError(_FIELD, f"{rule.source!r}: {err}") from err
    if first is None:
        return _RuleCheck(
            window_cost, None, f"the rule never occurs after the start: {rule.source!r}"
        )
    if rule.count is None:
        return _RuleCheck(window_cost, None, None)
    try:
        rest = deque(starts, maxlen=1)  # all of them: later evaluations repeat a part
    except OverBudget:
        raise ValidationError(
            _FIELD,
            f"the rule's {rule.count} instances take more than {allowed}: {rule.source!r}",
        ) from None
    return _RuleCheck(0, rest[0] if rest else first, None)


def _window_cost(plan: Plan, wanted: int) -> int:
    """Work units that bound expanding one rule without COUNT over `MAX_WINDOW`: its
    candidates over the window, or when every candidate is an instance, the candidates of
    `wanted` instances (and those skipped before the window) if fewer."""
    span = plan.span_cost(MAX_WINDOW + UNTIL_SLACK)
    if not plan.filter.empty:
        return span
    return min(span, plan.count_cost(wanted + plan.most_per_period + 1))


def _check_dates_in_range(recurrence: RecurrenceSet) -> None:
    """Reject a date value too near the ends of the calendar to be evaluated safely."""
    values: list[tuple[str, DateValue]] = [
        ("UNTIL", rule.until)
        for rule in recurrence.rrules + recurrence.exrules
        if rule.until is not None
    ]
    values += [("RDATE", value) for value in recurrence.rdates]
    values += [("EXDATE", value) for value in recurrence.exdates]
    for name, value in values:
        day = value.date() if isinstance(value, datetime) else value
        if not EARLIEST_RULE_DATE <= day <= LATEST_RULE_DATE:
            hint = " (leave UNTIL out for a series without end)" if name == "UNTIL" else ""
            raise ValidationError(
                _FIELD,
                f"{name} {day.isoformat()} is outside the supported range "
                f"{EARLIEST_RULE_DATE.isoformat()} to {LATEST_RULE_DATE.isoformat()}{hint}",
            )


def _check_interval_reaches_byday(rule: RecurrenceRule, dtstart: datetime) -> None:
    """Reject a fixed step of whole weeks that never lands on any BYDAY weekday."""
    period = _FIXED_PERIOD.get(rule.freq)
    if period is None or rule.freq == "WEEKLY" or not rule.byday:
        return
    step = period * rule.interval
    if step % timedelta(weeks=1) == timedelta(0):
        days = {r.weekday for r in rule.byday}
        if dtstart.weekday() not in days:
            raise NeverOccurs(
                _FIELD, f"the rule never occurs: its step never lands on BYDAY ({rule.source})"
            )
