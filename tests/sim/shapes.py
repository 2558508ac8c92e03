"""One comparable shape for an event as calsync's API shows it and as Google holds it.

`from_api` and `from_google` map an item of ``GET /events`` and a Google event resource
to the same dictionary of the fields the simulation compares: title, description,
location, start and end (a date, or the instant in UTC), all-day, recurrence, attendees
(email and optional, in order) and status. Written here independently of calsync's own
mapping, so that a mistake there shows as a difference.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

Shape = dict[str, Any]


def moment(value: str) -> str:
    """A date stays ``YYYY-MM-DD``; a date-time with offset becomes UTC ``...Z``."""
    if len(value) == 10:
        return date.fromisoformat(value).isoformat()
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no offset")
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _google_time(value: dict[str, Any]) -> str:
    return moment(value["date"]) if "date" in value else moment(value["dateTime"])


def from_api(item: dict[str, Any]) -> Shape:
    return {
        "title": item["title"] or "",
        "description": item["description"] or "",
        "location": item["location"] or "",
        "start": moment(item["start_time"]),
        "end": moment(item["end_time"]),
        "all_day": bool(item["all_day"]),
        "recurrence": tuple(item["recurrence"] or ()),
        "attendees": tuple(
            sorted((a["email"].lower(), bool(a["optional"])) for a in item["attendees"])
        ),
        "status": item["status"],
    }


def from_google(resource: dict[str, Any]) -> Shape:
    return {
        "title": resource.get("summary") or "",
        "description": resource.get("description") or "",
        "location": resource.get("location") or "",
        "start": _google_time(resource["start"]),
        "end": _google_time(resource["end"]),
        "all_day": "date" in resource["start"],
        "recurrence": tuple(line.strip() for line in resource.get("recurrence") or ()),
        "attendees": tuple(
            sorted(
                (a["email"].lower(), bool(a.get("optional", False)))
                for a in resource.get("attendees") or ()
            )
        ),
        "status": resource.get("status", "confirmed"),
    }


def differences(expected: Shape, actual: Shape) -> list[str]:
    """``field: expected != actual`` for each field that differs."""
    return [
        f"{name}: google={expected[name]!r} calsync={actual.get(name)!r}"
        for name in expected
        if expected[name] != actual.get(name)
    ]
