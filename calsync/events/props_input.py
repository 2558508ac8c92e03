"""The request fields ``transparency``, ``visibility``, ``color_id`` and ``conference``.

`PROPS_READERS` check their JSON (a `ValidationError` naming the field becomes a 422
entry in `calsync.events.changes_input`); `props_values` gives the `Event` fields a body sets:

- ``transparency``: ``"opaque"`` (busy, the default) or ``"transparent"`` (free);
  null resets to the default;
- ``visibility``: ``"default"``, ``"public"``, ``"private"`` or ``"confidential"``;
  null resets to the default;
- ``color_id``: one of Google's event colour ids ``"1"`` to ``"11"``, null for none;
- ``conference``: ``{"create": "meet"}`` asks Google for a Meet link (kept as it is when
  the event has a conference already, unless its creation failed), null removes it.

The request id of a new Meet request is set by the write use case, which knows the
event's id (`calsync.events.write_steps`, decisions P3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from calsync.domain.errors import ValidationError
from calsync.domain.event_props import (
    EVENT_COLOR_IDS,
    Conference,
    ConferenceStatus,
    Transparency,
    Visibility,
)
from calsync.domain.models import Event

__all__ = ["MEET", "PROPS_FIELDS", "PROPS_READERS", "props_values"]

PROPS_FIELDS: Final = ("transparency", "visibility", "color_id", "conference")
#: What ``conference.create`` accepts (the one solution calsync asks for).
MEET: Final = "meet"
_COLOR_ORDER: Final = sorted(EVENT_COLOR_IDS, key=int)


def _choice(name: str, value: Any, allowed: type[Transparency] | type[Visibility]) -> Any:
    if value is None:
        return next(iter(allowed))  # the first member is Google's default
    if isinstance(value, str):
        for member in allowed:
            if member.value == value:
                return member
    names = ", ".join(f'"{member.value}"' for member in allowed)
    raise ValidationError(name, f"must be one of {names}, or null for the default")


def _transparency(name: str, value: Any) -> Transparency:
    found: Transparency = _choice(name, value, Transparency)
    return found


def _visibility(name: str, value: Any) -> Visibility:
    found: Visibility = _choice(name, value, Visibility)
    return found


def _color_id(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in EVENT_COLOR_IDS:
        raise ValidationError(
            name,
            f'must be one of Google\'s event colour ids "{_COLOR_ORDER[0]}" to '
            f'"{_COLOR_ORDER[-1]}" (a string), or null for none',
        )
    return value


def _conference(name: str, value: Any) -> str | None:
    """`MEET` for a request of a Meet link, `None` to remove the conference."""
    if value is None:
        return None
    if isinstance(value, Mapping) and set(value) == {"create"} and value["create"] == MEET:
        return MEET
    raise ValidationError(name, f'must be {{"create": "{MEET}"}} or null')


PROPS_READERS: Final[dict[str, Any]] = {
    "transparency": _transparency,
    "visibility": _visibility,
    "color_id": _color_id,
    "conference": _conference,
}


def props_values(current: Event | None, given: Mapping[str, Any]) -> dict[str, Any]:
    """The `Event` fields that the checked values `given` (by API name) set on `current`
    (`None`: a new event)."""
    values = {
        name: given[name] for name in ("transparency", "visibility", "color_id") if name in given
    }
    if "conference" in given:
        values["conference"] = _conference_value(current, given["conference"])
    return values


def _conference_value(current: Event | None, wanted: str | None) -> Conference | None:
    if wanted is None:
        return None
    existing = current.conference if current is not None else None
    if existing is not None and existing.status != ConferenceStatus.FAILURE:
        return existing  # asking again for what the event has changes nothing
    return Conference.meet_request()
