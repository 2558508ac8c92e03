"""Parsing of the recurrence lines Google stores in an event's `recurrence` field.

Google keeps RFC 5545 content lines without DTSTART (the event's start is the first
instance): `RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20240630T215959Z`,
`EXDATE;TZID=Europe/Berlin:20240610T090000`, `RDATE;VALUE=DATE:20240611,20240612`.
This module turns such lines into values and rejects what calsync will not expand:
malformed lines, unknown parts, INTERVAL=0, COUNT above a cap, COUNT together with
UNTIL, BY-parts out of range or meaningless for the frequency, and BY-part combinations
that can never occur (BYMONTHDAY=30;BYMONTH=2). Checks that need the series' start live
in `calsync.domain.recurrence`. See https://developers.google.com/calendar/api/guides/recurringevents
and RFC 5545 sections 3.3.10, 3.8.5.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

from calsync.domain.errors import NeverOccurs, ValidationError
from calsync.domain.timezones import zone

DEFAULT_MAX_COUNT: Final = 5000
MAX_DATES: Final = 1000
"""RDATE and EXDATE values a series may hold in all (each is looked at on every
expansion)."""
FREQUENCIES: Final = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY")
WEEKDAYS: Final = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_MAX_LINE_LENGTH: Final = 2000
_MAX_LINES: Final = 100
_DAYS_IN_MONTH: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_SETPOS_LIMIT: Final = {"WEEKLY": 7, "MONTHLY": 31, "YEARLY": 366}
_BYDAY_RE: Final = re.compile(r"([+-]?)(\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)", re.ASCII)
_DATE_RE: Final = re.compile(r"(\d{4})(\d{2})(\d{2})", re.ASCII)
_DATETIME_RE: Final = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z?)", re.ASCII)
_FIELD: Final = "recurrence"

# (part name, lowest, highest, zero allowed, negatives allowed)
_INT_PARTS: Final = {
    "BYSECOND": (0, 59, True, False),
    "BYMINUTE": (0, 59, True, False),
    "BYHOUR": (0, 23, True, False),
    "BYMONTHDAY": (1, 31, False, True),
    "BYYEARDAY": (1, 366, False, True),
    "BYWEEKNO": (1, 53, False, True),
    "BYMONTH": (1, 12, False, False),
    "BYSETPOS": (1, 366, False, True),
}

DateValue = date | datetime
"""A date, an aware datetime (UTC or TZID given), or a naive "floating" datetime."""


@dataclass(frozen=True, slots=True)
class WeekdayRule:
    """One BYDAY entry: weekday index 0 (MO) to 6 (SU), optional nth (e.g. -1 = last)."""

    weekday: int
    nth: int | None = None


@dataclass(frozen=True, slots=True)
class RecurrenceRule:
    """One parsed RRULE or EXRULE. `until` is a date, an aware UTC datetime, or floating."""

    freq: str
    interval: int = 1
    count: int | None = None
    until: DateValue | None = None
    bysecond: tuple[int, ...] = ()
    byminute: tuple[int, ...] = ()
    byhour: tuple[int, ...] = ()
    byday: tuple[WeekdayRule, ...] = ()
    bymonthday: tuple[int, ...] = ()
    byyearday: tuple[int, ...] = ()
    byweekno: tuple[int, ...] = ()
    bymonth: tuple[int, ...] = ()
    bysetpos: tuple[int, ...] = ()
    wkst: int = 0
    exclusion: bool = False
    source: str = ""


@dataclass(frozen=True, slots=True)
class RecurrenceSet:
    """Everything the recurrence lines say, parsed."""

    rrules: tuple[RecurrenceRule, ...] = ()
    exrules: tuple[RecurrenceRule, ...] = ()
    rdates: tuple[DateValue, ...] = ()
    exdates: tuple[DateValue, ...] = ()
    never: tuple[str, ...] = ()
    """Why each rule left out of `rrules`/`exrules` never occurs (`NeverOccurs`): such a
    rule adds no instance (the series' start still is one) and removes none."""


def parse_recurrence(lines: Iterable[str], *, max_count: int = DEFAULT_MAX_COUNT) -> RecurrenceSet:
    """Parse Google `recurrence` lines.

    Returns the parsed set. Raises `ValidationError("recurrence", ...)` naming the first
    problem; a rule that can never occur is left out and named in `never` instead (any
    number of RRULEs is taken, as Google takes them). Does not check anything that
    depends on the series' start (whether a rule ever yields an instance after it):
    `calsync.domain.recurrence.validate_recurrence` does.
    """
    rrules: list[RecurrenceRule] = []
    exrules: list[RecurrenceRule] = []
    rdates: list[DateValue] = []
    exdates: list[DateValue] = []
    never: list[str] = []
    line_list = list(lines)
    if len(line_list) > _MAX_LINES:
        raise ValidationError(_FIELD, f"at most {_MAX_LINES} recurrence lines are allowed")
    for raw in line_list:
        if not isinstance(raw, str):
            raise ValidationError(_FIELD, "recurrence lines must be strings")
        line = raw.strip()
        if len(line) > _MAX_LINE_LENGTH:
            raise ValidationError(_FIELD, f"line longer than {_MAX_LINE_LENGTH} characters")
        name, params, value = _split_content_line(line)
        if name in ("RRULE", "EXRULE"):
            if params:
                raise ValidationError(_FIELD, f"{name} takes no parameters: {line!r}")
            try:
                rule = parse_rule(value, max_count=max_count, exclusion=name == "EXRULE")
            except NeverOccurs as err:
                never.append(err.message)  # no instance to add or remove: dropped
                continue
            (exrules if rule.exclusion else rrules).append(rule)
        elif name in ("RDATE", "EXDATE"):
            if len(rdates) + len(exdates) + value.count(",") + 1 > MAX_DATES:  # before parsing
                raise ValidationError(_FIELD, f"at most {MAX_DATES} RDATE and EXDATE values in all")
            (rdates if name == "RDATE" else exdates).extend(_parse_date_list(name, params, value))
        elif name == "DTSTART":
            raise ValidationError(_FIELD, "DTSTART is not allowed; the event's start is used")
        else:
            raise ValidationError(_FIELD, f"unknown recurrence line {line!r}")
    return RecurrenceSet(tuple(rrules), tuple(exrules), tuple(rdates), tuple(exdates), tuple(never))


def _split_content_line(line: str) -> tuple[str, dict[str, str], str]:
    head, sep, value = line.partition(":")
    if not sep or not value:
        raise ValidationError(_FIELD, f"malformed line {line!r} (expected NAME:VALUE)")
    name, *raw_params = head.split(";")
    params: dict[str, str] = {}
    for raw_param in raw_params:
        key, eq, param_value = raw_param.partition("=")
        if not eq or not key or not param_value:
            raise ValidationError(_FIELD, f"malformed parameter {raw_param!r} in {line!r}")
        params[key.upper()] = param_value.strip('"')
    return name.upper(), params, value


def _parse_date_list(name: str, params: dict[str, str], value: str) -> list[DateValue]:
    kind = params.pop("VALUE", "DATE-TIME").upper()
    tzid = params.pop("TZID", None)
    if params:
        raise ValidationError(_FIELD, f"unsupported {name} parameter(s): {', '.join(params)}")
    if kind not in ("DATE", "DATE-TIME"):
        raise ValidationError(_FIELD, f"{name};VALUE={kind} is not supported")
    if kind == "DATE" and tzid is not None:
        raise ValidationError(_FIELD, f"{name} with VALUE=DATE takes no TZID")
    parts = value.split(",")
    result: list[DateValue] = []
    for text in parts:
        parsed = parse_date_value(text, what=name)
        if kind == "DATE" and isinstance(parsed, datetime):
            raise ValidationError(_FIELD, f"{name} says VALUE=DATE but {text!r} has a time")
        if kind == "DATE-TIME" and not isinstance(parsed, datetime):
            raise ValidationError(_FIELD, f"{name} value {text!r} needs VALUE=DATE")
        if tzid is not None and isinstance(parsed, datetime):
            if parsed.tzinfo is not None:
                raise ValidationError(_FIELD, f"{name} has a TZID and a UTC time: {text!r}")
            parsed = parsed.replace(tzinfo=zone(tzid, field=_FIELD), fold=0)
        result.append(parsed)
    return result


def parse_date_value(text: str, *, what: str) -> DateValue:
    """Parse `YYYYMMDD`, `YYYYMMDDTHHMMSS` (floating) or `YYYYMMDDTHHMMSSZ` (UTC)."""
    text = text.strip()
    try:
        if match := _DATE_RE.fullmatch(text):
            year, month, day = (int(g) for g in match.groups())
            return date(year, month, day)
        if match := _DATETIME_RE.fullmatch(text):
            year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
            parsed = datetime(year, month, day, hour, minute, second)
            return parsed.replace(tzinfo=UTC) if match.group(7) else parsed
    except ValueError as err:
        raise ValidationError(_FIELD, f"{what} value {text!r} is not a real date") from err
    raise ValidationError(_FIELD, f"{what} value {text!r} is not a date or date-time")


def parse_rule(
    value: str, *, max_count: int = DEFAULT_MAX_COUNT, exclusion: bool = False
) -> RecurrenceRule:
    """Parse the value of an RRULE (`FREQ=...;...`). Raises `ValidationError`."""
    source = f"{'EXRULE' if exclusion else 'RRULE'}:{value}"
    parts: dict[str, str] = {}
    for item in value.split(";"):
        key, eq, part_value = item.partition("=")
        key = key.strip().upper()
        if not eq or not key or not part_value:
            raise ValidationError(_FIELD, f"malformed rule part {item!r} in {source!r}")
        if key in parts:
            raise ValidationError(_FIELD, f"{key} appears twice in {source!r}")
        parts[key] = part_value.strip().upper()
    freq = parts.pop("FREQ", None)
    if freq not in FREQUENCIES:
        raise ValidationError(_FIELD, f"FREQ must be one of {', '.join(FREQUENCIES)} in {source!r}")
    interval = _positive_int(parts.pop("INTERVAL", "1"), "INTERVAL", source)
    count = _parse_count(parts.pop("COUNT", None), max_count, source)
    until_text = parts.pop("UNTIL", None)
    until = parse_date_value(until_text, what="UNTIL") if until_text is not None else None
    if count is not None and until is not None:
        raise ValidationError(_FIELD, f"COUNT and UNTIL must not both be given in {source!r}")
    wkst_text = parts.pop("WKST", "MO")
    if wkst_text not in WEEKDAYS:
        raise ValidationError(_FIELD, f"WKST must be a weekday (MO..SU) in {source!r}")
    byday = _parse_byday(parts.pop("BYDAY", None), freq, source)
    ints = {name: _int_list(parts.pop(name, None), name, source) for name in _INT_PARTS}
    unknown = [key for key in parts if not key.startswith("X-")]
    if unknown:
        raise ValidationError(_FIELD, f"unknown rule part(s) {', '.join(unknown)} in {source!r}")
    rule = RecurrenceRule(
        freq=freq,
        interval=interval,
        count=count,
        until=until,
        bysecond=ints["BYSECOND"],
        byminute=ints["BYMINUTE"],
        byhour=ints["BYHOUR"],
        byday=byday,
        bymonthday=ints["BYMONTHDAY"],
        byyearday=ints["BYYEARDAY"],
        byweekno=ints["BYWEEKNO"],
        bymonth=ints["BYMONTH"],
        bysetpos=ints["BYSETPOS"],
        wkst=WEEKDAYS.index(wkst_text),
        exclusion=exclusion,
        source=source,
    )
    _check_combinations(rule)
    return rule


def _positive_int(text: str, name: str, source: str) -> int:
    if not re.fullmatch(r"[0-9]{1,9}", text) or int(text) < 1:
        raise ValidationError(_FIELD, f"{name} must be a whole number of at least 1 in {source!r}")
    return int(text)


def _parse_count(text: str | None, max_count: int, source: str) -> int | None:
    if text is None:
        return None
    count = _positive_int(text, "COUNT", source)
    if count > max_count:
        raise ValidationError(_FIELD, f"COUNT must be at most {max_count} in {source!r}")
    return count


def _int_list(text: str | None, name: str, source: str) -> tuple[int, ...]:
    if text is None:
        return ()
    low, high, zero_ok, negative_ok = _INT_PARTS[name]
    values: list[int] = []
    for item in text.split(","):
        if not re.fullmatch(r"[+-]?[0-9]{1,3}", item):
            raise ValidationError(_FIELD, f"{name} value {item!r} is not a number in {source!r}")
        number = int(item)
        in_range = (zero_ok and number == 0) or low <= abs(number) <= high
        if not in_range or (number < 0 and not negative_ok):
            raise ValidationError(_FIELD, f"{name} value {number} is out of range in {source!r}")
        values.append(number)
    return tuple(sorted(set(values)))


def _parse_byday(text: str | None, freq: str, source: str) -> tuple[WeekdayRule, ...]:
    if text is None:
        return ()
    rules: list[WeekdayRule] = []
    for item in text.split(","):
        match = _BYDAY_RE.fullmatch(item)
        if not match:
            raise ValidationError(_FIELD, f"BYDAY value {item!r} is not a weekday in {source!r}")
        sign, number, day = match.groups()
        nth = None
        if number is not None:
            limit = 5 if freq == "MONTHLY" else 53
            if freq not in ("MONTHLY", "YEARLY"):
                raise ValidationError(_FIELD, f"BYDAY={item} needs FREQ=MONTHLY or YEARLY")
            nth = -int(number) if sign == "-" else int(number)
            if not 1 <= abs(nth) <= limit:
                raise ValidationError(_FIELD, f"BYDAY value {item!r} is out of range")
        rules.append(WeekdayRule(WEEKDAYS.index(day), nth))
    return tuple(sorted(set(rules), key=lambda r: (r.weekday, r.nth or 0)))


def _check_combinations(rule: RecurrenceRule) -> None:
    source = rule.source
    if rule.byweekno and rule.freq != "YEARLY":
        raise ValidationError(_FIELD, f"BYWEEKNO needs FREQ=YEARLY in {source!r}")
    if rule.byyearday and rule.freq != "YEARLY":
        raise ValidationError(_FIELD, f"BYYEARDAY is only supported with FREQ=YEARLY in {source!r}")
    if rule.bymonthday and rule.freq == "WEEKLY":
        raise ValidationError(_FIELD, f"BYMONTHDAY is not allowed with FREQ=WEEKLY in {source!r}")
    if rule.byweekno and any(r.nth is not None for r in rule.byday):
        raise ValidationError(_FIELD, "BYDAY with a number is not allowed with BYWEEKNO")
    if rule.bysetpos:
        limit = _SETPOS_LIMIT.get(rule.freq)
        if limit is None:
            raise ValidationError(_FIELD, f"BYSETPOS is not supported with FREQ={rule.freq}")
        has_other = rule.byday or rule.bymonthday or rule.byyearday or rule.byweekno
        if not has_other and not (rule.byhour or rule.byminute or rule.bysecond):
            raise ValidationError(_FIELD, f"BYSETPOS needs another BY part in {source!r}")
        times = max(len(rule.byhour), 1) * max(len(rule.byminute), 1) * max(len(rule.bysecond), 1)
        if any(abs(pos) > limit * times for pos in rule.bysetpos):
            raise ValidationError(_FIELD, f"BYSETPOS is out of range in {source!r}")
    if rule.bymonthday and not _some_month_has_day(rule):
        raise NeverOccurs(_FIELD, f"the rule never occurs: no month has that day ({source})")
    only_nth = rule.byday and all(r.nth is not None for r in rule.byday)
    # an nth weekday is counted within the month only for MONTHLY, or YEARLY with BYMONTH;
    # in a plain YEARLY rule it is within the year (RFC 5545 3.3.10): the 35th Monday of
    # 2025 is 1 September, so BYDAY=35MO;BYMONTHDAY=1 occurs
    in_month = rule.freq == "MONTHLY" or bool(rule.bymonth)
    if rule.bymonthday and only_nth and in_month and not _nth_weekday_meets_monthday(rule):
        raise NeverOccurs(_FIELD, f"the rule never occurs: BYDAY and BYMONTHDAY ({source})")


def _some_month_has_day(rule: RecurrenceRule) -> bool:
    months = rule.bymonth or tuple(range(1, 13))
    return any(abs(day) <= _DAYS_IN_MONTH[month - 1] for month in months for day in rule.bymonthday)


def _nth_weekday_meets_monthday(rule: RecurrenceRule) -> bool:
    """Whether some nth weekday can fall on some BYMONTHDAY day (months of 28 to 31 days)."""
    day_ranges = [
        ((r.nth - 1) * 7 + 1, r.nth * 7)
        if r.nth > 0
        else (28 + 7 * r.nth + 1, 31 + 7 * (r.nth + 1))
        for r in rule.byday
        if r.nth is not None
    ]
    month_days = [(d, d) if d > 0 else (29 + d, 32 + d) for d in rule.bymonthday]
    return any(a <= d and c <= b for a, b in day_ranges for c, d in month_days)
