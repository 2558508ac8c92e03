"""Google's event types and the rules each puts on writes (pure; decisions K1-K4).

Every Google event has a type (`eventType`), fixed when it is created:

- ``default``: an ordinary event;
- ``outOfOffice``, ``focusTime``, ``workingLocation`` (the *status* types): only on
  primary calendars, with their own properties (``outOfOfficeProperties``, ...);
- ``birthday``: a yearly all-day event, often linked to a contact;
- ``fromGmail``: made by Gmail from an email; nobody can create one through the API.

Sources: https://developers.google.com/workspace/calendar/api/guides/event-types and
https://developers.google.com/workspace/calendar/api/guides/calendar-status.

An event's type-specific properties are kept as Google spells them (`TypeProperties`,
the JSON object of ``outOfOfficeProperties``, ``focusTimeProperties``,
``workingLocationProperties`` or ``birthdayProperties``). Types calsync does not know
(Google added ``fromGmail`` in 2024; it may add more) are stored as they come and are
read-only here: a pull never fails on them and calsync never writes what it cannot
check.

`creation_problems` and `update_problems` say what Google would refuse, so that the API
refuses it before anything reaches the outbox; they return problems, never raise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from calsync.domain.syncable import SYNCABLE_ORDER

if TYPE_CHECKING:
    from calsync.domain.models import Event

__all__ = [
    "CREATABLE_TYPES",
    "PROPERTIES_KEYS",
    "STATUS_TYPES",
    "EventType",
    "TypeProblem",
    "TypeProperties",
    "creation_problems",
    "update_problems",
]


class EventType(StrEnum):
    """The event types Google documents (``Event.eventType``)."""

    DEFAULT = "default"
    OUT_OF_OFFICE = "outOfOffice"
    FOCUS_TIME = "focusTime"
    WORKING_LOCATION = "workingLocation"
    BIRTHDAY = "birthday"
    FROM_GMAIL = "fromGmail"


#: The types that describe the calendar owner's status; primary calendars only.
STATUS_TYPES: Final = frozenset(
    {EventType.OUT_OF_OFFICE, EventType.FOCUS_TIME, EventType.WORKING_LOCATION}
)
#: The types calsync creates. Google creates ``fromGmail`` alone; a ``birthday`` made
#: through the API may carry no extended property, so calsync could not tag it (K2).
CREATABLE_TYPES: Final = frozenset({EventType.DEFAULT} | STATUS_TYPES)
#: The key of each type's properties in Google's Event resource.
PROPERTIES_KEYS: Final[Mapping[str, str]] = {
    EventType.OUT_OF_OFFICE: "outOfOfficeProperties",
    EventType.FOCUS_TIME: "focusTimeProperties",
    EventType.WORKING_LOCATION: "workingLocationProperties",
    EventType.BIRTHDAY: "birthdayProperties",
}

#: What an update may change on a ``fromGmail`` event: Google allows colorId, reminders,
#: visibility, transparency, status, attendees and extended properties, so every
#: `Event` field but these (which Gmail owns) (K3).
_FROM_GMAIL_FIXED: Final = (
    "title",
    "description",
    "location",
    "start",
    "end",
    "timezone",
    "recurrence",
)
#: On a ``birthday`` event Google allows only colorId, summary, reminders, and the
#: date (start and end) unless the birthday is linked to a contact or is the owner's own.
_BIRTHDAY_FIXED: Final = (
    "description",
    "location",
    "recurrence",
    "attendees",
    "metadata",
    "category",
)
_BIRTHDAY_DATE: Final = ("start", "end", "timezone")


class TypeProperties(Mapping[str, Any]):
    """An immutable, hashable JSON object: one type's properties as Google spells them."""

    __slots__ = ("_items", "_key")

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        self._items: dict[str, Any] = json.loads(json.dumps(dict(items or {})))
        self._key = json.dumps(self._items, sort_keys=True, separators=(",", ":"))

    def __getitem__(self, key: str) -> Any:
        value = self._items[key]
        return json.loads(json.dumps(value)) if isinstance(value, dict | list) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TypeProperties):
            return self._key == other._key
        if isinstance(other, Mapping):
            return self._items == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"TypeProperties({self._items!r})"

    def to_json(self) -> dict[str, Any]:
        """A deep copy, as plain JSON values."""
        result: dict[str, Any] = json.loads(self._key)
        return result


@dataclass(frozen=True, slots=True)
class TypeProblem:
    """A write Google would refuse: `status` 422 (the input is wrong) or 403 (Google
    lets nobody make this change to this type of event), naming the API's `field`."""

    status: int
    field: str
    message: str


def creation_problems(event: Event, *, primary: bool) -> list[TypeProblem]:
    """What Google would refuse in creating `event` (its `event_type` set) on a
    primary (`primary`) or other calendar."""
    kind = event.event_type
    if kind not in CREATABLE_TYPES:
        return [
            TypeProblem(
                422,
                "event_type",
                f"calsync creates {', '.join(sorted(CREATABLE_TYPES))} events; "
                f"{kind} events are made by Google",
            )
        ]
    if kind == EventType.DEFAULT:
        return []
    problems = []
    if not primary:
        problems.append(
            TypeProblem(422, "calendar_id", f"{kind} events exist only on primary calendars")
        )
    problems += _status_shape(event)
    return problems


def update_problems(before: Event, after: Event) -> list[TypeProblem]:
    """What Google would refuse in changing `before` into `after`."""
    kind = before.event_type
    if after.event_type != kind:
        return [TypeProblem(422, "event_type", "the event type cannot change after creation")]
    if after.type_properties != before.type_properties and kind not in STATUS_TYPES:
        return [TypeProblem(403, _PROPERTIES_FIELD.get(kind, "event_type"), _fixed(kind))]
    if kind == EventType.DEFAULT:
        return []
    if kind in STATUS_TYPES:
        return _status_shape(after) if _changed(before, after, *_SHAPE) else []
    if kind == EventType.FROM_GMAIL:
        fixed = _changed(before, after, *_FROM_GMAIL_FIXED)
        return [TypeProblem(403, _API_NAMES.get(name, name), _fixed(kind)) for name in fixed]
    if kind == EventType.BIRTHDAY:
        return _birthday_problems(before, after)
    # A type calsync does not know: nothing it could check may change (K1).
    changed = _changed(before, after, *_ALL_FIELDS)
    return [TypeProblem(403, _API_NAMES.get(name, name), _fixed(kind)) for name in changed]


_SHAPE: Final = ("start", "end", "attendees", "type_properties")
#: Everything a write could change: for a type calsync does not know, none of it may.
_ALL_FIELDS: Final = SYNCABLE_ORDER
_API_NAMES: Final[Mapping[str, str]] = {"start": "start_time", "end": "end_time"}
_PROPERTIES_FIELD: Final[Mapping[str, str]] = {EventType.BIRTHDAY: "birthday"}


def _fixed(kind: str) -> str:
    return f"Google does not let this field of a {kind} event change"


def _changed(before: Event, after: Event, *names: str) -> list[str]:
    return [name for name in names if getattr(before, name) != getattr(after, name)]


def _status_shape(event: Event) -> list[TypeProblem]:
    """Google's rules for the times, guests and properties of a status event."""
    kind = event.event_type
    problems = []
    if kind in (EventType.OUT_OF_OFFICE, EventType.FOCUS_TIME) and event.all_day:
        problems.append(TypeProblem(422, "all_day", f"a {kind} event cannot be all-day"))
    if kind == EventType.WORKING_LOCATION and event.all_day and not _one_day(event):
        problems.append(
            TypeProblem(422, "end_time", "an all-day workingLocation event spans exactly one day")
        )
    if event.attendees:
        problems.append(TypeProblem(422, "attendees", f"a {kind} event has no guests"))
    properties: Mapping[str, Any] = event.type_properties or {}
    if kind == EventType.WORKING_LOCATION and not properties.get("type"):
        problems.append(
            TypeProblem(422, "working_location", "a workingLocation event needs its type")
        )
    return problems


def _one_day(event: Event) -> bool:
    return event.duration == timedelta(days=1)


def _birthday_problems(before: Event, after: Event) -> list[TypeProblem]:
    problems = [
        TypeProblem(403, _API_NAMES.get(name, name), _fixed(EventType.BIRTHDAY))
        for name in _changed(before, after, *_BIRTHDAY_FIXED)
    ]
    if _changed(before, after, *_BIRTHDAY_DATE):
        properties: Mapping[str, Any] = before.type_properties or {}
        if properties.get("contact") or properties.get("type") == "self":
            problems.append(
                TypeProblem(
                    403,
                    "start_time",
                    "the date of a birthday linked to a contact (or the owner's own) "
                    "changes in Google Contacts, not here",
                )
            )
        elif not (after.all_day and _one_day(after)):
            problems.append(
                TypeProblem(422, "end_time", "a birthday is an all-day event of exactly one day")
            )
    return problems
