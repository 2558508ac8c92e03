"""Event resources: validating what clients write and shaping what Google returns.

Contracts:
- Stored resources are never mutated; every write builds a new dict (copy on write), so a
  resource taken out of the store under the lock may be serialised after releasing it.
- :func:`clean_fields` keeps only the fields a client may write and validates them the
  way Google does (400 with Google's reasons); read-only fields in a body are ignored.
- :class:`EventTime` is a parsed ``start``/``end``: all-day values are naive midnights
  (instants at midnight in the calendar's zone), timed values aware in their zone.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from calsync.emulator import errors, timefmt

JSON = dict[str, Any]

WRITABLE_FIELDS = frozenset(
    {
        "summary",
        "description",
        "location",
        "colorId",
        "start",
        "end",
        "endTimeUnspecified",
        "recurrence",
        "transparency",
        "visibility",
        "attendees",
        "reminders",
        "extendedProperties",
        "status",
        "guestsCanInviteOthers",
        "guestsCanModify",
        "guestsCanSeeOtherGuests",
        "anyoneCanAddSelf",
        "source",
        "sequence",
        "attachments",
        "conferenceData",
        "eventType",
        "outOfOfficeProperties",
        "focusTimeProperties",
        "workingLocationProperties",
        "birthdayProperties",
    }
)
FIELD_ORDER = (
    "kind",
    "etag",
    "id",
    "status",
    "htmlLink",
    "created",
    "updated",
    "summary",
    "description",
    "location",
    "colorId",
    "creator",
    "organizer",
    "start",
    "end",
    "endTimeUnspecified",
    "recurrence",
    "recurringEventId",
    "originalStartTime",
    "transparency",
    "visibility",
    "iCalUID",
    "sequence",
    "attendees",
    "guestsCanInviteOthers",
    "guestsCanModify",
    "guestsCanSeeOtherGuests",
    "anyoneCanAddSelf",
    "extendedProperties",
    "reminders",
    "source",
    "attachments",
    "conferenceData",
    "eventType",
    "outOfOfficeProperties",
    "focusTimeProperties",
    "workingLocationProperties",
    "birthdayProperties",
)
_FIELD_RANK = {name: rank for rank, name in enumerate(FIELD_ORDER)}
# Changes to these raise ``sequence`` (RFC 5546's "significant" properties).
SIGNIFICANT_FIELDS = ("start", "end", "recurrence", "status")

STATUSES = frozenset({"confirmed", "tentative", "cancelled"})
#: The event palette of ``colors.get``: an event's ``colorId`` is one of its keys.
EVENT_COLOR_IDS = frozenset(str(number) for number in range(1, 12))
RESPONSE_STATUSES = frozenset({"needsAction", "declined", "tentative", "accepted"})
MAX_REMINDER_MINUTES = 40320
MAX_PROPERTY_KEY = 44
MAX_PROPERTY_VALUE = 1024
MAX_PROPERTIES = 300

_etags = itertools.count(time.time_ns() // 1000)


def new_etag() -> str:
    """A fresh, quoted etag; no two writes in a process share one."""
    return f'"{next(_etags)}"'


@dataclass(frozen=True)
class EventTime:
    """A parsed ``start``/``end``/``originalStartTime``."""

    all_day: bool
    local: datetime  # naive midnight (all-day) or aware in ``zone``
    zone: tzinfo  # the zone it is shown in (calendar's for all-day and offset-only values)
    zone_name: str | None  # the ``timeZone`` field the client gave, if any

    @property
    def instant(self) -> datetime:
        """The moment in UTC, all-day values at midnight in ``zone``.

        UTC, not ``zone``: Python compares and subtracts two datetimes of the same
        ``tzinfo`` by their wall-clock times, fold ignored, so 01:30 EDT would come after
        01:15 EST on a fall-back day although it is 45 minutes before it."""
        if self.all_day:
            return self.local.replace(tzinfo=self.zone).astimezone(UTC)
        return self.local.astimezone(UTC)

    def shifted(self, local: datetime) -> EventTime:
        return EventTime(self.all_day, local, self.zone, self.zone_name)

    def to_resource(self) -> JSON:
        if self.all_day:
            return {"date": self.local.date().isoformat()}
        shown: JSON = {"dateTime": timefmt.local_iso(self.local, self.zone)}
        if self.zone_name is not None:
            shown["timeZone"] = self.zone_name
        return shown


def parse_event_time(
    value: Any, *, field: str, calendar_zone: tzinfo, recurring: bool = False
) -> EventTime:
    """Parse a ``start``/``end`` object; 400 when malformed or missing a zone."""
    if not isinstance(value, Mapping):
        raise errors.required(f"Missing {field} time.", field)
    zone_name = value.get("timeZone")
    if zone_name is not None and not isinstance(zone_name, str):
        raise errors.invalid(f"Invalid time zone definition for {field} time.", field)
    has_date, has_dt = value.get("date") is not None, value.get("dateTime") is not None
    if not has_date and not has_dt:
        raise errors.required(f"Missing {field} time.", field)
    if has_date and has_dt:
        raise errors.invalid(f"Invalid {field} time: both date and dateTime.", field)
    zone = timefmt.zone(zone_name, location=field) if zone_name else calendar_zone
    if has_date:
        day = timefmt.parse_date(str(value["date"]), location=field)
        return EventTime(True, datetime(day.year, day.month, day.day), calendar_zone, None)
    moment = timefmt.parse_rfc3339(str(value["dateTime"]), location=field, require_offset=False)
    if moment.tzinfo is None and zone_name is None:
        raise errors.invalid(f"Missing time zone definition for {field} time.", field)
    if recurring and zone_name is None:
        raise errors.required(f"Missing time zone definition for {field} time.", field)
    local = moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)
    return EventTime(False, local, zone, zone_name)


@dataclass(frozen=True)
class Timing:
    start: EventTime
    end: EventTime

    @property
    def all_day(self) -> bool:
        return self.start.all_day

    @property
    def duration(self) -> timedelta:
        """Wall-clock length: whole days for all-day events (immune to DST changes)."""
        if self.all_day:
            return self.end.local - self.start.local
        return self.end.instant - self.start.instant

    def overlaps(
        self, after: datetime | None, before: datetime | None, *, end_inclusive: bool = False
    ) -> bool:
        """Google's window test: ends after ``timeMin`` (events.list: exclusive; at it
        too with `end_inclusive`, as events.instances documents), starts before
        ``timeMax``."""
        ends_in = after is None or self.end.instant > after
        if end_inclusive and not ends_in:
            ends_in = self.end.instant == after
        return ends_in and (before is None or self.start.instant < before)


def parse_timing(fields: Mapping[str, Any], *, calendar_zone: tzinfo) -> Timing:
    """Parse and cross-check ``start`` and ``end``; 400 ``timeRangeEmpty`` if reversed."""
    recurring = bool(fields.get("recurrence"))
    start = parse_event_time(
        fields.get("start"), field="start", calendar_zone=calendar_zone, recurring=recurring
    )
    end = parse_event_time(
        fields.get("end"), field="end", calendar_zone=calendar_zone, recurring=recurring
    )
    if start.all_day != end.all_day:
        raise errors.invalid("Start and end times must either both be date or both be dateTime.")
    if end.instant < start.instant or (start.all_day and end.instant == start.instant):
        raise errors.GoogleApiError(400, "timeRangeEmpty", location="end")
    return Timing(start, end)


def _check_attendees(value: Any) -> list[JSON]:
    if not isinstance(value, list):
        raise errors.invalid("Invalid attendees.", "attendees")
    cleaned: list[JSON] = []
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, Mapping) or not isinstance(item.get("email"), str):
            raise errors.required("Missing attendee email.", "attendees")
        attendee = dict(item)
        email = attendee["email"].strip()
        if "@" not in email:
            raise errors.invalid(f"Invalid attendee email: {email}", "attendees")
        if email.lower() in seen:
            continue
        seen.add(email.lower())
        attendee["email"] = email
        status = attendee.setdefault("responseStatus", "needsAction")
        if status not in RESPONSE_STATUSES:
            raise errors.invalid(f"Invalid responseStatus: {status}", "attendees")
        cleaned.append(attendee)
    return cleaned


def _check_reminders(value: Any) -> JSON:
    if not isinstance(value, Mapping):
        raise errors.invalid("Invalid reminders.", "reminders")
    use_default = bool(value.get("useDefault", False))
    overrides = value.get("overrides")
    if overrides is None:
        return {"useDefault": use_default}
    if not isinstance(overrides, list):
        raise errors.invalid("Invalid reminder overrides.", "reminders.overrides")
    if use_default and overrides:
        raise errors.GoogleApiError(
            400,
            "cannotUseDefaultRemindersAndSpecifyOverride",
            "Cannot specify both default reminders and overrides at the same time.",
            domain="calendar",
        )
    if len(overrides) > 5:
        raise errors.invalid("Too many reminders.", "reminders.overrides")
    checked: list[JSON] = []
    for item in overrides:
        minutes = item.get("minutes") if isinstance(item, Mapping) else None
        method = item.get("method") if isinstance(item, Mapping) else None
        if method not in ("email", "popup"):
            raise errors.required("Missing reminder method.", "reminders.overrides.method")
        if not isinstance(minutes, int) or not 0 <= minutes <= MAX_REMINDER_MINUTES:
            raise errors.invalid("Invalid reminder minutes.", "reminders.overrides.minutes")
        checked.append({"method": method, "minutes": minutes})
    return {"useDefault": use_default, "overrides": checked}


def _check_properties(value: Any) -> JSON:
    if not isinstance(value, Mapping):
        raise errors.invalid("Invalid extendedProperties.", "extendedProperties")
    checked: JSON = {}
    total = 0
    for scope in ("private", "shared"):
        props = value.get(scope)
        if props is None:
            continue
        if not isinstance(props, Mapping):
            raise errors.invalid(f"Invalid extendedProperties.{scope}.", "extendedProperties")
        for key, item in props.items():
            if not isinstance(item, str) or len(key) > MAX_PROPERTY_KEY:
                raise errors.invalid(f"Invalid extended property: {key}", "extendedProperties")
            if len(item) > MAX_PROPERTY_VALUE:
                raise errors.invalid(f"Extended property value too long: {key}")
        total += len(props)
        checked[scope] = dict(props)
    if total > MAX_PROPERTIES:
        raise errors.invalid("Too many extended properties.", "extendedProperties")
    return checked


def clean_fields(body: Mapping[str, Any], *, is_exception: bool = False) -> JSON:
    """The writable fields of ``body``, validated (start/end are checked separately)."""
    fields: JSON = {key: copy.deepcopy(val) for key, val in body.items() if key in WRITABLE_FIELDS}
    fields = {key: val for key, val in fields.items() if val is not None}
    status = fields.get("status", "confirmed")
    if status not in STATUSES:
        raise errors.invalid(f"Invalid status: {status}", "status")
    if "recurrence" in fields:
        lines = fields["recurrence"]
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise errors.invalid("Invalid recurrence.", "recurrence")
        if is_exception and lines:
            raise errors.invalid("An instance of a recurring event cannot recur.", "recurrence")
        if not lines:
            del fields["recurrence"]
    if "transparency" in fields and fields["transparency"] not in ("opaque", "transparent"):
        raise errors.invalid("Invalid transparency.", "transparency")
    visibility = fields.get("visibility", "default")
    if visibility not in ("default", "public", "private", "confidential"):
        raise errors.invalid("Invalid visibility.", "visibility")
    if "colorId" in fields and fields["colorId"] not in EVENT_COLOR_IDS:
        raise errors.invalid("Invalid color id.", "colorId")
    if "attendees" in fields:
        fields["attendees"] = _check_attendees(fields["attendees"])
    if "reminders" in fields:
        fields["reminders"] = _check_reminders(fields["reminders"])
    if "extendedProperties" in fields:
        fields["extendedProperties"] = _check_properties(fields["extendedProperties"])
    if "sequence" in fields and (not isinstance(fields["sequence"], int) or fields["sequence"] < 0):
        raise errors.invalid("Invalid sequence value.", "sequence")
    return fields


def merge_patch(base: Mapping[str, Any], patch: Mapping[str, Any]) -> JSON:
    """Google's patch semantics: objects merge, arrays replace, ``null`` clears.

    ``start``/``end`` are merged as wholes: giving ``date`` drops ``dateTime`` and vice
    versa, so a patch can turn a timed event into an all-day one.
    """
    merged: JSON = copy.deepcopy(dict(base))
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif key in ("start", "end") and isinstance(value, Mapping):
            previous = dict(merged.get(key) or {})
            if "date" in value:
                previous.pop("dateTime", None)
                previous.pop("timeZone", None)
            if "dateTime" in value:
                previous.pop("date", None)
            previous.update(value)
            merged[key] = {k: v for k, v in previous.items() if v is not None}
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def ordered(resource: JSON) -> JSON:
    """The same resource with keys in Google's order (unknown keys last)."""
    return dict(sorted(resource.items(), key=lambda kv: _FIELD_RANK.get(kv[0], len(_FIELD_RANK))))


def mark_self(resource: JSON, calendar_id: str) -> None:
    """Set the calendar-relative ``self`` flags (Google: "this copy of the event")."""
    for key in ("creator", "organizer"):
        person = resource.get(key)
        if isinstance(person, dict):
            if person.get("email") == calendar_id:
                person["self"] = True
            else:
                person.pop("self", None)
    organizer = (resource.get("organizer") or {}).get("email")
    for attendee in resource.get("attendees") or []:
        attendee.pop("self", None)
        if attendee.get("email") == calendar_id:
            attendee["self"] = True
        if attendee.get("email") == organizer:
            attendee["organizer"] = True


def cancelled_stub(resource: Mapping[str, Any]) -> JSON:
    """What a list shows for a cancelled event: Google guarantees only these fields."""
    stub: JSON = {
        "kind": "calendar#event",
        "etag": resource["etag"],
        "id": resource["id"],
        "status": "cancelled",
    }
    for key in ("recurringEventId", "originalStartTime"):
        if key in resource:
            stub[key] = copy.deepcopy(resource[key])
    return stub
