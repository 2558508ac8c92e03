"""Recurring-series expansion: RRULE, EXDATE and RDATE lines into original starts.

A series is expanded in the master's own frame: all-day series as naive midnights
(``datetime(2026, 11, 21)``), timed series as aware datetimes in the master's
``start.timeZone`` so that daylight-saving changes keep the wall-clock time, as Google
does. EXDATE/RDATE lines are parsed here (dateutil's own parser upper-cases TZIDs and
rejects ``RDATE;TZID=``). EXRULE is rejected, as Google rejects it.

Instance ids are ``<masterId>_<suffix>``; :func:`instance_suffix` gives the suffix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from dateutil.rrule import rruleset, rrulestr

from calsync.emulator import errors, timefmt

# Expansions with no upper bound stop after this many instances per series.
UNBOUNDED_INSTANCE_LIMIT = 730

_UNTIL_RE = re.compile(r"UNTIL=(\d{8})(T(\d{6})(Z)?)?", re.IGNORECASE)
_LINE_RE = re.compile(r"^(?P<name>[A-Z]+)(?P<params>(;[^:]*)?):(?P<value>.+)$", re.IGNORECASE)


def _bad(line: str) -> errors.GoogleApiError:
    return errors.invalid(f"Invalid recurrence rule: {line}", "recurrence")


def _normalise_until(rule: str, *, all_day: bool, tz: tzinfo) -> str:
    """Make UNTIL agree with DTSTART's kind so that dateutil accepts it."""

    def fix(match: re.Match[str]) -> str:
        day, time_part, hms, zulu = match.group(1), match.group(2), match.group(3), match.group(4)
        if all_day:
            return f"UNTIL={day}"
        if zulu:
            return match.group(0).upper()
        local = datetime.strptime(day + (hms or "235959"), "%Y%m%d%H%M%S").replace(tzinfo=tz)
        del time_part
        return "UNTIL=" + local.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    return _UNTIL_RE.sub(fix, rule)


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


def build_series(lines: Sequence[str], *, start: datetime, all_day: bool) -> rruleset:
    """The rruleset of a master starting at ``start``; 400 ``invalid`` on a bad line.

    ``start`` is naive midnight for all-day series, aware (master's zone) otherwise.
    """
    series = rruleset(cache=True)
    tz = start.tzinfo or UTC
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
                rule = _normalise_until(value, all_day=all_day, tz=tz)
                series.rrule(rrulestr(rule, dtstart=start))  # type: ignore[arg-type]
            elif name in ("EXDATE", "RDATE"):
                for item in value.split(","):
                    moment = _parse_moment(item, params, all_day=all_day, start=start)
                    (series.exdate if name == "EXDATE" else series.rdate)(moment)
            else:
                raise _bad(line)
        except (ValueError, TypeError):
            raise _bad(line) from None
    return series


def occurrences(
    series: rruleset,
    *,
    after: datetime | None = None,
    before: datetime | None = None,
    limit: int = UNBOUNDED_INSTANCE_LIMIT,
) -> list[datetime]:
    """Original starts ``s`` with ``after <= s < before``, at most ``limit`` of them."""
    found: list[datetime] = []
    iterator = series.xafter(after, inc=True) if after is not None else iter(series)
    for occurrence in iterator:
        if before is not None and occurrence >= before:
            break
        found.append(occurrence)
        if len(found) >= limit:
            break
    return found


def has_occurrence(series: rruleset, original: datetime) -> bool:
    """True when ``original`` (in the series' frame) is one of its starts."""
    following = series.after(original - timedelta(microseconds=1))
    return following is not None and following == original


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
