"""Recurring series: validation against the start, and bounded expansion into instances.

A series is a master `Event` with `recurrence` lines plus its exceptions (events whose
`recurring_event_id` names the master and whose `original_start` names the instance they
replace; a cancelled exception removes the instance). Expansion follows Google and RFC
5545:

- rules are evaluated on wall-clock time in the series' zone (the start's zone), so a
  09:00 Europe/Berlin weekly meeting stays at 09:00 local in summer and in winter; a
  wall time that falls in a DST gap moves forward, a repeated one takes the first;
- the start is always the first instance (RFC 5545 3.8.5.3) and counts towards COUNT;
- all instances last as long as the master (exact duration; whole days for all-day);
- instance ids are Google's: `<masterId>_<YYYYMMDDTHHMMSSZ>` (UTC) or `<masterId>_<YYYYMMDD>`.

Expansion is always bounded by the window and by `max_instances`: rules without COUNT
are started a whole number of periods before the window instead of at the series' start
(at a period's first midnight for YEARLY to WEEKLY, where BYSETPOS picks among the
period's days: `Plan.shifted`), so even FREQ=SECONDLY without an end returns quickly.
Rule evaluation uses `dateutil.rrule`; rules that dateutil would search forever (impossible BY-part
combinations) are rejected by `calsync.domain.rfc5545` and `validate_recurrence` first.

Dates in recurrence lines (UNTIL, RDATE, EXDATE) must lie from `EARLIEST_RULE_DATE`
(0002-01-01) to `LATEST_RULE_DATE` (9998-12-31), in whatever zone they are written:
evaluation converts them between zones and looks a few days past them, which at the
very ends of the calendar (year 1, year 9999) would leave the range a `datetime` can
hold. `UNTIL=99991231T235959Z`, a way of saying "never ends", is refused with a 422
naming `recurrence` (leave UNTIL out for a series without end) rather than silently
rewritten: the rule stored and sent to Google stays the one the user gave. A rule that
Google holds with such dates is stored but not expanded, as any rule calsync refuses.
"""

from __future__ import annotations

import dataclasses
import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Final

from calsync.domain.errors import NeverOccurs, ValidationError
from calsync.domain.models import Event, EventStatus, EventTime
from calsync.domain.rfc5545 import (
    DEFAULT_MAX_COUNT,
    DateValue,
    RecurrenceRule,
    RecurrenceSet,
    parse_recurrence,
)
from calsync.domain.rule_plans import WORK_LIMIT, OverBudget, Plan, WorkBudget
from calsync.domain.rule_plans import plan as plan_rule
from calsync.domain.timezones import zone
from calsync.domain.windows import DayRange, all_day_in_window, timed_in_window

__all__ = [
    "DEFAULT_MAX_COUNT",
    "DEFAULT_MAX_INSTANCES",
    "EARLIEST_RULE_DATE",
    "LATEST_RULE_DATE",
    "MAX_INSTANCES_LIMIT",
    "Occurrences",
    "clear_rule_cache",
    "expand",
    "instance_id",
    "instance_of",
    "occurrences",
    "recurrence_problem",
    "rule_walls",
    "series_end",
    "validate_recurrence",
]

DEFAULT_MAX_INSTANCES: Final = 1000
EARLIEST_RULE_DATE: Final = date(2, 1, 1)
LATEST_RULE_DATE: Final = date(9998, 12, 31)
MAX_INSTANCES_LIMIT: Final = 10_000
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
_UNTIL_SLACK: Final = timedelta(days=2)
"""How far past UNTIL starts are still looked at: a wall time in a DST gap (or a skipped
day) maps to an instant later than the wall times after it."""
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


def instance_id(master_id: str, original_start: EventTime) -> str:
    """Google's id for an instance of series `master_id` that starts at `original_start`:
    ``<master_id>_<YYYYMMDD>`` for a day, ``<master_id>_<YYYYMMDDTHHMMSSZ>`` of the
    instant's own fields (its UTC time, as instants are held) otherwise; what
    ``strftime`` writes for ``%Y%m%d`` and ``%Y%m%dT%H%M%SZ``."""
    day = original_start.day
    if day is not None:
        if day.year < 1000:  # strftime's %Y does not pad years before 1000 everywhere
            return f"{master_id}_{day:%Y%m%d}"
        # %-formatting: less than half the time of strftime, called for every instance
        return "%s_%04d%02d%02d" % (master_id, day.year, day.month, day.day)  # noqa: UP031
    at = original_start.instant
    assert at is not None
    if at.year < 1000:
        return f"{master_id}_{at:%Y%m%dT%H%M%SZ}"
    return "%s_%04d%02d%02dT%02d%02d%02dZ" % (  # noqa: UP031
        master_id,
        at.year,
        at.month,
        at.day,
        at.hour,
        at.minute,
        at.second,
    )


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
    checked = _checked(lines, start, max_count)
    if isinstance(checked, tuple):
        raise ValidationError(*checked)
    if checked.recurrence.never:
        raise NeverOccurs(_FIELD, checked.recurrence.never[0])
    return checked.recurrence


def _expandable(lines: Iterable[str], start: EventTime, max_count: int) -> _Check:
    """The kept `_check` of a series as expansion sees it: rules that never occur are
    left out (`RecurrenceSet.never`; the start is still an instance, as at Google);
    raises `ValidationError` for everything else `validate_recurrence` refuses."""
    lines = tuple(lines)
    if not all(isinstance(line, str) for line in lines):
        raise ValidationError(_FIELD, "recurrence lines must be strings")
    checked = _checked(lines, start, max_count)
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
        _expandable(event.recurrence, event.start, max_count)
    except ValidationError as err:
        return err.message
    return None


@dataclass(frozen=True, slots=True)
class _Check:
    """A validated series: its parsed lines, and the last wall-clock start of each COUNT
    rule (found while validating; `series_end` needs it)."""

    recurrence: RecurrenceSet
    last_counted: dict[RecurrenceRule, datetime]


@lru_cache(maxsize=_CHECKED_CACHE_SIZE)
def _checked(lines: tuple[str, ...], start: EventTime, max_count: int) -> _Check | tuple[str, str]:
    """`_check` of a series, or the (field, message) of its `ValidationError` (a value:
    a cached exception would grow a traceback each time it is raised again). Pure."""
    try:
        return _check(lines, start, max_count)
    except ValidationError as err:
        return err.field, err.message


def _check(lines: tuple[str, ...], start: EventTime, max_count: int) -> _Check:
    recurrence = parse_recurrence(lines, max_count=max_count)
    _check_dates_in_range(recurrence)
    series = _Series(start)
    counted = WorkBudget()  # COUNT rules' whole runs: what any later evaluation repeats
    windows = 0  # the other rules' dearest window, as bounded by their shape
    wanted = MAX_INSTANCES + len(recurrence.exdates) + 1
    last_counted: dict[RecurrenceRule, datetime] = {}
    never = list(recurrence.never)
    dead: set[RecurrenceRule] = set()
    for rule in recurrence.rrules + recurrence.exrules:
        try:
            _check_interval_reaches_byday(rule, series.dtstart)
            plan = _plan(rule, series.dtstart)
        except NeverOccurs as err:
            never.append(err.message)
            dead.add(rule)
            continue
        if plan.setup_cost > WORK_LIMIT:
            raise ValidationError(
                _FIELD,
                f"one period of the rule takes more than the work calsync allows for a series "
                f"({plan.setup_cost} > {WORK_LIMIT} units; too many BY values, or too large an "
                f"INTERVAL): {rule.source!r}",
            )
        if rule.count is None:
            windows += _window_cost(plan, wanted)
            budget = WorkBudget()
        else:
            budget = counted
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
            never.append(f"the rule never occurs after the start: {rule.source!r}")
            dead.add(rule)
            continue
        if rule.count is not None:
            try:
                rest = deque(starts, maxlen=1)  # all of them: later evaluations repeat a part
            except OverBudget:
                raise ValidationError(
                    _FIELD,
                    f"the rule's {rule.count} instances take more than {allowed}: {rule.source!r}",
                ) from None
            last_counted[rule] = rest[0] if rest else first
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
    return _Check(recurrence, last_counted)


def _window_cost(plan: Plan, wanted: int) -> int:
    """Work units that bound expanding one rule without COUNT over `MAX_WINDOW`: its
    candidates over the window, or when every candidate is an instance, the candidates of
    `wanted` instances (and those skipped before the window) if fewer."""
    span = plan.span_cost(MAX_WINDOW + _UNTIL_SLACK)
    if not plan.filter.empty:
        return span
    return min(span, plan.count_cost(wanted + plan.most_per_period + 1))


def expand(
    master: Event,
    window_start: datetime,
    window_end: datetime,
    exceptions: Iterable[Event] = (),
    *,
    master_id: str | None = None,
    max_instances: int = DEFAULT_MAX_INSTANCES,
    max_count: int = DEFAULT_MAX_COUNT,
    days: DayRange | None = None,
) -> tuple[Event, ...]:
    """The instances of a series that overlap `[window_start, window_end)`, by start.

    Each generated instance is a copy of the master with `start`/`end` of the instance,
    no recurrence, `recurring_event_id` = the master's id, `original_start` = its start,
    `provider_event_id` = Google's instance id and no `calsync_id`. An exception replaces
    the instance its `original_start` names and is returned as given when it overlaps the
    window (even if the replaced instance does not); a cancelled one only removes. A
    non-recurring master is returned alone if it overlaps; a cancelled master yields
    nothing. At most `max_instances` (the earliest) are returned.

    `days`: the window's days for all-day instances and events, as `occurrences` takes
    them. `master_id` defaults to `master.provider_event_id`. Raises `ValueError` for
    naive or empty windows, a bad `max_instances` or a missing master id, and
    `ValidationError` for recurrence lines that do not validate.
    """
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise ValueError("the window must be given as aware datetimes")
    if window_end <= window_start:
        raise ValueError("the window must end after it starts")
    if not 1 <= max_instances <= MAX_INSTANCES_LIMIT:
        raise ValueError(f"max_instances must be between 1 and {MAX_INSTANCES_LIMIT}")
    if master.status == EventStatus.CANCELLED:
        return ()
    fallback = master.timezone or "UTC"
    if not master.recurrence:
        return (master,) if _in_window(master, window_start, window_end, days) else ()
    series_id = master_id or master.provider_event_id
    if not series_id:
        raise ValueError("a master id is needed to name the instances")
    found = occurrences(
        master.recurrence,
        master.start,
        master.end,
        window_start,
        window_end,
        exceptions,
        series_id=series_id,
        timezone=master.timezone,
        max_instances=max_instances,
        max_count=max_count,
        days=days,
    )
    instances = [instance_of(master, series_id, start) for start in found.starts]
    instances += found.exceptions
    instances.sort(key=lambda e: (e.start.start_in(fallback), e.provider_event_id or ""))
    return tuple(instances)


@dataclass(frozen=True, slots=True)
class Occurrences:
    """What a series shows in a window, before any instance is built.

    `starts` are the starts of the generated instances (those no exception replaces), in
    order; `exceptions` the series' own live exceptions that overlap the window. Together
    they are the earliest `max_instances` instances, exactly those `expand` returns.

    `complete` says that no bound left an instance out (neither `max_instances` nor the
    generation limit cut the answer, and the series has no EXRULE, whose own limit is not
    tracked). Then the answer for a longer window with the same start holds exactly these
    instances among those that begin before this window's end, which lets a caller
    expand a shorter window first.
    """

    starts: tuple[EventTime, ...]
    exceptions: tuple[Event, ...]
    complete: bool


def occurrences(
    recurrence: tuple[str, ...],
    start: EventTime,
    end: EventTime,
    window_start: datetime,
    window_end: datetime,
    exceptions: Iterable[Event] = (),
    *,
    series_id: str,
    timezone: str | None,
    max_instances: int = DEFAULT_MAX_INSTANCES,
    max_count: int = DEFAULT_MAX_COUNT,
    days: DayRange | None = None,
    not_before: datetime | None = None,
) -> Occurrences:
    """The instances of the series (`recurrence`, `start`, `end`, `timezone` of a valid,
    non-cancelled master) that overlap `[window_start, window_end)`, as starts.

    With `days`, all-day instances and exceptions are those whose dates overlap `days`
    (`calsync.domain.windows.all_day_in_window`: the listing rule, the same for every
    series and for single events); without, those that overlap the window as
    midnight-to-midnight in the series' zone (the exceptions: in their own zone).

    With `not_before`, the instances that sort before it (by start; a day at midnight
    UTC, as lists sort) are left out, and `max_instances` counts from it: a list pages
    on through a series of any length, one bounded expansion per page.

    The cheap half of `expand`, for callers that build instances (`instance_of`) only for
    the few they show. The parsed rules come from a bounded cache keyed by everything they
    depend on (the lines, the start and its zone, the fallback zone of all-day series and
    `max_count`), so the rules of a series are parsed and validated once, not once per
    request; the cache holds no instances and nothing of the window. Raises
    `ValidationError` for recurrence lines that do not validate.
    """
    fallback = timezone or "UTC"
    compiled = _compiled(tuple(recurrence), start, fallback, max_count)
    if isinstance(compiled, tuple):
        raise ValidationError(*compiled)
    recurrence_set, series = compiled.recurrence, compiled.series
    own = [e for e in exceptions if e.recurring_event_id in (None, series_id)]
    replaced = {series.key(e.original_start) for e in own if e.original_start is not None}
    slack = len(replaced) + len(recurrence_set.exdates) + 1
    duration = _duration(start, end)
    low_at, high_at = window_start, window_end
    if days is not None and series.all_day:  # the days' bounds in the series' zone
        low_at = datetime.combine(days.first, time(), tzinfo=series.tz)
        high_at = datetime.combine(days.end, time(), tzinfo=series.tz)
    search_from = _plus(low_at, -duration)
    if not_before is not None:
        # a day sorts at midnight UTC: its wall midnight may be up to a day earlier
        floor = _plus(not_before, -timedelta(days=1)) if series.all_day else not_before
        search_from = max(search_from, floor)
    candidates, cut = compiled.starts_in_window(search_from, high_at, max_instances + slack)
    if days is not None and series.all_day:
        starts = [
            value
            for value in candidates
            if series.key(value) not in replaced
            and value.day is not None
            and all_day_in_window(value.day, value.day + duration, days)
        ]
    else:
        starts = [
            value
            for value in candidates
            if series.key(value) not in replaced
            and _span_overlaps(value, duration, fallback, window_start, window_end)
        ]
    live = [
        e
        for e in own
        if e.status != EventStatus.CANCELLED and _in_window(e, window_start, window_end, days)
    ]
    if not_before is not None:
        starts = [value for value in starts if _sorts_at(value) >= not_before]
        live = [e for e in live if _sorts_at(e.start) >= not_before]
    complete = not cut and not recurrence_set.exrules
    if len(starts) + len(live) > max_instances:
        complete = False
        starts, live = _earliest(starts, live, series_id, fallback, max_instances)
    return Occurrences(tuple(starts), tuple(live), complete)


def _sorts_at(value: EventTime) -> datetime:
    """The instant a list sorts `value` by: its start, midnight UTC for a day."""
    if value.day is not None:
        return datetime.combine(value.day, time(), tzinfo=UTC)
    assert value.instant is not None
    return value.instant


def rule_walls(
    rule_line: str,
    start: EventTime,
    *,
    low: datetime,
    limit: int,
    high: datetime | None = None,
    fallback_zone: str = "UTC",
) -> tuple[datetime, ...]:
    """The first `limit` wall-clock starts (naive, in the series' zone; midnights for
    all-day series) that one RRULE line of a series starting at `start` generates at or
    after the wall time `low` (and before `high`), in order: the nominal times, before a
    wall time in a DST gap is moved forward, and the start only where the rule itself
    generates it (no RDATE, EXDATE or EXRULE). For splitting a series
    (`calsync.domain.splits`).

    Raises `ValidationError` for a line that does not parse, and `OverBudget` where the
    evaluation would take more than `WORK_LIMIT` (a rule that validated with this start
    does not, for its COUNT or for a window of `MAX_WINDOW` from `low`)."""
    rule = parse_recurrence([rule_line]).rrules[0]
    series = _Series(start, fallback_zone)
    found = _take(series.rule_starts(rule, low, high, WorkBudget()), limit)
    return tuple(w for w in found if high is None or w < high)


def instance_of(master: Event, series_id: str, start: EventTime) -> Event:
    """The generated instance of series `master` (named `series_id`) that starts at `start`:
    a copy of the master with the instance's start and end, as `expand` returns it."""
    return _instance(master, series_id, start, master.duration)


def _duration(start: EventTime, end: EventTime) -> timedelta:
    if start.day is not None and end.day is not None:
        return end.day - start.day
    assert start.instant is not None
    assert end.instant is not None
    return end.instant - start.instant


def _span_overlaps(
    start: EventTime,
    duration: timedelta,
    fallback: str,
    window_start: datetime,
    window_end: datetime,
) -> bool:
    """`_in_window` (without days) of the instance starting at `start`, without building it."""
    begin = start.start_in(fallback)
    if start.day is not None:
        end = datetime.combine(start.day + duration, time(), tzinfo=zone(fallback))
    else:
        end = begin + duration
    return timed_in_window(begin, end, window_start, window_end)


def _earliest(
    starts: list[EventTime], live: list[Event], series_id: str, fallback: str, limit: int
) -> tuple[list[EventTime], list[Event]]:
    """The first `limit` of generated starts and exceptions, in `expand`'s order."""
    keyed: list[tuple[datetime, str, EventTime | Event]] = [
        (s.start_in(fallback), instance_id(series_id, s), s) for s in starts
    ]
    keyed += [(e.start.start_in(fallback), e.provider_event_id or "", e) for e in live]
    keyed.sort(key=lambda item: (item[0], item[1]))
    kept = [item[2] for item in keyed[:limit]]
    return (
        [v for v in kept if isinstance(v, EventTime)],
        [v for v in kept if isinstance(v, Event)],
    )


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A series' parsed rules and evaluation context; `counted` fills up with the starts
    of its COUNT rules as they are first needed (a plain dict: two threads that race
    compute the same value)."""

    recurrence: RecurrenceSet
    series: _Series
    counted: dict[RecurrenceRule, tuple[tuple[datetime, ...], bool]] = dataclasses.field(
        default_factory=dict
    )
    windows: dict[tuple[datetime, datetime, int], tuple[tuple[EventTime, ...], bool]] = (
        dataclasses.field(default_factory=dict)
    )

    def starts_in_window(
        self, low_at: datetime, high_at: datetime, limit: int
    ) -> tuple[tuple[EventTime, ...], bool]:
        """`_Series.starts_in_window` of these rules, remembered for the last few windows
        (a pure function of the rules and its arguments, so a remembered answer is the
        answer; an edited series has other rules, hence another `_Compiled`)."""
        key = (low_at, high_at, limit)
        found = self.windows.get(key)
        if found is None:
            starts, cut = self.series.starts_in_window(
                self.recurrence, low_at, high_at, limit, self.counted
            )
            found = (tuple(starts), cut)
            if len(starts) <= _MEMO_WINDOW_STARTS:
                with _WINDOWS_LOCK:
                    self.windows[key] = found
                    while len(self.windows) > _MEMO_WINDOWS:
                        del self.windows[next(iter(self.windows))]
        return found


_COMPILED_CACHE_SIZE: Final = 2048
_MEMO_COUNT: Final = 1000
"""COUNT rules up to this many instances keep their starts in the cache: at most 2048
series x 1000 starts."""
_MEMO_WINDOWS: Final = 2
_MEMO_WINDOW_STARTS: Final = 200
"""Each cached series remembers the starts of its last 2 windows, if at most 200 each
(the same month asked for again, and the first part of it that a first page expands)."""
_WINDOWS_LOCK: Final = threading.Lock()


@lru_cache(maxsize=_COMPILED_CACHE_SIZE)
def _plan(rule: RecurrenceRule, dtstart: datetime) -> Plan:
    """`rule_plans.plan` of a rule of a series starting at `dtstart` (a wall-clock time),
    kept: it is asked for on every evaluation. Raises `ValidationError` (not kept)."""
    return plan_rule(rule, dtstart)


@lru_cache(maxsize=_COMPILED_CACHE_SIZE)
def _compiled(
    lines: tuple[str, ...], start: EventTime, fallback: str, max_count: int
) -> _Compiled | tuple[str, str]:
    """The validated rules and evaluation context of a series, or the (field, message) of
    its `ValidationError` (kept as values: a cached exception would grow a traceback each
    time it is raised again). Pure: the result depends only on the arguments."""
    checked = _checked(lines, start, max_count)
    if isinstance(checked, tuple):
        return checked
    return _Compiled(checked.recurrence, _Series(start, fallback))


def clear_rule_cache() -> None:
    """Forget every cached parsed rule set and plan (tests; never needed for correctness)."""
    _compiled.cache_clear()
    _checked.cache_clear()
    _plan.cache_clear()


def series_end(master: Event, *, max_count: int = DEFAULT_MAX_COUNT) -> datetime | None:
    """An instant no instance of the series ends after, or `None` if it has no end.

    A single event ends at its end. A series with a rule without COUNT or UNTIL has no
    end. Otherwise the bound is exact for COUNT rules and RDATEs and may be later than
    the last instance for UNTIL (the instance starting at UNTIL plus the duration): it is
    meant for range queries, which may over-select but never miss. Raises
    `ValidationError` for recurrence lines that do not validate.
    """
    fallback = master.timezone or "UTC"
    if not master.recurrence:
        return master.end.start_in(fallback)
    checked = _expandable(master.recurrence, master.start, max_count)
    recurrence = checked.recurrence
    series = _Series(master.start, fallback)
    ends: list[datetime] = [master.end.start_in(fallback)]
    for rule in recurrence.rrules:
        if rule.count is None and rule.until is None:
            return None
        if rule.until is not None:
            until = series.to_event_time(series.naive_until(rule)).start_in(fallback)
            ends.append(_plus(_plus(until, master.duration), timedelta(days=1)))
            continue
        last = checked.last_counted.get(rule)  # a COUNT rule: its last start, from validation
        if last is not None:
            ends.append(series.to_event_time(last).start_in(fallback) + master.duration)
    for value in recurrence.rdates:
        start = series.to_event_time(series.naive(value)).start_in(fallback)
        ends.append(start + master.duration)
    return max(ends)


def _instance(master: Event, series_id: str, start: EventTime, duration: timedelta) -> Event:
    # Unchecked construction (`trusted`): the master is a valid event, `start` one of its
    # generated starts (in its zone), and the end the same span later in the end's zone.
    if start.day is not None:
        end = EventTime.trusted(start.day + duration, None, None)
    else:
        assert start.instant is not None
        assert master.end.timezone is not None
        end = EventTime.trusted(None, start.instant + duration, master.end.timezone)
    return Event.trusted(
        **{
            **vars(master),
            "start": start,
            "end": end,
            "recurrence": (),
            "recurring_event_id": series_id,
            "original_start": start,
            "provider_event_id": instance_id(series_id, start),
            "calsync_id": None,
        }
    )


def _in_window(
    event: Event, window_start: datetime, window_end: datetime, days: DayRange | None
) -> bool:
    """Whether `event` falls in the window: by its dates against `days` (when given) if
    it is all-day, else as its instants (all-day ones in its own zone)."""
    if days is not None and event.start.day is not None and event.end.day is not None:
        return all_day_in_window(event.start.day, event.end.day, days)
    fallback = event.timezone or "UTC"
    begin = event.start.start_in(fallback)
    end = event.end.start_in(fallback)
    return timed_in_window(begin, end, window_start, window_end)


class _Series:
    """Evaluates rules of one series on naive wall-clock times in the series' zone.

    Immutable after construction (it is shared between threads through `_compiled`)."""

    __slots__ = ("all_day", "dtstart", "timezone", "tz")

    def __init__(self, start: EventTime, fallback_zone: str = "UTC") -> None:
        self.all_day = start.is_all_day
        if start.day is not None:
            self.tz: tzinfo = zone(fallback_zone)
            self.dtstart = datetime.combine(start.day, time())
            self.timezone: str | None = None
        else:
            assert start.timezone is not None
            self.tz = zone(start.timezone)
            self.dtstart = start.local().replace(tzinfo=None)
            self.timezone = start.timezone

    def key(self, value: EventTime) -> date | datetime:
        """What identifies an instance: its date (all-day) or its UTC instant."""
        if value.day is not None:
            return value.day
        assert value.instant is not None
        return value.local().date() if self.all_day else value.instant

    def to_event_time(self, naive: datetime) -> EventTime:
        """The start at wall-clock time `naive` of this series. Built unchecked (once per
        instance): the zone is the start's, checked when it was built; the one check left
        is `EventTime`'s own for an instant beyond year 1 or 9999 in UTC."""
        if self.all_day:
            return EventTime.trusted(naive.date(), None, None)
        try:
            instant = naive.replace(tzinfo=self.tz, fold=0).astimezone(UTC)
        except OverflowError:
            raise ValidationError("start", "is outside the dates calsync supports") from None
        return EventTime.trusted(None, instant, self.timezone)

    def naive(self, value: DateValue) -> datetime:
        """A recurrence date value as a wall-clock time of this series."""
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return value
            return value.astimezone(self.tz).replace(tzinfo=None)
        return datetime.combine(value, self.dtstart.time())

    def naive_bounds(self, start: datetime, end: datetime) -> tuple[datetime, datetime]:
        """Wall-clock bounds that contain every local time of the instants in `[start, end)`."""
        low = min(self._wall(start + shift) - shift for shift in _NEAR)
        high = max(self._wall(end + shift) - shift for shift in _NEAR)
        if self.all_day:
            low = datetime.combine(low.date(), time())
            high = datetime.combine(high.date(), time()) + timedelta(days=1)
        return low, high

    def _wall(self, instant: datetime) -> datetime:
        return instant.astimezone(self.tz).replace(tzinfo=None)

    def starts_in_window(
        self,
        recurrence: RecurrenceSet,
        low_at: datetime,
        high_at: datetime,
        limit: int,
        counted: dict[RecurrenceRule, tuple[tuple[datetime, ...], bool]] | None = None,
    ) -> tuple[list[EventTime], bool]:
        """The starts from `low_at` to `high_at`, and whether `limit` cut a rule short.

        With `counted`, the starts of a COUNT rule are computed once from the series'
        start and kept there (see `_counted_starts`) instead of again on every call.
        The rules' work together stays within `WORK_LIMIT` (`OverBudget` otherwise, which
        `validate_recurrence` rules out for windows of `MAX_WINDOW` and `MAX_INSTANCES`)."""
        budget = WorkBudget()
        low, high = self.naive_bounds(low_at, high_at)
        # wall times from `low` up to `sure` may be instants before `low_at` (the bounds
        # allow for a change of offset): they do not count towards `limit`, so that a
        # rule is never cut short before `limit` starts from `low_at` on (an hour of a
        # SECONDLY rule would be 3,600 of them)
        sure = self.naive_bounds(low_at, low_at)[1]
        found: set[datetime] = set()
        cut = False
        for rule in recurrence.rrules:
            if counted is not None and rule.count is not None and rule.count <= _MEMO_COUNT:
                starts = self._counted_starts(rule, low, high, counted, budget)
            else:
                starts = self.rule_starts(rule, low, high, budget)
            taken, full = self._take_from(starts, limit, low_at, sure)
            cut = cut or full
            found.update(taken)
        found.update(w for w in (self.naive(v) for v in recurrence.rdates) if low <= w <= high)
        if low <= self.dtstart <= high:
            found.add(self.dtstart)
        excluded: set[datetime] = set()
        for rule in recurrence.exrules:
            excluded.update(_take(self.rule_starts(rule, low, high, budget), limit + len(found)))
        # One instance per start (RFC 5545 3.8.5.3: "Where duplicate instances are
        # generated ..., only one recurrence is considered"): a wall time in a
        # spring-forward gap is the instant of a real one an hour later, and an all-day
        # series' starts are days.
        values: list[EventTime] = []
        seen: set[date | datetime] = set()
        for wall in sorted(found):
            if wall in excluded:
                continue
            value = self.to_event_time(wall)
            if self.key(value) not in seen:
                seen.add(self.key(value))
                values.append(value)
        exdates = {self._exdate_key(v) for v in recurrence.exdates}
        exdays = {v for v in recurrence.exdates if not isinstance(v, datetime)}
        kept = [
            v
            for v in values
            if self.key(v) not in exdates and (self.all_day or _local_day(v) not in exdays)
        ]
        return kept, cut

    def _take_from(
        self, values: Iterator[datetime], limit: int, low_at: datetime, sure: datetime
    ) -> tuple[list[datetime], bool]:
        """The values up to the `limit`-th one that starts at or after `low_at` (wall
        times from `sure` on certainly do), and whether there were that many."""
        result: list[datetime] = []
        counted = 0
        for value in values:
            result.append(value)
            if value >= sure or value.replace(tzinfo=self.tz, fold=0) >= low_at:
                counted += 1
                if counted >= limit:
                    return result, True
        return result, False

    def _exdate_key(self, value: DateValue) -> date | datetime:
        if self.all_day:
            return self.naive(value).date()
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                # its own instant: through wall time, the second 01:30 of a fall-back
                # day would become the first (fold=0) and exclude that instance instead
                return value.astimezone(UTC)
            return value.replace(tzinfo=self.tz, fold=0).astimezone(UTC)
        return value  # a whole day excluded on a timed series: matched by local date

    def _counted_starts(
        self,
        rule: RecurrenceRule,
        low: datetime,
        high: datetime,
        counted: dict[RecurrenceRule, tuple[tuple[datetime, ...], bool]],
        budget: WorkBudget,
    ) -> Iterator[datetime]:
        """`rule_starts(rule, low, high)` of a COUNT rule, from its starts computed once
        (a COUNT rule is always evaluated from the series' start) and kept in `counted`:
        up to the first start after the highest `high` asked for so far, or all of them
        (`True`). They ascend, as `rule_starts` yields them, so a slice is the same."""
        entry = counted.get(rule)
        if entry is None or (not entry[1] and entry[0][-1] <= high):
            prefix: list[datetime] = []
            complete = True
            for value in self.rule_starts(rule, datetime.min, None, budget):
                prefix.append(value)
                if value > high:
                    complete = False
                    break
            entry = (tuple(prefix), complete)
            counted[rule] = entry
        values = entry[0]
        for value in values[bisect_left(values, low) :]:
            if value > high:
                return
            yield value

    def rule_starts(
        self, rule: RecurrenceRule, low: datetime, high: datetime | None, budget: WorkBudget
    ) -> Iterator[datetime]:
        """Wall-clock starts of `rule` from `low` to `high` (inclusive), in order, their
        work charged to `budget` (`OverBudget` when it runs out)."""
        plan = _plan(rule, self.dtstart)
        remaining = rule.count
        until = self._until(rule)
        begin = self.dtstart if remaining is not None else plan.shifted(low)
        stop = _plus(until, _UNTIL_SLACK) if until is not None else None
        # a wall time two days before UNTIL's is before its instant whatever the offsets
        # (they differ by 26 hours at most), so only later ones need the zone's answer
        surely = _plus(until, -_UNTIL_SLACK) if until is not None else datetime.max
        for position, value in enumerate(plan.candidates(begin, stop, budget)):
            if remaining is not None:
                if position == 0 and value != self.dtstart:
                    remaining -= 1  # the start always counts as the first instance
                if remaining <= 0:
                    return
                remaining -= 1
            if until is not None and value > surely and not self._until_allows(value, until, rule):
                continue  # not `return`: a wall time in a DST gap maps past later ones
            if high is not None and value > high:
                return
            if value >= low:
                yield value

    def naive_until(self, rule: RecurrenceRule) -> datetime:
        """A rule's UNTIL as a wall-clock time of this series. The rule must have one."""
        until = self._until(rule)
        assert until is not None
        return until

    def _until(self, rule: RecurrenceRule) -> datetime | None:
        if rule.until is None:
            return None
        if isinstance(rule.until, datetime):
            return self.naive(rule.until)
        return datetime.combine(rule.until, time.max)

    def _until_allows(self, value: datetime, until: datetime, rule: RecurrenceRule) -> bool:
        if isinstance(rule.until, datetime) and rule.until.tzinfo is not None and not self.all_day:
            return value.replace(tzinfo=self.tz, fold=0) <= rule.until
        return value <= until


_NEAR: Final = (timedelta(days=-1), timedelta(0), timedelta(days=1))


def _local_day(value: EventTime) -> date:
    return value.local().date()


def _take(values: Iterator[datetime], limit: int) -> list[datetime]:
    result: list[datetime] = []
    for value in values:
        result.append(value)
        if len(result) >= limit:
            break
    return result


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


_SATURATE_LOW: Final = datetime(1, 1, 8)
_SATURATE_HIGH: Final = datetime(9999, 12, 25)
_SAFE_YEARS: Final = (3, 9997)
_SAFE_DELTA: Final = timedelta(days=366)
"""A moment in these years moved by less than this stays a week inside the ends."""


def _plus(moment: datetime, delta: timedelta) -> datetime:
    """`moment + delta`, held a week inside the ends of the calendar (0001-01-08,
    9999-12-25, as wall times of `moment`'s zone) when it would pass them: evaluation
    still shifts a bound by a day or a zone offset. Only bounds of windows and of range
    queries go through it: held at the top, they over-select; held at the bottom, only
    an instance in the first week of year 1 could be missed (listings never ask there)."""
    if _SAFE_YEARS[0] <= moment.year <= _SAFE_YEARS[1] and -_SAFE_DELTA < delta < _SAFE_DELTA:
        return moment + delta  # nowhere near the ends: no bound to hold (the usual case)
    low, high = (bound.replace(tzinfo=moment.tzinfo) for bound in (_SATURATE_LOW, _SATURATE_HIGH))
    if delta >= timedelta(0):
        return high if moment >= high or delta >= high - moment else moment + delta
    return low if moment <= low or -delta >= moment - low else moment + delta


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
