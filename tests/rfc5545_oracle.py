"""An independent RFC 5545 expansion to compare calsync's with: recurring-ical-events.

recurring-ical-events (with icalendar) expands a VEVENT as a calendar client would. It is
given exactly the series calsync is given (the start, the end and Google's recurrence
lines) written as one VEVENT with an IANA TZID and no VTIMEZONE, and answers with the
instances' starts. Its instances are compared with calsync's by start (a UTC instant for
timed series, a date for all-day ones); which instances are in a window is decided here,
by calsync's rule (`calsync.domain.windows`), on the oracle's starts: the two differ in
how long an instance that crosses a DST change lasts (see `oracle_starts`), which is a
deliberate difference (docs/decisions.md O1), not the subject of the comparison.

The one other deliberate difference (O1) is normalised here too: when a rule does not
yield the series' start itself, RFC 5545 counts the start as the rule's first instance
towards COUNT ("The DTSTART property value always counts as the first occurrence"),
calsync too; recurring-ical-events (through dateutil) adds the start and then the rule's
own COUNT instances, one more. `normalised_for_oracle` gives it COUNT-1 for such rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
from dateutil.rrule import rrulestr

from calsync.domain.models import EventTime
from calsync.domain.recurrence import occurrences
from calsync.domain.windows import DayRange, all_day_in_window, timed_in_window

Start = date | datetime
"""An instance's identity: its date (all-day series) or its start as a UTC instant."""

_SLACK = timedelta(hours=2)
"""How far past the window the oracle is asked: DST moves a start by an hour at most (the
window is placed by calsync's rule afterwards). Days for all-day series."""
_DAY_SLACK = timedelta(days=2)
_COUNT_RE = re.compile(r"(?<=[:;])COUNT=(\d+)")
_DATE_UNTIL_RE = re.compile(r"UNTIL=(\d{8})(?![T\d])")
_LOCAL_UNTIL_RE = re.compile(r"UNTIL=(\d{8}T\d{6})(?![Z\d])")
_UTC_RDATE_RE = re.compile(r"RDATE(;VALUE=DATE-TIME)?:\d{8}T\d{6}Z(,\d{8}T\d{6}Z)*")


@dataclass(frozen=True)
class Series:
    """A series as calsync and Google hold it: start, end, recurrence lines, and for an
    all-day series the zone its days are placed in (the calendar's)."""

    start: EventTime
    end: EventTime
    recurrence: tuple[str, ...]
    timezone: str | None = None
    label: str = ""

    @property
    def all_day(self) -> bool:
        return self.start.day is not None

    @property
    def zone_name(self) -> str:
        return self.start.timezone or self.timezone or "UTC"

    @property
    def duration(self) -> timedelta:
        if self.start.day is not None and self.end.day is not None:
            return self.end.day - self.start.day
        assert self.start.instant is not None
        assert self.end.instant is not None
        return self.end.instant - self.start.instant


@dataclass(frozen=True)
class Window:
    """A listing window: instants for timed series, the same span as days for all-day."""

    start: datetime
    end: datetime

    @property
    def days(self) -> DayRange:
        first = self.start.astimezone(UTC).date()
        last = (self.end - timedelta(microseconds=1)).astimezone(UTC).date()
        return DayRange(first, last + timedelta(days=1))


def calsync_starts(series: Series, window: Window, *, max_instances: int = 10_000) -> list[Start]:
    """calsync's instances of `series` in `window` (`calsync.domain.recurrence.occurrences`,
    as the listing calls it), by start. Raises `ValidationError` for a series calsync
    refuses."""
    found = occurrences(
        series.recurrence,
        series.start,
        series.end,
        window.start,
        window.end,
        series_id="s",
        timezone=series.timezone,
        max_instances=max_instances,
        days=window.days if series.all_day else None,
    )
    return sorted(_key(value) for value in found.starts)


def _key(value: EventTime) -> Start:
    if value.day is not None:
        return value.day
    assert value.instant is not None
    return value.instant


def oracle_starts(
    series: Series, window: Window, moved: Mapping[datetime, datetime] | None = None
) -> list[Start]:
    """recurring-ical-events' instances of `series` in `window`, by start, each placed in
    the window by calsync's rule: a timed instance lasts exactly the series' duration
    (recurring-ical-events adds the duration in wall-clock time, so an instance that
    crosses a DST change ends an hour earlier or later in its hands), an all-day instance
    covers its dates. A timed series' EXDATEs are applied here (`_exdates`).

    `moved`: instances of a timed series moved to another start (original UTC start to
    new UTC start, same duration), given to the oracle as RECURRENCE-ID overrides."""
    calendar = icalendar.Calendar.from_ical(vcalendar(series, moved or {}))
    zone = ZoneInfo(series.zone_name)
    slack = _DAY_SLACK if series.all_day else _SLACK
    low = window.start - series.duration - slack
    high = window.end + slack
    if series.all_day:
        low_q: Start = low.astimezone(zone).date()
        high_q: Start = high.astimezone(zone).date()
    else:
        low_q, high_q = low, high
    instants, days = _exdates(series)
    keys: set[Start] = set()
    for component in recurring_ical_events.of(calendar).between(low_q, high_q):
        value = component["DTSTART"].dt
        if series.all_day:
            day = value if not isinstance(value, datetime) else value.date()
            if all_day_in_window(day, day + series.duration, window.days):
                keys.add(day)
        else:
            assert isinstance(value, datetime)
            begin = value.replace(tzinfo=zone) if value.tzinfo is None else value
            at = begin.astimezone(UTC)
            if at in instants or begin.astimezone(zone).date() in days:
                continue
            if timed_in_window(at, at + series.duration, window.start, window.end):
                keys.add(at)
    return sorted(keys)


def _exdates(series: Series) -> tuple[set[datetime], set[date]]:
    """A timed series' EXDATEs as RFC 5545 matches them: instants (a TZID or floating
    value placed in its zone, the first of a repeated wall time), and the series' local
    dates of DATE values.

    recurring-ical-events is not given them: it matches an EXDATE by a naive wall time
    that may be the EXDATE's UTC time or its local one, and an instance by either of its
    own, so in a zone east of UTC an EXDATE at 03:30 also removes the hourly instance at
    02:30 local (whose UTC time is 01:30... and whose local time equals the EXDATE's UTC
    time, 02:30). That is a bug of the oracle (recurring_ical_events.util.to_recurrence_ids),
    not a question about calsync."""
    instants: set[datetime] = set()
    days: set[date] = set()
    if series.all_day:
        return instants, days
    zone = ZoneInfo(series.zone_name)
    for line in series.recurrence:
        head, _, values = line.partition(":")
        name, *params = head.split(";")
        if name.upper() != "EXDATE":
            continue
        tzid = next((p.split("=", 1)[1] for p in params if p.upper().startswith("TZID=")), None)
        for value in values.split(","):
            if len(value) == 8:
                days.add(datetime.strptime(value, "%Y%m%d").date())
            elif value.endswith("Z"):
                instants.add(datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC))
            else:
                naive = datetime.strptime(value, "%Y%m%dT%H%M%S")
                place = ZoneInfo(tzid) if tzid else zone
                instants.add(naive.replace(tzinfo=place, fold=0).astimezone(UTC))
    return instants, days


def vcalendar(series: Series, moved: Mapping[datetime, datetime] | None = None) -> str:
    """`series` as an iCalendar text of one VEVENT (IANA TZID, no VTIMEZONE), with the
    COUNT normalisation of `normalised_for_oracle`, and one overriding VEVENT for each
    instance `moved` (original UTC start to new UTC start) of a timed series."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//calsync//oracle//EN", "BEGIN:VEVENT"]
    lines.append("UID:series@calsync.test")
    lines.append("DTSTAMP:20240101T000000Z")
    lines.append(_dt_line("DTSTART", series.start))
    # DTEND in UTC: a local end in a repeated hour would be read as its first instance
    # (DTEND before DTSTART, which the oracle answers with shifted instances)
    lines.append(_dt_line("DTEND", series.end, zone="UTC" if series.start.timezone else None))
    lines += normalised_for_oracle(series)
    lines.append("END:VEVENT")
    zone = series.start.timezone
    for original, new in (moved or {}).items():
        assert zone is not None, "only timed instances are moved"
        lines += ["BEGIN:VEVENT", "UID:series@calsync.test", "DTSTAMP:20240101T000000Z"]
        lines.append(_dt_line("RECURRENCE-ID", EventTime(instant=original, timezone=zone)))
        lines.append(_dt_line("DTSTART", EventTime(instant=new, timezone=zone)))
        end = EventTime(instant=new + series.duration, timezone=zone)
        lines += [_dt_line("DTEND", end, zone="UTC"), "END:VEVENT"]
    lines += ["END:VCALENDAR", ""]
    return "\r\n".join(lines)


def _dt_line(name: str, value: EventTime, zone: str | None = None) -> str:
    if value.day is not None:
        return f"{name};VALUE=DATE:{value.day:%Y%m%d}"
    assert value.instant is not None
    name_zone = zone or value.timezone
    assert name_zone is not None
    if name_zone == "UTC":
        return f"{name}:{value.instant:%Y%m%dT%H%M%SZ}"
    local = value.instant.astimezone(ZoneInfo(name_zone))
    return f"{name};TZID={name_zone}:{local:%Y%m%dT%H%M%S}"


def normalised_for_oracle(series: Series) -> list[str]:
    """The recurrence lines as recurring-ical-events is given them (decision O1):

    - an RRULE whose COUNT would count the start twice over in its hands is lowered by
      one (dropped at COUNT=1): see the module;
    - a timed series' EXDATEs are left out (applied by `oracle_starts`, see `_exdates`);
    - a timed series' RDATEs in UTC are written as the same instants in the series' zone:
      recurring-ical-events matches a DATE EXDATE with an instance's date as its value is
      written (`RDATE:20241113T204500Z` is on 13 November to it even in Sydney, where it
      is the 14th); calsync, as RFC 5545 places every value, on the series' zone's date;
    - a date UNTIL on a timed series (RFC 5545 wants a UTC time there; real exports hold
      both) is written as the last second of that day in the series' zone: calsync
      includes the whole day, dateutil stops at the day's first midnight;
    - a local UNTIL without ``Z`` on a timed series (as invalid, and as common in older
      Outlook and Lotus exports) is written as the same wall time in the series' zone, in
      UTC: calsync and Google (the emulator) read it there (decision JC4),
      recurring-ical-events reads it as UTC;
    - an RRULE that never occurs (no candidate at all, as `BYHOUR=0` with `FREQ=HOURLY;
      INTERVAL=2` from an odd hour, or none before its UNTIL) is left out: calsync lists
      the series' start (and RDATEs) for it (decision R5, RFC 5545 3.8.5.3: DTSTART is
      "the very first instance"); dateutil raises "generates an empty set" for the first,
      recurring-ical-events "UNTIL parameter is missing" or nothing at all for others.
    - a BYDAY entry `nMO` with |n| > 5 within a month (`FREQ=MONTHLY`, or `YEARLY` with
      BYMONTH) is left out: no month has a 6th Monday, so it matches nothing; dateutil
      raises IndexError for it (when the month is late in the year), calsync matches
      nothing. A BYDAY with no entry left is a rule that never occurs (above).
    """
    out: list[str] = []
    dtstart = _naive_start(series)
    zone = series.start.timezone
    for line in series.recurrence:
        if zone is not None and line.upper().startswith("EXDATE"):
            continue  # applied by `oracle_starts`: see `_exdates`
        if zone is not None and _UTC_RDATE_RE.fullmatch(line):
            values = line.split(":", 1)[1].split(",")
            local = [
                datetime.strptime(v, "%Y%m%dT%H%M%SZ")
                .replace(tzinfo=UTC)
                .astimezone(ZoneInfo(zone))
                for v in values
            ]
            line = f"RDATE;TZID={zone}:" + ",".join(f"{v:%Y%m%dT%H%M%S}" for v in local)
        if line.upper().startswith("RRULE"):
            line = _without_impossible_weekdays(line)
        if line.upper().startswith("RRULE") and _never_occurs(line, dtstart, series):
            continue  # the start alone, as R5 lists it; dateutil raises or adds nothing
        match = _COUNT_RE.search(line)
        if line.upper().startswith("RRULE") and match and not _yields_start(line, dtstart):
            count = int(match.group(1))
            if count <= 1:
                continue
            line = line[: match.start(1)] + str(count - 1) + line[match.end(1) :]
        date_until = _DATE_UNTIL_RE.search(line)
        if zone is not None and line.upper().startswith("RRULE") and date_until:
            last = datetime.strptime(date_until.group(1), "%Y%m%d").replace(
                hour=23, minute=59, second=59, tzinfo=ZoneInfo(zone)
            )
            until = f"UNTIL={last.astimezone(UTC):%Y%m%dT%H%M%SZ}"
            line = line[: date_until.start()] + until + line[date_until.end() :]
        local_until = _LOCAL_UNTIL_RE.search(line)
        if zone is not None and line.upper().startswith("RRULE") and local_until:
            wall = datetime.strptime(local_until.group(1), "%Y%m%dT%H%M%S")
            at = wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
            until = f"UNTIL={at:%Y%m%dT%H%M%SZ}"
            line = line[: local_until.start()] + until + line[local_until.end() :]
        out.append(line)
    return out


def _naive_start(series: Series) -> datetime:
    if series.start.day is not None:
        return datetime.combine(series.start.day, time())
    return series.start.local().replace(tzinfo=None)


def _yields_start(line: str, dtstart: datetime) -> bool:
    """Whether the rule on its own yields the series' start (wall-clock evaluation)."""
    rule_text = line.split(":", 1)[1]
    # UNTIL in UTC against a naive start: dateutil wants them alike; the first candidate
    # does not depend on UNTIL unless UNTIL is before the start (no instance at all)
    rule_text = re.sub(r"UNTIL=[0-9TZ]+;?", "", rule_text).rstrip(";")
    rule = rrulestr(rule_text, dtstart=dtstart)
    first = next(iter(rule), None)
    return first == dtstart


def _never_occurs(line: str, dtstart: datetime, series: Series) -> bool:
    """Whether the rule yields no instance at all (an empty BYDAY left by
    `_without_impossible_weekdays`, or wall-clock evaluation from the start,
    UNTIL read as calsync reads it: a UTC time, or a date's whole day in the zone)."""
    rule_text = line.split(":", 1)[1]
    until_match = re.search(r"UNTIL=(\d{8})(T(\d{6})Z?)?", rule_text)
    if re.search(r"(?<=[:;])BYDAY=(;|$)", line):
        return True
    rule_text = re.sub(r"UNTIL=[0-9TZ]+;?", "", rule_text).rstrip(";")
    try:
        first = next(iter(rrulestr(rule_text, dtstart=dtstart)), None)
    except ValueError:
        return True  # dateutil: "Invalid rrule byxxx generates an empty set"
    if first is None:
        return True
    if until_match is None:
        return False
    zone = ZoneInfo(series.zone_name)
    day = datetime.strptime(until_match.group(1), "%Y%m%d")
    if until_match.group(3) is None:
        if series.all_day:
            return first.date() > day.date()
        last = day.replace(hour=23, minute=59, second=59, tzinfo=zone)
    else:
        clock = datetime.strptime(until_match.group(3), "%H%M%S").time()
        last = datetime.combine(
            day.date(), clock, tzinfo=UTC if until_match.group(2).endswith("Z") else zone
        )
    if series.all_day:
        return first.date() > last.astimezone(zone).date()
    return first.replace(tzinfo=zone) > last


_BYDAY_RE = re.compile(r"(?<=[:;])BYDAY=([^;]*)")


def _without_impossible_weekdays(line: str) -> str:
    """`line` without the BYDAY entries that name a weekday past the 5th of a month."""
    upper = line.upper()
    in_month = "FREQ=MONTHLY" in upper or ("FREQ=YEARLY" in upper and "BYMONTH=" in upper)
    match = _BYDAY_RE.search(line)
    if not in_month or match is None:
        return line
    kept = [entry for entry in match.group(1).split(",") if abs(int(entry[:-2] or "0")) <= 5]
    return line[: match.start(1)] + ",".join(kept) + line[match.end(1) :]
