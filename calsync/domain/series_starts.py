"""A series' rules -> its wall-clock starts: the evaluation `calsync.domain.recurrence`
expands with and `calsync.domain.recurrence_checks` validates with.

`Series` evaluates the rules of one series on naive wall-clock times of the series' zone
(RFC 5545: a 09:00 Europe/Berlin rule stays at 09:00 local; a wall time in a DST gap
moves forward, a repeated one takes the first), within a `WorkBudget` (`OverBudget`
when it runs out). `rule_plan` keeps each rule's `rule_plans.Plan`; `plus` moves a
bound without leaving the calendar. Pure, and shared between threads.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Final

from calsync.domain.errors import ValidationError
from calsync.domain.models import EventTime
from calsync.domain.rfc5545 import DateValue, RecurrenceRule, RecurrenceSet
from calsync.domain.rule_plans import Plan, WorkBudget
from calsync.domain.rule_plans import plan as plan_rule
from calsync.domain.timezones import zone

__all__ = ["MEMO_COUNT", "UNTIL_SLACK", "Series", "plus", "rule_plan", "take"]

UNTIL_SLACK: Final = timedelta(days=2)
"""How far past UNTIL starts are still looked at: a wall time in a DST gap (or a skipped
day) maps to an instant later than the wall times after it."""
MEMO_COUNT: Final = 1000
"""COUNT rules up to this many instances keep their starts in the cache: at most 2048
series x 1000 starts."""
_PLAN_CACHE_SIZE: Final = 2048


@lru_cache(maxsize=_PLAN_CACHE_SIZE)
def rule_plan(rule: RecurrenceRule, dtstart: datetime) -> Plan:
    """`rule_plans.plan` of a rule of a series starting at `dtstart` (a wall-clock time),
    kept: it is asked for on every evaluation. Raises `ValidationError` (not kept)."""
    return plan_rule(rule, dtstart)


class Series:
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
            if counted is not None and rule.count is not None and rule.count <= MEMO_COUNT:
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
            excluded.update(take(self.rule_starts(rule, low, high, budget), limit + len(found)))
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
        plan = rule_plan(rule, self.dtstart)
        remaining = rule.count
        until = self._until(rule)
        begin = self.dtstart if remaining is not None else plan.shifted(low)
        stop = plus(until, UNTIL_SLACK) if until is not None else None
        # a wall time two days before UNTIL's is before its instant whatever the offsets
        # (they differ by 26 hours at most), so only later ones need the zone's answer
        surely = plus(until, -UNTIL_SLACK) if until is not None else datetime.max
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


def take(values: Iterator[datetime], limit: int) -> list[datetime]:
    result: list[datetime] = []
    for value in values:
        result.append(value)
        if len(result) >= limit:
            break
    return result


_SATURATE_LOW: Final = datetime(1, 1, 8)
_SATURATE_HIGH: Final = datetime(9999, 12, 25)
_SAFE_YEARS: Final = (3, 9997)
_SAFE_DELTA: Final = timedelta(days=366)
"""A moment in these years moved by less than this stays a week inside the ends."""


def plus(moment: datetime, delta: timedelta) -> datetime:
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
