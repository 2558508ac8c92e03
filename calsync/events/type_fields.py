"""The API's event-type fields: ``event_type`` and each type's properties (decisions K1).

Clients write ``event_type`` (on create only; a PUT may repeat the event's own type)
and the properties of the status types as objects with snake_case keys and Google's
values: ``out_of_office`` (``auto_decline_mode``, ``decline_message``), ``focus_time``
(the same and ``chat_status``), ``working_location`` (``type``, ``custom_location``
``{label}``, ``office_location`` ``{building_id, floor_id, floor_section_id, desk_id,
label}``). ``birthday`` (``type``, ``custom_type_name``, ``contact``) is shown, never
written. The stored properties are Google's own objects; this module converts both
ways. Readers raise `ValidationError` naming the field, as `changes_input`'s do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from calsync.domain.errors import ValidationError
from calsync.domain.event_types import PROPERTIES_KEYS, EventType, TypeProperties
from calsync.domain.models import Event

__all__ = [
    "PROPERTY_FIELDS",
    "TYPE_FIELDS",
    "TYPE_READERS",
    "apply_type_changes",
    "type_json",
]

#: The API field of each type's properties.
PROPERTY_FIELDS: Final[Mapping[str, str]] = {
    EventType.OUT_OF_OFFICE: "out_of_office",
    EventType.FOCUS_TIME: "focus_time",
    EventType.WORKING_LOCATION: "working_location",
    EventType.BIRTHDAY: "birthday",
}
#: The writable fields this module reads (``birthday`` is read-only).
TYPE_FIELDS: Final = ("event_type", "out_of_office", "focus_time", "working_location")

_DECLINE_MODES: Final = (
    "declineNone",
    "declineAllConflictingInvitations",
    "declineOnlyNewConflictingInvitations",
)
_TEXT_LIMIT: Final = 1024
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_Schema = Mapping[str, Any]  # key -> tuple of allowed values, "text", or a nested schema
_OFFICE: Final[_Schema] = {
    key: "text" for key in ("building_id", "floor_id", "floor_section_id", "desk_id", "label")
}
_SCHEMAS: Final[Mapping[str, _Schema]] = {
    "out_of_office": {"auto_decline_mode": _DECLINE_MODES, "decline_message": "text"},
    "focus_time": {
        "auto_decline_mode": _DECLINE_MODES,
        "decline_message": "text",
        "chat_status": ("available", "doNotDisturb"),
    },
    "working_location": {
        "type": ("homeOffice", "officeLocation", "customLocation"),
        "custom_location": {"label": "text"},
        "office_location": _OFFICE,
    },
}
#: The sub-object each working location type may carry.
_LOCATION_DETAIL: Final = {"customLocation": "custom_location", "officeLocation": "office_location"}


def _event_type(name: str, value: Any) -> str:
    if not isinstance(value, str) or value not in set(EventType):
        allowed = ", ".join(kind.value for kind in EventType)
        raise ValidationError(name, f"must be one of {allowed}")
    return value


def _properties(name: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    checked = _object(name, value, _SCHEMAS[name])
    if name == "working_location":
        kind = checked.get("type")
        if kind is None:
            raise ValidationError(
                name, "needs its type: homeOffice, officeLocation or customLocation"
            )
        for detail in ("custom_location", "office_location"):
            if detail in checked and _LOCATION_DETAIL.get(kind) != detail:
                raise ValidationError(name, f"{detail} goes only with its own type")
    return checked


def _object(name: str, value: Any, schema: _Schema) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(name, f"must be an object with keys {', '.join(schema)}")
    checked: dict[str, Any] = {}
    for key, item in value.items():
        rule = schema.get(key)
        if rule is None:
            raise ValidationError(name, f"has no key {key!r}; it takes {', '.join(schema)}")
        if item is None:
            continue
        if rule == "text":
            if not isinstance(item, str) or len(item) > _TEXT_LIMIT or _CONTROL.search(item):
                raise ValidationError(
                    name, f"{key} must be a text of at most {_TEXT_LIMIT} characters"
                )
            checked[key] = item
        elif isinstance(rule, tuple):
            if item not in rule:
                raise ValidationError(name, f"{key} must be one of {', '.join(rule)}")
            checked[key] = item
        else:
            checked[key] = _object(name, item, rule)
    return checked


TYPE_READERS: Final[dict[str, Any]] = {
    "event_type": _event_type,
    "out_of_office": _properties,
    "focus_time": _properties,
    "working_location": _properties,
}


def apply_type_changes(current: Event | None, given: Mapping[str, Any]) -> dict[str, Any]:
    """The `Event` fields (``event_type``, ``type_properties``) the type fields of a
    body set, given as `read_changes` checked them; nothing for a body without any.

    A new event takes ``event_type`` (``default`` when left out); an update keeps the
    event's type (a different one is `update_problems`' 422). The properties field must
    be the type's own. Raises `ValidationError` naming the field.
    """
    kind = given.get("event_type")
    if kind is None:
        kind = current.event_type if current is not None else EventType.DEFAULT
    values: dict[str, Any] = {}
    if "event_type" in given and current is None:
        values["event_type"] = kind
    elif "event_type" in given and given["event_type"] != current.event_type:  # type: ignore[union-attr]
        raise ValidationError("event_type", "the event type cannot change after creation")
    own = PROPERTY_FIELDS.get(kind)
    for name in ("out_of_office", "focus_time", "working_location"):
        if name not in given:
            continue
        if name != own:
            raise ValidationError(name, f"goes only with event_type {_type_of(name)}")
        properties = given[name]
        if properties is None and kind == EventType.WORKING_LOCATION:
            raise ValidationError(name, "a workingLocation event needs its properties")
        values["type_properties"] = TypeProperties(_to_google(properties or {}))
    if current is None and own is not None and "type_properties" not in values:
        values["type_properties"] = TypeProperties({})
    return values


def _type_of(field: str) -> str:
    return next(kind for kind, name in PROPERTY_FIELDS.items() if name == field)


def _camel(key: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)


def _snake(key: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key)


def _to_google(value: Mapping[str, Any]) -> dict[str, Any]:
    google = {_camel(k): _to_google(v) if isinstance(v, Mapping) else v for k, v in value.items()}
    if google.get("type") == "homeOffice":
        google.setdefault("homeOffice", {})
    return google


def _to_api(value: Mapping[str, Any]) -> dict[str, Any]:
    return {_snake(k): _to_api(v) if isinstance(v, Mapping) else v for k, v in value.items()}


def type_json(event: Event) -> dict[str, Any]:
    """``event_type`` and, for a type with properties, its properties field."""
    shown: dict[str, Any] = {"event_type": str(event.event_type)}
    field = PROPERTY_FIELDS.get(event.event_type)
    if field is not None and PROPERTIES_KEYS.get(event.event_type):
        properties = event.type_properties.to_json() if event.type_properties else {}
        if field == "working_location":
            properties.pop("homeOffice", None)  # Google's marker of the type, not a detail
        shown[field] = _to_api(properties)
    return shown
