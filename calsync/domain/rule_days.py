"""A rule's BY-parts -> the dateutil generator of its days and the filter of the rest.

`RuleParts.pinned` makes dateutil's defaults from the start explicit; `split_days`
chooses which day BY-parts (a `_Family`: parts that leave no full period empty) the
`Generator` keeps, so that a period's candidates are bounded, and leaves the others to a
`DayFilter`. `calsync.domain.rule_plans` prices the result. Pure.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Final

from dateutil import rrule as du

from calsync.domain.errors import NeverOccurs, ValidationError
from calsync.domain.rfc5545 import FREQUENCIES, RecurrenceRule, WeekdayRule

__all__ = ["DAYS_PER_PERIOD", "DayFilter", "DaySplit", "Generator", "RuleParts", "split_days"]

_FIELD: Final = "recurrence"
_DU_FREQ: Final = {name: getattr(du, name) for name in FREQUENCIES}
_ALL_WEEKDAYS: Final = tuple(du.weekday(day) for day in range(7))
_MIN_MONTH_DAYS: Final = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
DAYS_PER_PERIOD: Final = {"YEARLY": 366, "MONTHLY": 31, "WEEKLY": 7}
_MONTHDAY: Final = frozenset({"bymonthday"})
_WEEKDAY: Final = frozenset({"byday"})
_YEARDAY: Final = frozenset({"byyearday"})
_WEEKNO: Final = frozenset({"byweekno"})


@dataclass(frozen=True, slots=True)
class DayFilter:
    """The day BY-parts taken out of the generator, tested as dateutil tests them.

    Empty parts test nothing. `nth` are BYDAY entries with a number, counted within the
    month (`nth_in_month`) or within the year; dateutil requires a day to pass the plain
    weekdays *and* the numbered ones when a BYDAY holds both, and so does this.
    """

    months: frozenset[int] = frozenset()
    monthdays: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()
    nth: tuple[tuple[int, int], ...] = ()
    nth_in_month: bool = True
    yeardays: frozenset[int] = frozenset()

    @property
    def empty(self) -> bool:
        return not (self.months or self.monthdays or self.weekdays or self.nth or self.yeardays)

    def test(self, moment: datetime) -> bool:
        """Whether the day of `moment` passes every part."""
        return self(moment.date())

    def __call__(self, day: date) -> bool:
        if self.months and day.month not in self.months:
            return False
        if self.monthdays:
            length = calendar.monthrange(day.year, day.month)[1]
            if day.day not in self.monthdays and day.day - length - 1 not in self.monthdays:
                return False
        if self.weekdays and day.weekday() not in self.weekdays:
            return False
        if self.nth and not self._nth_matches(day):
            return False
        if self.yeardays:
            yearday = day.timetuple().tm_yday
            length = 366 if calendar.isleap(day.year) else 365
            if yearday not in self.yeardays and yearday - length - 1 not in self.yeardays:
                return False
        return True

    def _nth_matches(self, day: date) -> bool:
        if self.nth_in_month:
            index, last = day.day - 1, calendar.monthrange(day.year, day.month)[1] - 1
        else:
            index = day.timetuple().tm_yday - 1
            last = 365 if calendar.isleap(day.year) else 364
        weekday = day.weekday()
        for wanted, n in self.nth:
            if wanted != weekday:
                continue
            if (n > 0 and index // 7 == n - 1) or (n < 0 and (last - index) // 7 == -n - 1):
                return True
        return False


@dataclass(frozen=True, slots=True)
class Generator:
    """The dateutil rule a `Plan` iterates: every argument but the start and the end."""

    freq: str
    interval: int
    wkst: int
    bymonth: tuple[int, ...] = ()
    bymonthday: tuple[int, ...] = ()
    byweekday: tuple[du.weekday, ...] = ()
    byyearday: tuple[int, ...] = ()
    byweekno: tuple[int, ...] = ()
    byhour: tuple[int, ...] = ()
    byminute: tuple[int, ...] = ()
    bysecond: tuple[int, ...] = ()
    bysetpos: tuple[int, ...] = ()

    def build(self, begin: datetime, until: datetime | None) -> du.rrule:
        """The dateutil rule from `begin` (its dtstart) to `until`."""
        return du.rrule(
            _DU_FREQ[self.freq],
            dtstart=begin,
            interval=self.interval,
            wkst=self.wkst,
            until=until,
            bysetpos=self.bysetpos or None,
            bymonth=self.bymonth or None,
            bymonthday=self.bymonthday or None,
            byyearday=self.byyearday or None,
            byweekno=self.byweekno or None,
            byweekday=self.byweekday or None,
            byhour=self.byhour or None,
            byminute=self.byminute or None,
            bysecond=self.bysecond or None,
            cache=False,
        )


@dataclass(frozen=True, slots=True)
class RuleParts:
    """A rule's parts with dateutil's defaults from the start made explicit."""

    freq: str
    interval: int
    wkst: int
    bymonth: tuple[int, ...]
    bymonthday: tuple[int, ...]
    weekdays: tuple[int, ...]
    nth: tuple[tuple[int, int], ...]
    byyearday: tuple[int, ...]
    byweekno: tuple[int, ...]
    byhour: tuple[int, ...]
    byminute: tuple[int, ...]
    bysecond: tuple[int, ...]
    bysetpos: tuple[int, ...]

    @classmethod
    def pinned(cls, rule: RecurrenceRule, dtstart: datetime) -> RuleParts:
        """dateutil derives missing BY-parts from its dtstart; they are pinned from the real
        start so that a generator started later (at a `Plan.shifted` begin) is the same
        rule."""
        bymonth, bymonthday = rule.bymonth, rule.bymonthday
        byday: tuple[WeekdayRule, ...] = rule.byday
        if not (rule.byweekno or rule.byyearday or rule.bymonthday or rule.byday):
            if rule.freq == "YEARLY":
                bymonth = bymonth or (dtstart.month,)
                bymonthday = (dtstart.day,)
            elif rule.freq == "MONTHLY":
                bymonthday = (dtstart.day,)
            elif rule.freq == "WEEKLY":
                byday = (WeekdayRule(dtstart.weekday()),)
        rank = FREQUENCIES.index
        byhour = rule.byhour or ((dtstart.hour,) if rank(rule.freq) < rank("HOURLY") else ())
        byminute = rule.byminute or (
            (dtstart.minute,) if rank(rule.freq) < rank("MINUTELY") else ()
        )
        bysecond = rule.bysecond or (
            (dtstart.second,) if rank(rule.freq) < rank("SECONDLY") else ()
        )
        # dateutil reads a numbered weekday as a plain one below MONTHLY
        numbered = rule.freq in ("YEARLY", "MONTHLY")
        weekdays = tuple(sorted({r.weekday for r in byday if r.nth is None or not numbered}))
        nth = tuple(sorted((r.weekday, r.nth) for r in byday if r.nth is not None and numbered))
        # A numbered weekday counts within the month for MONTHLY and for YEARLY with
        # BYMONTH, where a number past 5 names no day: dateutil indexes its masks with it
        # and fails (IndexError) or matches nothing, so it is dropped here; a BYDAY whose
        # numbered entries all name no day matches nothing (dateutil wants a day to match
        # one of them).
        most = 5 if rule.freq == "MONTHLY" or bymonth else 53
        possible = tuple((day, n) for day, n in nth if abs(n) <= most)
        if nth and not possible:
            raise NeverOccurs(
                _FIELD,
                f"the rule never occurs: no month has the numbered weekdays of {rule.source!r}",
            )
        nth = possible
        return cls(
            freq=rule.freq,
            interval=rule.interval,
            wkst=rule.wkst,
            bymonth=tuple(sorted(set(bymonth))),
            bymonthday=tuple(sorted(set(bymonthday))),
            weekdays=weekdays,
            nth=nth,
            byyearday=rule.byyearday,
            byweekno=rule.byweekno,
            byhour=byhour,
            byminute=byminute,
            bysecond=bysecond,
            bysetpos=rule.bysetpos,
        )


@dataclass(frozen=True, slots=True)
class _Family:
    """Day BY-parts (`names`, one or two) that leave no full period empty: the
    generator's arguments for them, the fewest and most days they give a full period, and
    whether BYMONTH may stay beside them (their days are counted within its months)."""

    names: frozenset[str]
    least: int
    most: int
    with_months: bool
    bymonthday: tuple[int, ...] = ()
    byweekday: tuple[du.weekday, ...] = ()
    byyearday: tuple[int, ...] = ()
    byweekno: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class DaySplit:
    generator: Generator
    left_out: DayFilter
    least: int
    most: int


def split_days(parts: RuleParts) -> DaySplit:
    """The generator, the filter of the day BY-parts left out of it, and the fewest and
    most days the generator gives a full period (one day for DAILY and finer)."""
    generator = Generator(
        freq=parts.freq,
        interval=parts.interval,
        wkst=parts.wkst,
        byhour=parts.byhour,
        byminute=parts.byminute,
        bysecond=parts.bysecond,
        bysetpos=parts.bysetpos,
    )
    if parts.freq not in DAYS_PER_PERIOD:  # DAILY and finer: a day BY-part only removes days
        return DaySplit(generator, _left_out(parts, family=None, months=True), 1, 1)
    months = parts.bymonth if parts.freq == "YEARLY" else ()
    families = _families(parts, months)
    if parts.byweekno and not any("byweekno" in f.names for f in families):
        raise ValidationError(
            _FIELD, "BYWEEKNO needs a week from 1 to 52 or -1 to -52 (not every year has 53)"
        )
    # BYWEEKNO always stays in the generator: its test is not repeated here.
    forced = [f for f in families if "byweekno" in f.names]
    present = {
        name
        for name, values in (
            ("bymonthday", parts.bymonthday),
            ("byday", parts.weekdays + parts.nth),
            ("byyearday", parts.byyearday),
        )
        if values
    }
    # the parts that leave least to the filter, then the fewest candidates
    chosen = (
        forced[0]
        if forced
        else min(families, key=lambda f: (len(present - f.names), f.most), default=None)
    )
    if chosen is None:  # no part keeps every period: the generator yields every day
        least, most = _whole_period(parts.freq, months)
        keep_months = bool(months)
        generator = replace(generator, byweekday=_ALL_WEEKDAYS)
    else:
        least, most = chosen.least, chosen.most
        keep_months = bool(months) and chosen.with_months
        generator = replace(
            generator,
            bymonthday=chosen.bymonthday,
            byweekday=chosen.byweekday,
            byyearday=chosen.byyearday,
            byweekno=chosen.byweekno,
        )
    if keep_months:
        generator = replace(generator, bymonth=months)
    return DaySplit(generator, _left_out(parts, family=chosen, months=not keep_months), least, most)


def _whole_period(freq: str, months: tuple[int, ...]) -> tuple[int, int]:
    """The fewest and most days of a full period (of its BYMONTH months for YEARLY)."""
    if freq == "WEEKLY":
        return 7, 7
    if freq == "MONTHLY":
        return 28, 31
    if months:
        return sum(_MIN_MONTH_DAYS[m - 1] for m in months), 31 * len(months)
    return 365, 366


def _families(parts: RuleParts, months: tuple[int, ...]) -> list[_Family]:
    """The day BY-parts of a YEARLY, MONTHLY or WEEKLY rule that leave no full period
    empty on their own (within the BYMONTH `months` of a YEARLY rule where allowed)."""
    found = (
        _monthday_family(parts, months),
        _weekday_family(parts, months),
        _numbered_weekday_family(parts, months),
        _monthday_on_weekday_family(parts, months),
        _yearday_family(parts),
        _weekno_family(parts),
    )
    return [family for family in found if family is not None]


def _monthday_family(parts: RuleParts, months: tuple[int, ...]) -> _Family | None:
    """BYMONTHDAY alone, if it surely names a day of every month (of `months`)."""
    if not parts.bymonthday:
        return None
    if parts.freq == "YEARLY":
        lengths = [_MIN_MONTH_DAYS[m - 1] for m in months or range(1, 13)]
        least = sum(_distinct_within(parts.bymonthday, length) for length in lengths)
        most = len(lengths) * len(parts.bymonthday)
    else:  # MONTHLY (the parser refuses BYMONTHDAY with WEEKLY)
        least, most = _distinct_within(parts.bymonthday, 28), len(parts.bymonthday)
    if not least:
        return None
    return _Family(_MONTHDAY, least, most, True, bymonthday=parts.bymonthday)


def _weekday_family(parts: RuleParts, months: tuple[int, ...]) -> _Family | None:
    """Plain BYDAY weekdays (no numbered one): every week has them."""
    if not parts.weekdays or parts.nth:
        return None
    count = len(parts.weekdays)
    if parts.freq == "WEEKLY":
        least, most = count, count
    elif parts.freq == "MONTHLY":
        least, most = 4 * count, 5 * count
    elif months:
        least, most = 4 * count * len(months), 5 * count * len(months)
    else:
        least, most = 52 * count, 53 * count
    weekdays = tuple(du.weekday(d) for d in parts.weekdays)
    return _Family(_WEEKDAY, least, most, True, byweekday=weekdays)


def _numbered_weekday_family(parts: RuleParts, months: tuple[int, ...]) -> _Family | None:
    """Numbered BYDAY weekdays alone (both kinds: dateutil wants both, which may never
    be), if they surely name a day of every month or year."""
    if not parts.nth or parts.weekdays:
        return None
    in_month = parts.freq == "MONTHLY" or bool(months)
    ranges = len(months) if parts.freq == "YEARLY" and months else 1
    least = _distinct_within(tuple(n for _, n in parts.nth), 4 if in_month else 52)
    if not least:
        return None
    weekdays = tuple(du.weekday(d, n) for d, n in parts.nth)
    most = len(parts.nth) * ranges
    return _Family(_WEEKDAY, least * ranges, most, True, byweekday=weekdays)


def _monthday_on_weekday_family(parts: RuleParts, months: tuple[int, ...]) -> _Family | None:
    """Days of the month on given weekdays ("the last weekday on or before the 15th"):
    counted for each weekday a month can start (or end) on."""
    if not (parts.bymonthday and parts.weekdays) or parts.nth or parts.freq == "WEEKLY":
        return None
    lengths = [_MIN_MONTH_DAYS[m - 1] for m in months or range(1, 13)]
    if parts.freq == "MONTHLY":
        lengths = [28]
    least = sum(_on_weekdays(parts.bymonthday, parts.weekdays, n) for n in lengths)
    if not least:
        return None
    most = len(lengths) * len(parts.bymonthday)
    weekdays = tuple(du.weekday(d) for d in parts.weekdays)
    return _Family(
        _MONTHDAY | _WEEKDAY, least, most, True, bymonthday=parts.bymonthday, byweekday=weekdays
    )


def _yearday_family(parts: RuleParts) -> _Family | None:
    """BYYEARDAY, if it surely names a day of every year."""
    least = _distinct_within(parts.byyearday, 365) if parts.byyearday else 0
    if not least:
        return None
    return _Family(_YEARDAY, least, len(parts.byyearday), False, byyearday=parts.byyearday)


def _weekno_family(parts: RuleParts) -> _Family | None:
    """BYWEEKNO, if it names a week every year has."""
    # Every week from 1 to 52 (and -1 to -52) has at least 4 days in every year of the
    # 400-year cycle, for every WKST (tests/unit/domain/test_rule_plans.py checks it).
    weeks = _distinct_within(parts.byweekno, 52) if parts.byweekno else 0
    if not weeks:
        return None
    most = min(7 * len(parts.byweekno) + 14, 366)
    return _Family(_WEEKNO, 4 * weeks, most, False, byweekno=parts.byweekno)


def _on_weekdays(monthdays: tuple[int, ...], weekdays: tuple[int, ...], length: int) -> int:
    """How many distinct days of `monthdays` (within the first or last `length` days)
    surely fall on one of `weekdays` in a month of at least `length` days, whatever
    weekday it starts or ends on."""
    positive = [d for d in monthdays if 0 < d <= length]
    negative = [d for d in monthdays if -length <= d < 0]
    # the weekday of day d is (first + d - 1) % 7; of day -d, (last - d + 1) % 7
    first = min(sum((start + d - 1) % 7 in weekdays for d in positive) for start in range(7))
    last = min(sum((end + d + 1) % 7 in weekdays for d in negative) for end in range(7))
    return max(first, last)


def _distinct_within(values: tuple[int, ...], length: int) -> int:
    """How many distinct days `values` (from 1 counted from the start, from -1 from the
    end) surely name in a range of at least `length` days: values of one sign name
    distinct days, a positive and a negative one may name the same."""
    positive = sum(1 for v in values if 0 < v <= length)
    negative = sum(1 for v in values if -length <= v < 0)
    return max(positive, negative)


def _left_out(parts: RuleParts, *, family: _Family | None, months: bool) -> DayFilter:
    """The filter of the day BY-parts of `parts` other than `family` (and BYMONTH when
    `months`), with dateutil's meaning of numbered weekdays in the original rule."""
    kept = family.names if family is not None else frozenset()
    weekdays = "byday" not in kept
    return DayFilter(
        months=frozenset(parts.bymonth) if months else frozenset(),
        monthdays=frozenset(parts.bymonthday) if "bymonthday" not in kept else frozenset(),
        weekdays=frozenset(parts.weekdays) if weekdays else frozenset(),
        nth=parts.nth if weekdays else (),
        nth_in_month=parts.freq == "MONTHLY" or bool(parts.bymonth),
        yeardays=frozenset(parts.byyearday) if "byyearday" not in kept else frozenset(),
    )
