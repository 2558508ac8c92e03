"""Recurring-series expansion: RRULE, EXDATE and RDATE lines into original starts.

A series is expanded in the master's own frame: all-day series as naive midnights
(``datetime(2026, 11, 21)``), timed series as aware datetimes in the master's
``start.timeZone`` so that daylight-saving changes keep the wall-clock time, as Google
does. EXDATE/RDATE lines are parsed here (dateutil's own parser upper-cases TZIDs and
rejects ``RDATE;TZID=``). EXRULE is rejected, as Google rejects it. Several RRULEs
are taken (Google's ``recurrence`` is a list of RRULE, EXRULE, RDATE and EXDATE lines).
The master's start is always an instance and counts as the first for COUNT (RFC 5545
3.8.5.3), so a rule that never occurs (an UNTIL before the start, a BYMONTHDAY no month
has) leaves a series of one instance. EXDATEs of a timed series are held as UTC
instants: aware datetimes of one zone compare by wall time, ignoring ``fold``.

Rules are evaluated as calsync evaluates them, with bounded work
(`calsync.domain.rule_plans`): every expansion may spend `WORK_LIMIT` work units, and a
rule stops contributing starts where its share runs out. Google documents nothing about
rules that are too costly to expand; the emulator accepts any rule it can parse (as
Google accepts valid RFC 5545) and lists the starts found within the limit, so a rule
that makes dateutil look at millions of candidates costs about 20 ms, never minutes.
A rule whose evaluation cannot be bounded at all (BYWEEKNO=53 alone, BYSETPOS over days
some periods lack, times its INTERVAL never reaches) contributes no starts.

Instance ids are ``<masterId>_<suffix>``; :func:`instance_suffix` gives the suffix.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

from calsync.domain.errors import NeverOccurs, ValidationError
from calsync.domain.rfc5545 import RecurrenceRule, parse_rule
from calsync.domain.rule_plans import OverBudget, Plan, WorkBudget, plan
from calsync.emulator import errors, timefmt

# Expansions with no upper bound (no timeMax) stop after this many instances per series.
UNBOUNDED_INSTANCE_LIMIT = 730

_LINE_RE = re.compile(r"^(?P<name>[A-Z]+)(?P<params>(;[^:]*)?):(?P<value>.+)$", re.IGNORECASE)
_ANY_COUNT = 10**9  # Google has no documented COUNT limit; the work limit bounds it


SUB_DAILY_FREQUENCIES = frozenset({"HOURLY", "MINUTELY", "SECONDLY"})
"""RRULE frequencies Google refuses to store (see `sub_daily_rule`)."""


def sub_daily_rule(lines: Sequence[str]) -> str | None:
    """The first RRULE line of ``lines`` repeating more often than daily, or None.

    Google refuses such rules although RFC 5545 allows them: importing
    ``RRULE:FREQ=HOURLY`` answers a server error (googleapis/google-api-ruby-client#572,
    closed "Won't Fix"), and Google Calendar shows nothing for an imported hourly
    series (sebbo2002/ical-generator#130); no rule repeats more often than daily there.
    """
    for line in lines:
        match = _LINE_RE.match(line.strip())
        if match is None or match.group("name").upper() != "RRULE":
            continue
        parts = (part.partition("=") for part in match.group("value").split(";"))
        freqs = {val.strip().upper() for key, _, val in parts if key.strip().upper() == "FREQ"}
        if freqs & SUB_DAILY_FREQUENCIES:
            return line
    return None


def _bad(line: str) -> errors.GoogleApiError:
    return errors.invalid(f"Invalid recurrence rule: {line}", "recurrence")


@dataclass(frozen=True, slots=True)
class Rule:
    """One RRULE of a series: its plan (None when its work cannot be bounded), COUNT, and
    UNTIL in the series' frame."""

    plan: Plan | None
    count: int | None
    until: datetime | None


@dataclass(frozen=True, slots=True)
class Series:
    """A master's rules, RDATEs (sorted) and EXDATEs, in the series' frame."""

    start: datetime
    rules: tuple[Rule, ...]
    rdates: tuple[datetime, ...]
    exdates: frozenset[datetime]
    """All-day: naive midnights; timed: UTC instants (aware datetimes of one zone compare
    by wall time, fold ignored, so the second 01:30 of a fall-back day would equal the
    first)."""

    def excludes(self, value: datetime) -> bool:
        """Whether an EXDATE removes the start ``value`` (in the series' frame)."""
        return (value if value.tzinfo is None else value.astimezone(UTC)) in self.exdates


def _until(rule: RecurrenceRule, *, all_day: bool, tz: tzinfo) -> datetime | None:
    """UNTIL in the series' frame (a date-only UNTIL of a timed series ends its day)."""
    value = rule.until
    if value is None:
        return None
    if all_day:
        day = value.date() if isinstance(value, datetime) else value
        return datetime.combine(day, time())
    if not isinstance(value, datetime):
        return datetime.combine(value, time(23, 59, 59), tzinfo=tz)
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def _rule(value: str, *, start: datetime, all_day: bool, tz: tzinfo) -> Rule:
    try:
        parsed = parse_rule(value, max_count=_ANY_COUNT)
    except NeverOccurs:
        return Rule(None, None, None)  # valid RFC 5545 that yields nothing: no starts
    try:
        shape: Plan | None = plan(parsed, start)
    except ValidationError:
        shape = None
    return Rule(shape, parsed.count, _until(parsed, all_day=all_day, tz=tz))


def _parse_moment(
    value: str, params: dict[str, str], *, all_day: bool, start: datetime
) -> datetime:
    """One EXDATE/RDATE value in the series' frame (see module docstring)."""
    text = value.strip().upper()
    if params.get("VALUE") == "DATE" or len(text) == 8:
        day = datetime.strptime(text[:8], "%Y%m%d")
        if all_day:
            return day
        return datetime.combine(day.date(), start.timetz())
    moment = datetime.strptime(text.rstrip("Z"), "%Y%m%dT%H%M%S")
    if all_day:
        return datetime(moment.year, moment.month, moment.day)
    if text.endswith("Z"):
        return moment.replace(tzinfo=UTC).astimezone(start.tzinfo)
    if "TZID" in params:
        zone = timefmt.zone(params["TZID"], location="recurrence")
        return moment.replace(tzinfo=zone).astimezone(start.tzinfo)
    return moment.replace(tzinfo=start.tzinfo)


def build_series(lines: Sequence[str], *, start: datetime, all_day: bool) -> Series:
    """The series of a master starting at ``start``; 400 ``invalid`` on a bad line.

    ``start`` is naive midnight for all-day series, aware (master's zone) otherwise.
    """
    tz = start.tzinfo or UTC
    rules: list[Rule] = []
    rdates: set[datetime] = set()
    exdates: set[datetime] = set()
    for line in lines:
        match = _LINE_RE.match(line.strip())
        if match is None:
            raise _bad(line)
        name = match.group("name").upper()
        params = {
            key.upper(): val
            for key, _, val in (p.partition("=") for p in match.group("params").split(";") if p)
        }
        value = match.group("value")
        try:
            if name == "RRULE":
                rules.append(_rule(value, start=start, all_day=all_day, tz=tz))
            elif name in ("EXDATE", "RDATE"):
                for item in value.split(","):
                    moment = _parse_moment(item, params, all_day=all_day, start=start)
                    if name == "RDATE":
                        rdates.add(moment)
                    else:
                        exdates.add(moment if all_day else moment.astimezone(UTC))
            else:
                raise _bad(line)
        except (ValueError, TypeError):  # ValidationError too
            raise _bad(line) from None
    return Series(start, tuple(rules), tuple(sorted(rdates)), frozenset(exdates))


def occurrences(
    series: Series,
    *,
    after: datetime | None = None,
    before: datetime | None = None,
    limit: int | None = None,
) -> list[datetime]:
    """Original starts ``s`` with ``after <= s < before``, at most ``limit`` of them
    (with ``None``: all of them when ``before`` bounds the window, else the first
    `UNBOUNDED_INSTANCE_LIMIT`, as Google expands; docs/decisions.md G3), as far as the
    work limit lets the rules be evaluated (one budget for the call).

    The series' start is always one of them unless an EXDATE removes it, whether or not
    its rules produce it: RFC 5545 §3.8.5.3 ("the DTSTART property defines the first
    instance"), and Google lists it (see docs/decisions.md G1)."""
    if limit is None and before is None:
        limit = UNBOUNDED_INSTANCE_LIMIT
    budget = WorkBudget()
    found: set[datetime] = set()
    for rule in series.rules:
        found.update(_rule_starts(series, rule, after, before, limit, budget))
    low = bisect.bisect_left(series.rdates, after) if after is not None else 0
    high = bisect.bisect_left(series.rdates, before) if before is not None else None
    found.update(series.rdates[low:high])
    if (after is None or series.start >= after) and (before is None or series.start < before):
        found.add(series.start)  # the start is always an instance (RFC 5545 3.8.5.3)
    return sorted(v for v in found if not series.excludes(v))[:limit]


def _rule_starts(
    series: Series,
    rule: Rule,
    after: datetime | None,
    before: datetime | None,
    limit: int | None,
    budget: WorkBudget,
) -> Iterator[datetime]:
    """Up to ``limit`` starts of ``rule`` in ``[after, before)`` that are not EXDATEs;
    stops quietly where ``budget`` runs out. COUNT counts from the series' start, which
    is always the first instance (RFC 5545 §3.3.10: "the DTSTART property value always
    counts as the first occurrence"), so a start the rule does not produce takes one."""
    if rule.plan is None:
        return
    remaining = rule.count
    begin = series.start if remaining is not None or after is None else rule.plan.shifted(after)
    taken = 0
    try:
        for position, value in enumerate(rule.plan.candidates(begin, rule.until, budget)):
            if remaining is not None:
                if position == 0 and value != series.start:
                    remaining -= 1  # the start is the first instance and counts (RFC 5545)
                if remaining <= 0:
                    return
                remaining -= 1
            if before is not None and value >= before:
                return
            if (after is None or value >= after) and not series.excludes(value):
                yield value
                taken += 1
                if limit is not None and taken >= limit:
                    return
    except OverBudget:
        return


# How far a wall clock jumps forward at a daylight-saving change, at most (one hour
# almost everywhere, two in some historical zones), with room to spare.
_GAP_REACH = timedelta(hours=3)
_TICK = timedelta(microseconds=1)


def occurrence_at(series: Series, original: datetime) -> datetime | None:
    """The start of ``series`` at the instant ``original`` (in the series' frame), if any.

    Starts are matched by instant, not wall-clock time: a start whose wall time falls in
    a spring-forward gap (02:30 on 2024-03-10 in New York) happens at the instant that
    wall time maps to (03:30 daylight time), is listed there and named by it in its
    instance id; and the two 01:30s of a fall-back day are different instants. All-day
    series are matched by date."""
    if original.tzinfo is None:
        found = occurrences(series, after=original, before=original + _TICK, limit=1)
        return found[0] if found else None
    instant = original.astimezone(UTC)
    for low in (original, original - _GAP_REACH):
        for start in occurrences(series, after=low, before=original + _TICK):
            if start.astimezone(UTC) == instant:
                return start
    return None


def instance_suffix(original: datetime, *, all_day: bool) -> str:
    """``20261121T100000Z`` (timed, UTC) or ``20261121`` (all-day)."""
    if all_day:
        return original.strftime("%Y%m%d")
    return original.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def original_from_suffix(suffix: str, *, all_day: bool, tz: tzinfo) -> datetime | None:
    """The original start an instance id suffix names, in the series' frame."""
    try:
        if all_day:
            return datetime.strptime(suffix, "%Y%m%d") if len(suffix) == 8 else None
        if len(suffix) != 16:
            return None
        moment = datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment.astimezone(tz)
