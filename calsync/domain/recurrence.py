"""Recurring series: bounded expansion into instances, and a series' end.

The work is split by the way data flows (decision HL3): `recurrence_checks` turns
recurrence lines into a validated series (`validate_recurrence`, `recurrence_problem`,
re-exported here with its date bounds), `series_starts` turns a series' rules into
wall-clock starts, `series_instances` a start into an instance (`instance_id`,
`instance_of`, re-exported here); this module turns a window into what the series shows
there (`occurrences`, `expand`) and keeps the compiled series of a process.

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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Final

from calsync.domain.errors import ValidationError
from calsync.domain.models import Event, EventStatus, EventTime
from calsync.domain.recurrence_checks import (
    DEFAULT_MAX_INSTANCES,
    EARLIEST_RULE_DATE,
    LATEST_RULE_DATE,
    checked_series,
    expandable_series,
    recurrence_problem,
    validate_recurrence,
)
from calsync.domain.rfc5545 import (
    DEFAULT_MAX_COUNT,
    RecurrenceRule,
    RecurrenceSet,
    parse_recurrence,
)
from calsync.domain.rule_plans import WorkBudget
from calsync.domain.series_instances import instance_id, instance_of
from calsync.domain.series_starts import Series, plus, rule_plan, take
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

MAX_INSTANCES_LIMIT: Final = 10_000


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
    search_from, high_at = _search_bounds(
        series, duration, window_start, window_end, days=days, not_before=not_before
    )
    candidates, cut = compiled.starts_in_window(search_from, high_at, max_instances + slack)
    candidates = tuple(value for value in candidates if series.key(value) not in replaced)
    starts = _starts_shown(candidates, series, duration, fallback, window_start, window_end, days)
    live = [
        e
        for e in own
        if e.status != EventStatus.CANCELLED and _in_window(e, window_start, window_end, days)
    ]
    complete = not cut and not recurrence_set.exrules
    return _page(starts, live, complete, series_id, fallback, max_instances, not_before)


def _search_bounds(
    series: Series,
    duration: timedelta,
    window_start: datetime,
    window_end: datetime,
    *,
    days: DayRange | None,
    not_before: datetime | None,
) -> tuple[datetime, datetime]:
    """The instants between which `occurrences` looks for starts: an instance that
    overlaps the window (or `days`, in the series' zone) starts up to its `duration`
    before it; none that sorts before `not_before` is wanted."""
    low_at, high_at = window_start, window_end
    if days is not None and series.all_day:  # the days' bounds in the series' zone
        low_at = datetime.combine(days.first, time(), tzinfo=series.tz)
        high_at = datetime.combine(days.end, time(), tzinfo=series.tz)
    search_from = plus(low_at, -duration)
    if not_before is not None:
        # a day sorts at midnight UTC: its wall midnight may be up to a day earlier
        floor = plus(not_before, -timedelta(days=1)) if series.all_day else not_before
        search_from = max(search_from, floor)
    return search_from, high_at


def _starts_shown(
    candidates: Iterable[EventTime],
    series: Series,
    duration: timedelta,
    fallback: str,
    window_start: datetime,
    window_end: datetime,
    days: DayRange | None,
) -> list[EventTime]:
    """The `candidates` whose instance (`duration` long) falls in the window: by dates
    against `days` for an all-day series when given, else as instants (all-day ones
    in `fallback`)."""
    if days is not None and series.all_day:
        return [
            value
            for value in candidates
            if value.day is not None and all_day_in_window(value.day, value.day + duration, days)
        ]
    return [
        value
        for value in candidates
        if _span_overlaps(value, duration, fallback, window_start, window_end)
    ]


def _page(
    starts: list[EventTime],
    live: list[Event],
    complete: bool,
    series_id: str,
    fallback: str,
    limit: int,
    not_before: datetime | None,
) -> Occurrences:
    """`Occurrences` of the starts and live exceptions that sort from `not_before` on, the
    first `limit` of them (not `complete` if more were found)."""
    if not_before is not None:
        starts = [value for value in starts if _sorts_at(value) >= not_before]
        live = [e for e in live if _sorts_at(e.start) >= not_before]
    if len(starts) + len(live) > limit:
        complete = False
        starts, live = _earliest(starts, live, series_id, fallback, limit)
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
    series = Series(start, fallback_zone)
    found = take(series.rule_starts(rule, low, high, WorkBudget()), limit)
    return tuple(w for w in found if high is None or w < high)


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
    series: Series
    counted: dict[RecurrenceRule, tuple[tuple[datetime, ...], bool]] = dataclasses.field(
        default_factory=dict
    )
    windows: dict[tuple[datetime, datetime, int], tuple[tuple[EventTime, ...], bool]] = (
        dataclasses.field(default_factory=dict)
    )

    def starts_in_window(
        self, low_at: datetime, high_at: datetime, limit: int
    ) -> tuple[tuple[EventTime, ...], bool]:
        """`Series.starts_in_window` of these rules, remembered for the last few windows
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
_MEMO_WINDOWS: Final = 2
_MEMO_WINDOW_STARTS: Final = 200
"""Each cached series remembers the starts of its last 2 windows, if at most 200 each
(the same month asked for again, and the first part of it that a first page expands)."""
_WINDOWS_LOCK: Final = threading.Lock()


@lru_cache(maxsize=_COMPILED_CACHE_SIZE)
def _compiled(
    lines: tuple[str, ...], start: EventTime, fallback: str, max_count: int
) -> _Compiled | tuple[str, str]:
    """The validated rules and evaluation context of a series, or the (field, message) of
    its `ValidationError` (kept as values: a cached exception would grow a traceback each
    time it is raised again). Pure: the result depends only on the arguments."""
    checked = checked_series(lines, start, max_count)
    if isinstance(checked, tuple):
        return checked
    return _Compiled(checked.recurrence, Series(start, fallback))


def clear_rule_cache() -> None:
    """Forget every cached parsed rule set and plan (tests; never needed for correctness)."""
    _compiled.cache_clear()
    checked_series.cache_clear()
    rule_plan.cache_clear()


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
    checked = expandable_series(master.recurrence, master.start, max_count)
    recurrence = checked.recurrence
    series = Series(master.start, fallback)
    ends: list[datetime] = [master.end.start_in(fallback)]
    for rule in recurrence.rrules:
        if rule.count is None and rule.until is None:
            return None
        if rule.until is not None:
            until = series.to_event_time(series.naive_until(rule)).start_in(fallback)
            ends.append(plus(plus(until, master.duration), timedelta(days=1)))
            continue
        last = checked.last_counted.get(rule)  # a COUNT rule: its last start, from validation
        if last is not None:
            ends.append(series.to_event_time(last).start_in(fallback) + master.duration)
    for value in recurrence.rdates:
        start = series.to_event_time(series.naive(value)).start_in(fallback)
        ends.append(start + master.duration)
    return max(ends)


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
