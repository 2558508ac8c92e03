"""The event-type part of Google's Event resource (decisions K1-K3).

`type_from_google` reads ``eventType`` and the type's properties object; `type_to_google`
completes a request body of `mapping.event_to_google` for the event's type: on insert
the type, its properties and the transparency and visibility Google requires of it;
and for the types whose updates Google restricts (``fromGmail``, ``birthday``, types
calsync does not know) it leaves out of a patch every field Google would refuse, so an
allowed edit (a reminder, an attendee) never fails on a field calsync did not change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from calsync.domain.event_types import (
    PROPERTIES_KEYS,
    STATUS_TYPES,
    EventType,
    TypeProperties,
)
from calsync.domain.models import Event

__all__ = ["type_from_google", "type_to_google"]

#: What a type name from Google may look like to be stored as it is (the column holds 32).
_TYPE_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")
#: The transparency and visibility Google requires when creating each status type.
_REQUIRED: Final[Mapping[str, Mapping[str, str]]] = {
    EventType.OUT_OF_OFFICE: {"transparency": "opaque"},
    EventType.FOCUS_TIME: {"transparency": "opaque"},
    EventType.WORKING_LOCATION: {"transparency": "transparent", "visibility": "public"},
}
#: The body fields a patch of each restricted type may carry (Google's event types guide).
_PATCHABLE: Final[Mapping[str, frozenset[str]]] = {
    EventType.FROM_GMAIL: frozenset(
        {
            "colorId",
            "reminders",
            "visibility",
            "transparency",
            "status",
            "attendees",
            "extendedProperties",
        }
    ),
    EventType.BIRTHDAY: frozenset({"colorId", "summary", "reminders", "start", "end"}),
}


def type_from_google(resource: Mapping[str, Any]) -> tuple[str, TypeProperties | None]:
    """The event type and its properties of a Google Event resource.

    A missing type is ``default`` (Google's default). A type calsync does not know is
    kept as Google spells it; one that cannot be a type name raises `ValueError` (the
    resource is malformed). Properties are kept only for the types that have them.
    """
    kind = resource.get("eventType") or EventType.DEFAULT
    if not isinstance(kind, str) or not _TYPE_NAME.fullmatch(kind):
        raise ValueError("a Google event resource with an eventType calsync cannot store")
    key = PROPERTIES_KEYS.get(kind)
    properties = resource.get(key) if key is not None else None
    if properties is None:
        return kind, None
    if not isinstance(properties, Mapping):
        raise TypeError(f"{key} must be an object")
    return kind, TypeProperties(_storable(properties))


def _cleared(new: dict[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
    """`new` with a JSON null for each key of `old` it lacks, in nested objects too."""
    result: dict[str, Any] = dict(new)
    for name, value in old.items():
        if name not in new:
            result[name] = None
        elif isinstance(value, Mapping) and isinstance(new[name], dict):
            result[name] = _cleared(new[name], value)
    return result


def _storable(value: Any) -> Any:
    """`value` with each NUL and lone surrogate in its texts (keys too) replaced by
    U+FFFD, as `mapping.storable_text` does: no JSON column can hold either (H1)."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, Mapping):
        return {_storable(str(k)): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def type_to_google(
    body: dict[str, Any], event: Event, *, previous: Event | None, inserting: bool
) -> None:
    """Complete `body` (a request body for `event`) for the event's type, in place."""
    kind = event.event_type
    if kind == EventType.DEFAULT:
        return
    key = PROPERTIES_KEYS.get(kind)
    if kind in STATUS_TYPES:
        body["eventType"] = str(kind)
        if key is not None:
            properties = event.type_properties.to_json() if event.type_properties else {}
            before = previous.type_properties if previous is not None else None
            # A patch merges objects: what the event no longer has is cleared with null.
            body[key] = _cleared(properties, before.to_json()) if before else properties
        if inserting:
            body.update(_REQUIRED.get(kind, {}))
        return
    allowed = _PATCHABLE.get(kind, frozenset())
    for name in list(body):
        if name not in allowed:
            del body[name]
    # Unchanged dates are left out: Google refuses any date on a birthday linked to a
    # contact (or the owner's own), even the same one.
    unchanged = previous is not None and (previous.start, previous.end) == (event.start, event.end)
    if kind == EventType.BIRTHDAY and unchanged:
        body.pop("start", None)
        body.pop("end", None)
