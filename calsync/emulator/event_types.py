"""Google's event types: what each lets a client create and change (decisions K4).

Sources: the event types guide
(https://developers.google.com/workspace/calendar/api/guides/event-types), the status
events guide (.../guides/calendar-status) and the Event resource's ``eventType``
(discovery: "cannot be modified after the event is created"). Refusals are 400
``eventTypeRestriction`` (domain ``calendar``), the reason Google gives for an event
"modified in a way that is not valid for this event type", or 400 ``invalid`` for a
value Google does not know.

- ``insert`` takes ``default``, ``outOfOffice``, ``focusTime``, ``workingLocation``
  (primary calendars only) and ``birthday``; never ``fromGmail``. Status types take their
  properties object, no guests, and the transparency (and visibility) the guide names;
  out of office and focus time are timed, a working location timed or one whole day.
  A birthday is one whole day, yearly, private, transparent, with nothing but a colorId,
  summary, reminders and ``birthdayProperties`` of type ``birthday``.
- ``update``/``patch`` keep the type. A ``fromGmail`` event changes only colorId,
  reminders, visibility, transparency, status, attendees and extended properties; a
  ``birthday`` only colorId, summary, reminders, and its date unless linked to a contact
  or the owner's own; status events keep their shape.
- ``events.list``/``watch`` ``eventTypes``: only those types; every type when unset.

`seed_fields` is the back door of ``POST /emulator/calendars/{id}/events``: events
Gmail or Contacts make (``fromGmail``, linked birthdays), which no client can create.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from calsync.emulator import errors
from calsync.emulator.event_model import JSON, WRITABLE_FIELDS, Timing

__all__ = [
    "EVENT_TYPES",
    "PROPERTIES_KEYS",
    "check_create",
    "check_update",
    "event_types_filter",
    "restricted",
    "seed_fields",
]

EVENT_TYPES: Final = frozenset(
    {"default", "outOfOffice", "focusTime", "workingLocation", "birthday", "fromGmail"}
)
PROPERTIES_KEYS: Final[Mapping[str, str]] = {
    "outOfOffice": "outOfOfficeProperties",
    "focusTime": "focusTimeProperties",
    "workingLocation": "workingLocationProperties",
    "birthday": "birthdayProperties",
}
_STATUS: Final = frozenset({"outOfOffice", "focusTime", "workingLocation"})
_REQUIRED: Final[Mapping[str, Mapping[str, str]]] = {
    "outOfOffice": {"transparency": "opaque"},
    "focusTime": {"transparency": "opaque"},
    "workingLocation": {"transparency": "transparent", "visibility": "public"},
    "birthday": {"transparency": "transparent", "visibility": "private"},
}
_DECLINE_MODES: Final = frozenset(
    {"declineNone", "declineAllConflictingInvitations", "declineOnlyNewConflictingInvitations"}
)
_LOCATION_TYPES: Final = frozenset({"homeOffice", "officeLocation", "customLocation"})
_BIRTHDAY_RULES: Final = ("RRULE:FREQ=YEARLY", "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1")
_BIRTHDAY_FIELDS: Final = frozenset(
    {"eventType", "start", "end", "recurrence", "summary", "colorId", "reminders"}
    | {"birthdayProperties", "transparency", "visibility", "status", "sequence"}
)
_FROM_GMAIL_CHANGEABLE: Final = frozenset(
    {"colorId", "reminders", "visibility", "transparency", "status", "attendees"}
    | {"extendedProperties", "sequence"}
)
_BIRTHDAY_CHANGEABLE: Final = frozenset({"colorId", "summary", "reminders", "sequence"})
_BIRTHDAY_DATE: Final = frozenset({"start", "end"})


def restricted(kind: str) -> errors.GoogleApiError:
    return errors.GoogleApiError(
        400,
        "eventTypeRestriction",
        f"Attempt made to modify '{kind}' event in a way that is not valid for this event type.",
        domain="calendar",
    )


def _type_of(fields: Mapping[str, Any]) -> str:
    kind = fields.get("eventType", "default")
    if kind not in EVENT_TYPES:
        raise errors.invalid(f"Invalid event type: {kind}", "eventType")
    return str(kind)


def check_create(fields: JSON, timing: Timing, *, primary: bool) -> None:
    """Refuse an insert Google refuses; fill in what a status type implies (in place)."""
    kind = _type_of(fields)
    _only_own_properties(fields, kind)
    if kind == "default":
        return
    if kind == "fromGmail":
        raise restricted(kind)
    if kind in _STATUS and not primary:
        raise restricted(kind)
    for key, value in _REQUIRED[kind].items():
        if fields.setdefault(key, value) != value:
            raise restricted(kind)
    if kind == "birthday":
        _check_new_birthday(fields, timing)
    else:
        _check_status(fields, timing, kind)


def check_update(current: Mapping[str, Any], fields: JSON, timing: Timing) -> None:
    """Refuse a change of `current` to `fields` (after patch merging) Google refuses."""
    kind = str(current.get("eventType", "default"))
    if fields.setdefault("eventType", kind) != kind:
        raise restricted(kind)
    _only_own_properties(fields, kind)
    if kind == "default":
        return
    if kind in _STATUS:
        _check_status(fields, timing, kind)
        return
    changed = {
        key
        for key in set(current) | set(fields)
        if key in WRITABLE_FIELDS and current.get(key) != fields.get(key)
    }
    if kind == "fromGmail":
        allowed = _FROM_GMAIL_CHANGEABLE
    else:
        properties = current.get("birthdayProperties") or {}
        fixed_date = bool(properties.get("contact")) or properties.get("type") == "self"
        allowed = _BIRTHDAY_CHANGEABLE if fixed_date else _BIRTHDAY_CHANGEABLE | _BIRTHDAY_DATE
        if changed & _BIRTHDAY_DATE and not _one_day(timing):
            raise restricted(kind)
    if changed - allowed:
        raise restricted(kind)


def _only_own_properties(fields: Mapping[str, Any], kind: str) -> None:
    for other, key in PROPERTIES_KEYS.items():
        if other != kind and fields.get(key) is not None:
            raise errors.invalid(f"{key} is only allowed on {other} events.", key)


def _one_day(timing: Timing) -> bool:
    return timing.all_day and timing.duration.days == 1


def _check_status(fields: Mapping[str, Any], timing: Timing, kind: str) -> None:
    key = PROPERTIES_KEYS[kind]
    properties = fields.get(key)
    if not isinstance(properties, Mapping):
        raise errors.required(f"Missing {key}.", key)
    if fields.get("attendees"):
        raise restricted(kind)
    if kind == "workingLocation":
        if timing.all_day and not _one_day(timing):
            raise restricted(kind)
        if properties.get("type") not in _LOCATION_TYPES:
            raise errors.invalid("Invalid working location type.", f"{key}.type")
        return
    if timing.all_day:
        raise restricted(kind)
    mode = properties.get("autoDeclineMode")
    if mode is not None and mode not in _DECLINE_MODES:
        raise errors.invalid(f"Invalid autoDeclineMode: {mode}", f"{key}.autoDeclineMode")
    status = properties.get("chatStatus")
    if status is not None and (kind != "focusTime" or status not in ("available", "doNotDisturb")):
        raise errors.invalid(f"Invalid chatStatus: {status}", f"{key}.chatStatus")


def _check_new_birthday(fields: Mapping[str, Any], timing: Timing) -> None:
    if set(fields) - _BIRTHDAY_FIELDS or not _one_day(timing):
        raise restricted("birthday")
    if list(fields.get("recurrence") or ()) not in ([rule] for rule in _BIRTHDAY_RULES):
        raise restricted("birthday")
    properties = fields.get("birthdayProperties") or {}
    if properties.get("type", "birthday") != "birthday" or set(properties) - {"type"}:
        raise restricted("birthday")


def seed_fields(fields: JSON) -> JSON:
    """The fields of an event Google itself makes (Gmail, Contacts): any known type,
    with the transparency and visibility its type implies."""
    kind = _type_of(fields)
    _only_own_properties(fields, kind)
    for key, value in _REQUIRED.get(kind, {}).items():
        fields.setdefault(key, value)
    return fields


def event_types_filter(values: Iterable[str]) -> frozenset[str] | None:
    """The ``eventTypes`` a list or watch asks for (`None`: every type); 400 if unknown."""
    wanted = frozenset(values)
    unknown = wanted - EVENT_TYPES
    if unknown:
        raise errors.invalid(f"Invalid value for eventTypes: {sorted(unknown)[0]}", "eventTypes")
    return wanted or None
