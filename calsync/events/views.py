"""Events and calendars as the API shows them (the JSON shapes docs/api.md documents),
and the compact JSON bytes of such documents.

The view of an event is no web concern: the write use cases answer with it, the read
model stores it, the routes only send it (decision HE1).

An `EventView` is one item of an answer: a stored event as it is, or one instance of a
recurring series (a generated one, or an exception), which carries the instance id
``<seriesId>_<YYYYMMDDTHHMMSSZ>`` (``<seriesId>_<YYYYMMDD>`` all-day) and the series'
sync state. Timed values are shown in the event's own zone with their offset; all-day
values as dates (end exclusive).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from calsync.domain.models import Event, EventTime
from calsync.domain.recurrence import recurrence_problem
from calsync.events.type_fields import type_json
from calsync.store.calendar_views import CalendarView
from calsync.store.events import StoredEvent

__all__ = [
    "EventView",
    "calendar_json",
    "event_json",
    "instance_json",
    "json_bytes",
    "props_json",
    "time_json",
]


@dataclass(frozen=True, slots=True)
class EventView:
    """What one item shows: `event`'s fields, `stored`'s bookkeeping, under `id`.

    `series` is the master of the series this item is an instance of (`None` for
    singles and masters).
    """

    id: str
    event: Event
    stored: StoredEvent
    series: StoredEvent | None = None


def json_bytes(document: Any) -> bytes:
    """`document` (str keys; str, int, float, bool, None, lists and dicts) as compact
    UTF-8 JSON: the same bytes Starlette's `JSONResponse` would send (no NaN), several
    times faster, so that large answers can be rendered in the worker thread that read
    them. Raises `TypeError` for anything else, and for integers beyond 64 bits."""
    return orjson.dumps(document)


def time_json(value: EventTime | None) -> str | None:
    """``YYYY-MM-DD`` for days, ISO 8601 with offset (in the value's zone) for instants."""
    if value is None:
        return None
    if value.day is not None:
        return value.day.isoformat()
    return value.local().isoformat()


def _moment(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def event_json(view: EventView) -> dict[str, Any]:
    """The API's JSON for one event or instance."""
    event, stored = view.event, view.stored
    reminders = event.reminders
    return {
        "id": view.id,
        "calendar_id": str(stored.calendar_id),
        "series_id": str(view.series.id) if view.series is not None else None,
        "original_start_time": time_json(event.original_start),
        "title": event.title,
        "description": event.description,
        "location": event.location,
        "category": event.category,
        "start_time": time_json(event.start),
        "end_time": time_json(event.end),
        "timezone": event.timezone,
        "all_day": event.all_day,
        "recurrence": list(event.recurrence),
        "recurrence_error": recurrence_problem(event),
        "attendees": [
            {
                "email": a.email,
                "display_name": a.display_name,
                "response_status": a.response_status.value,
                "optional": a.optional,
                "organizer": a.organizer,
            }
            for a in event.attendees
        ],
        "reminders": None if reminders.use_default else [r.minutes for r in reminders.overrides],
        "metadata": dict(event.metadata),
        "status": event.status.value,
        **props_json(event),
        "organizer": event.organizer_email,
        "sync_state": stored.sync_state,
        "sync_error": stored.sync_error,
        "conflict": stored.conflict,
        "etag": stored.etag,
        "google_event_id": event.provider_event_id,
        "created_at": _moment(stored.created_at),
        "updated_at": _moment(stored.updated_at),
        **type_json(event),
    }


def props_json(event: Event) -> dict[str, Any]:
    """``transparency``, ``visibility``, ``color_id`` and ``conference`` (null, or its
    ``status``, ``uri`` and ``solution``) of an event."""
    conference = event.conference
    return {
        "transparency": event.transparency.value,
        "visibility": event.visibility.value,
        "color_id": event.color_id,
        "conference": None
        if conference is None
        else {
            "status": conference.status.value,
            "uri": conference.uri,
            "solution": conference.solution,
        },
    }


def instance_json(template: dict[str, Any], view: EventView) -> dict[str, Any]:
    """`event_json(view)` of a generated instance of a series, from `template`, the
    `event_json` of another generated instance of it with the same `stored` and `series`
    (the master): instances differ only in their id, times and Google id (the rest is
    copied from the master), so only those are computed (same key order)."""
    event = view.event
    return {
        **template,
        "id": view.id,
        "original_start_time": time_json(event.original_start),
        "start_time": time_json(event.start),
        "end_time": time_json(event.end),
        "google_event_id": event.provider_event_id,
    }


def calendar_json(calendar: CalendarView) -> dict[str, Any]:
    """The API's JSON for one calendar."""
    return {
        "id": str(calendar.id),
        "google_calendar_id": calendar.provider_calendar_id,
        "summary": calendar.summary,
        "timezone": calendar.timezone,
        "access_role": calendar.access_role,
        "writable": calendar.writable,
        "primary": calendar.is_primary,
        "selected": calendar.selected,
        "conflict_policy": calendar.conflict_policy,
        "sync": {
            "last_synced_at": _moment(calendar.last_synced_at),
            "status": calendar.last_sync_status,
            "dirty": calendar.dirty,
            "poll_only": calendar.poll_only,
        },
    }
