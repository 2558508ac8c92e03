"""iCalendar files as Google's import holds them, and the instances they should list.

`read` turns a file's VEVENTs into what a Google calendar holds after importing it: one
event per UID (its start and end with an IANA ``timeZone``, its RRULE/EXRULE/RDATE/EXDATE
lines as Google's ``recurrence`` carries them) and, for each RECURRENCE-ID override, a
change of that instance (``<master id>_<original start>``: new times, new texts) or its
cancellation (STATUS:CANCELLED). Times are read as Google reads an import: a TZID's zone
(Windows and vendor-prefixed names mapped to IANA ones), floating and UTC values in the
calendar's X-WR-TIMEZONE (what the x-wr-timezone package says of Google's exports), else
UTC.

`Imported.instances` says which instances a listing of a window should show:
recurring-ical-events' expansion of the series (`tests/rfc5545_oracle.py`, with its
normalisations, decision O1), less the overridden originals, plus each change where it
now is (RFC 5545 3.8.4.4: the override "replaces" the instance it names).

What Google's import cannot hold is left out of both sides, counted in
`ImportedFile.skipped`: RDATE periods (Google's ``recurrence`` lines take dates and
date-times only), zones with no IANA name, an end before the start, and overrides of
no instance of their series (Google has no instance to change). An override may make a
timed instance all-day or back, as Google's and calsync's instances may be.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
from icalendar.error import GloballyUniqueTZIDGuessed
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from calsync.domain.models import EventTime
from calsync.domain.windows import DayRange, all_day_in_window, days_touched, timed_in_window
from tests.rfc5545_oracle import Series, Start, Window, oracle_starts

MARK = "\ufffd"
TITLE_LIMIT = 1024


def stored(text: str, limit: int | None = None) -> str:
    """What calsync keeps of `text` (decision H1): NUL and lone surrogates as U+FFFD, cut
    to `limit` characters, the last one U+FFFD."""
    made = "".join(MARK if ord(c) == 0 or 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return made if limit is None or len(made) <= limit else made[: limit - 1] + MARK


@dataclass(frozen=True)
class ZonedWindow(Window):
    """A window as a caller in `zone` lists it: its all-day events are those dated on the
    days of `zone` that the window's instants touch (docs/api.md, ``GET /events``)."""

    zone: str = "UTC"

    @property
    def days(self) -> DayRange:
        return days_touched(self.start, self.end, self.zone)


@dataclass(frozen=True)
class Instance:
    """One listed instance: its start and end (UTC instants, or dates for all-day) and
    its title as calsync stores it."""

    start: Start
    end: Start
    title: str


@dataclass(frozen=True)
class Override:
    """A RECURRENCE-ID component: the instance it names, and its new times and title
    (`start` None: cancelled)."""

    original: Start
    start: EventTime | None
    end: EventTime | None
    title: str
    description: str | None = None


@dataclass(frozen=True)
class Imported:
    """One UID of a file as Google holds it after the import."""

    uid: str
    title: str
    start: EventTime
    end: EventTime
    recurrence: tuple[str, ...]
    zone: str
    description: str | None = None
    location: str | None = None
    overrides: tuple[Override, ...] = ()

    @property
    def series(self) -> Series:
        return Series(self.start, self.end, self.recurrence, timezone=self.zone, label=self.uid)

    def google_body(self, **extra: Any) -> dict[str, Any]:
        """The events.insert body of the master (or single event)."""
        body: dict[str, Any] = {
            "summary": self.title,
            "start": _google_time(self.start, self.zone),
            "end": _google_time(self.end, self.zone),
        } | extra
        if self.recurrence:
            body["recurrence"] = list(self.recurrence)
        if self.description is not None:
            body["description"] = self.description
        if self.location is not None:
            body["location"] = self.location
        return body

    def instances(self, window: Window) -> list[Instance]:
        """The instances a listing of `window` shows of this event (see the module)."""
        title = stored(self.title, TITLE_LIMIT)
        if not self.recurrence:
            starts = [_key(self.start)] if _in(self.start, self.end, window) else []
        else:
            replaced = {o.original for o in self.overrides}
            starts = [s for s in oracle_starts(self.series, window) if s not in replaced]
        found = [Instance(s, s + self.series.duration, title) for s in starts]
        for change in self.overrides:
            if change.start is None or change.end is None:
                continue  # cancelled
            if _in(change.start, change.end, window):
                when = (_key(change.start), _key(change.end))
                found.append(Instance(*when, stored(change.title, TITLE_LIMIT)))
        return found

    def instance_id(self, master_id: str, original: Start) -> str:
        if isinstance(original, datetime):
            return f"{master_id}_{original.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        return f"{master_id}_{original:%Y%m%d}"

    def override_body(self, change: Override) -> dict[str, Any]:
        assert change.start is not None
        assert change.end is not None
        body = {
            "summary": change.title,
            "start": _google_time(change.start, self.zone),
            "end": _google_time(change.end, self.zone),
        }
        if change.description is not None:
            body["description"] = change.description
        return body


@dataclass
class ImportedFile:
    name: str
    zone: str
    events: list[Imported]
    skipped: Counter[str] = field(default_factory=Counter)

    def first(self) -> datetime:
        """The earliest start of the file's events, as a UTC instant (a day's midnight)."""
        return min(_instant(e.start) for e in self.events)

    def windows(self) -> list[Window]:
        """The first 400 days of the file (the longest listing) and 400 days from 2 years
        later (where endless rules are started part-way)."""
        begin = self.first().replace(hour=0, minute=0, second=0, microsecond=0)
        first = begin - timedelta(days=1)
        later = first + timedelta(days=2 * 365 + 17)
        return [
            Window(first, first + timedelta(days=400)),
            Window(later, later + timedelta(days=400)),
        ]


def _instant(value: EventTime) -> datetime:
    if value.day is not None:
        return datetime.combine(value.day, datetime.min.time(), tzinfo=UTC)
    assert value.instant is not None
    return value.instant


def _key(value: EventTime) -> Start:
    if value.day is not None:
        return value.day
    assert value.instant is not None
    return value.instant


def _in(start: EventTime, end: EventTime, window: Window) -> bool:
    if start.day is not None and end.day is not None:
        return all_day_in_window(start.day, end.day, window.days)
    assert start.instant is not None
    assert end.instant is not None
    return timed_in_window(start.instant, end.instant, window.start, window.end)


def _google_time(value: EventTime, zone: str) -> dict[str, str]:
    if value.day is not None:
        return {"date": value.day.isoformat()}
    return {
        "dateTime": value.local().replace(tzinfo=None).isoformat(),
        "timeZone": value.timezone or zone,
    }


def iana(name: str | None) -> str | None:
    """The IANA zone a TZID names: itself, a Windows name's zone, or the last parts of a
    vendor path (``/mozilla.org/20050126_1/America/New_York``); None when none is."""
    if not name:
        return None
    name = name.strip('"')
    parts = name.strip("/").split("/")
    for candidate in (name, WINDOWS_TO_OLSON.get(name, ""), "/".join(parts[-2:]), parts[-1]):
        if not candidate:
            continue
        try:
            ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        return candidate
    return None


class Unimportable(Exception):
    """An event Google's import cannot hold; the message is its kind (for the count)."""


def read(path: Path) -> ImportedFile:
    """The file's events as Google holds them after importing it (see the module)."""
    with warnings.catch_warnings():
        # a vendor-prefixed TZID (``/freeassociation.sourceforge.net/Europe/Berlin``):
        # icalendar warns that it guesses; `iana` maps it the same way
        warnings.simplefilter("ignore", GloballyUniqueTZIDGuessed)
        return _read(path)


def _read(path: Path) -> ImportedFile:
    calendar = icalendar.Calendar.from_ical(path.read_bytes())
    zone = iana(str(calendar.get("X-WR-TIMEZONE", "")) or None) or "UTC"
    result = ImportedFile(path.name, zone, [])
    masters: dict[str, Any] = {}
    changes: dict[str, list[Any]] = {}
    for component in calendar.walk("VEVENT"):
        uid = str(component.get("UID", ""))
        if component.get("RECURRENCE-ID") is not None:
            changes.setdefault(uid, []).append(component)
        elif uid in masters:
            result.skipped["duplicate UID"] += 1
        else:
            masters[uid] = component
    for uid in changes.keys() - masters.keys():
        result.skipped["override without its series"] += len(changes[uid])
    for uid, component in masters.items():
        if str(component.get("STATUS", "")).upper() == "CANCELLED":
            result.skipped["cancelled event"] += 1
            continue
        try:
            event = _imported(component, zone)
        except Unimportable as why:
            result.skipped[str(why)] += 1
            continue
        except (ValueError, AttributeError, TypeError):
            # a property icalendar or calsync cannot read (a zone such as
            # ``posix/Europe/Vaduz``, a broken date): Google's import refuses it too
            result.skipped["unreadable event"] += 1
            continue
        kept: dict[Start, Override] = {}
        for change in sorted(changes.get(uid, []), key=_sequence):
            try:
                override = _override(change, event)
            except Unimportable as why:
                result.skipped[str(why)] += 1
                continue
            if override.original in kept:
                # the same instance changed again: the later change (higher SEQUENCE)
                # is the one that holds, at Google as in RFC 5545
                result.skipped["override repeated"] += 1
            kept[override.original] = override
        result.events.append(_with_overrides(event, list(kept.values())))
    return result


def _sequence(component: Any) -> int:
    try:
        return int(component.get("SEQUENCE", 0))
    except ValueError:
        return 0


def _with_overrides(event: Imported, overrides: list[Override]) -> Imported:
    return Imported(
        event.uid,
        event.title,
        event.start,
        event.end,
        event.recurrence,
        event.zone,
        event.description,
        event.location,
        tuple(overrides),
    )


def _time(prop: Any, zone: str, *, end_of: EventTime | None = None) -> EventTime:
    """A DTSTART/DTEND/RECURRENCE-ID value as Google reads it."""
    value = prop.dt
    if not isinstance(value, datetime):
        return EventTime.on(value)
    tzid = prop.params.get("TZID")
    if tzid:
        named = iana(tzid)
        if named is None:
            raise Unimportable("zone without IANA name")
        return EventTime.at(value.replace(tzinfo=None), named)
    if value.tzinfo is not None:
        return EventTime.at(value.astimezone(UTC), zone)
    floating_zone = end_of.timezone if end_of is not None and end_of.timezone else zone
    return EventTime.at(value, floating_zone)


def _text(component: Any, name: str) -> str | None:
    value = component.get(name)
    return None if value is None else str(value)


def _imported(component: Any, zone: str) -> Imported:
    if component.get("DTSTART") is None:
        raise Unimportable("no DTSTART")
    start = _time(component["DTSTART"], zone)
    end = _end(component, start, zone)
    lines = _recurrence(component, start, zone)
    return Imported(
        str(component.get("UID", "")),
        _text(component, "SUMMARY") or "",
        start,
        end,
        tuple(lines),
        zone,
        _text(component, "DESCRIPTION"),
        _text(component, "LOCATION"),
    )


def _end(component: Any, start: EventTime, zone: str) -> EventTime:
    if component.get("DTEND") is not None:
        end = _time(component["DTEND"], zone, end_of=start)
    elif component.get("DURATION") is not None:
        length = component["DURATION"].dt
        if start.day is not None:
            end = EventTime.on(start.day + timedelta(days=length.days))
        else:
            wall = start.local() + timedelta(days=length.days)
            assert start.timezone is not None
            later = EventTime.at(wall.replace(tzinfo=None), start.timezone)
            assert later.instant is not None
            end = EventTime.at(
                later.instant + (length - timedelta(days=length.days)), start.timezone
            )
    elif start.day is not None:
        end = EventTime.on(start.day + timedelta(days=1))
    else:
        end = start
    if (start.day is None) != (end.day is None):
        raise Unimportable("start and end of different kinds")
    if _instant(end) < _instant(start) or (start.day is not None and end == start):
        raise Unimportable("end before start")
    return end


_PERIOD = re.compile(r"VALUE=PERIOD", re.IGNORECASE)


def _recurrence(component: Any, start: EventTime, zone: str) -> list[str]:
    """The RRULE/EXRULE/RDATE/EXDATE lines as Google's ``recurrence`` holds them."""
    lines: list[str] = []
    for name in ("RRULE", "EXRULE"):
        for rule in _as_list(component.get(name)):
            lines.append(f"{name}:{rule.to_ical().decode()}")
    for name in ("RDATE", "EXDATE"):
        for prop in _as_list(component.get(name)):
            if _PERIOD.search(prop.to_ical().decode() if hasattr(prop, "to_ical") else ""):
                raise Unimportable("RDATE period")
            tzid = prop.params.get("TZID")
            for value in prop.dts:
                lines.append(_date_line(name, value.dt, tzid, start, zone))
    if lines and not any(line.startswith(("RRULE", "RDATE")) for line in lines):
        return []  # exclusions alone: a single event
    return lines


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _date_line(name: str, value: Any, tzid: str | None, start: EventTime, zone: str) -> str:
    if isinstance(value, tuple):
        raise Unimportable("RDATE period")
    if not isinstance(value, datetime):
        return f"{name};VALUE=DATE:{value:%Y%m%d}"
    if tzid:
        named = iana(tzid)
        if named is None:
            raise Unimportable("zone without IANA name")
        return f"{name};TZID={named}:{value:%Y%m%dT%H%M%S}"
    if value.tzinfo is not None:
        return f"{name}:{value.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return f"{name};TZID={start.timezone or zone}:{value:%Y%m%dT%H%M%S}"


def _override(component: Any, event: Imported) -> Override:
    original = _time(component["RECURRENCE-ID"], event.zone, end_of=event.start)
    if (original.day is None) != (event.start.day is None):
        raise Unimportable("override of another kind than its series")
    key = _key(original)
    around = Window(_instant(original) - timedelta(days=2), _instant(original) + timedelta(days=2))
    if not event.recurrence or key not in oracle_starts(event.series, around):
        raise Unimportable("override of no instance")
    title = _text(component, "SUMMARY") or event.title
    if str(component.get("STATUS", "")).upper() == "CANCELLED":
        return Override(key, None, None, title)
    # the change may make a timed instance all-day or back (Google and calsync hold it)
    start = _time(component["DTSTART"], event.zone) if component.get("DTSTART") else original
    end = (
        _end(component, start, event.zone)
        if component.get("DTEND") or component.get("DURATION")
        else _shifted(start, event)
    )
    return Override(key, start, end, title, _text(component, "DESCRIPTION"))


def _shifted(start: EventTime, event: Imported) -> EventTime:
    """The end of an override that gives none: its series' length after its start (a
    day, for an all-day change of a timed series)."""
    if start.day is not None:
        if event.start.day is None or event.end.day is None:
            return EventTime.on(start.day + timedelta(days=1))
        return EventTime.on(start.day + (event.end.day - event.start.day))
    assert start.instant is not None
    assert start.timezone is not None
    return EventTime.at(start.instant + event.series.duration, start.timezone)


def expected(files: list[ImportedFile], window: Window) -> list[Instance]:
    """Every instance the files' events should list in `window`, sorted."""
    return sorted((i for f in files for e in f.events for i in e.instances(window)), key=order)


def order(instance: Instance) -> tuple[str, str, str]:
    """A sort key for instances of timed and all-day events alike."""
    return (instance.start.isoformat(), instance.end.isoformat(), instance.title)


def is_date(value: Start) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)
