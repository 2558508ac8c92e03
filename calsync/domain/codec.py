"""A provider-neutral JSON form of `Event`, for stored base versions and conflict records.

`event_to_document` and `event_from_document` round-trip every field of an `Event`
exactly (`event_from_document(event_to_document(e)) == e`). The document is plain JSON
(str, int, bool, None, lists, objects), so it can live in a JSON column and in a sync log
that a user reads. It is calsync's own shape, not Google's: the base version of a merge
must not change meaning when the provider's format does.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from calsync.domain.event_props import Conference, ConferenceStatus, Transparency, Visibility
from calsync.domain.event_types import EventType
from calsync.domain.models import (
    Attendee,
    Event,
    EventStatus,
    EventTime,
    Reminder,
    ReminderMethod,
    Reminders,
    ResponseStatus,
)

__all__ = [
    "conference_from_document",
    "conference_to_document",
    "event_from_document",
    "event_to_document",
    "props_to_document",
    "time_from_document",
    "time_to_document",
]


def time_to_document(value: EventTime) -> dict[str, str]:
    """`{"date": "2026-11-21"}` or `{"dateTime": "...Z", "timeZone": "Europe/Berlin"}`."""
    if value.day is not None:
        return {"date": value.day.isoformat()}
    assert value.instant is not None
    assert value.timezone is not None
    return {"dateTime": value.instant.isoformat(), "timeZone": value.timezone}


def time_from_document(document: dict[str, Any]) -> EventTime:
    """The inverse of `time_to_document`. Raises `ValueError` for anything else."""
    if "date" in document:
        return EventTime.on(date.fromisoformat(document["date"]))
    return EventTime.at(datetime.fromisoformat(document["dateTime"]), document["timeZone"])


def event_to_document(event: Event) -> dict[str, Any]:
    """Every field of `event` as JSON-ready values."""
    reminders = event.reminders
    return {
        "title": event.title,
        "description": event.description,
        "location": event.location,
        "start": time_to_document(event.start),
        "end": time_to_document(event.end),
        "timezone": event.timezone,
        "category": event.category,
        "recurrence": list(event.recurrence),
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
        "reminders": {
            "use_default": reminders.use_default,
            "overrides": [[r.minutes, r.method.value] for r in reminders.overrides]
            if reminders.overrides
            else [],
        },
        "metadata": dict(event.metadata.items()) if event.metadata else {},
        "status": event.status.value,
        "organizer_email": event.organizer_email,
        "recurring_event_id": event.recurring_event_id,
        "original_start": (
            time_to_document(event.original_start) if event.original_start else None
        ),
        "calsync_id": event.calsync_id,
        "provider_event_id": event.provider_event_id,
        "etag": event.etag,
        "sequence": event.sequence,
        "updated": event.updated.isoformat() if event.updated else None,
        **_type_document(event),
        **props_to_document(event),
    }


def _type_document(event: Event) -> dict[str, Any]:
    """The event type and its properties; nothing for a default event without any, so
    that documents written before event types (K1) read back as they were."""
    if event.event_type == EventType.DEFAULT and event.type_properties is None:
        return {}
    properties = event.type_properties
    return {
        "event_type": str(event.event_type),
        "type_properties": properties.to_json() if properties is not None else None,
    }


def props_to_document(event: Event) -> dict[str, Any]:
    """Transparency, visibility, colour and conference (documents written before they
    existed lack them: `_props_from_document` reads Google's defaults then)."""
    conference = event.conference
    return {
        "transparency": event.transparency.value,
        "visibility": event.visibility.value,
        "color_id": event.color_id,
        "conference": conference_to_document(conference) if conference is not None else None,
    }


def conference_to_document(conference: Conference) -> dict[str, Any]:
    """`conference` as JSON (the ``events.conference`` column stores this too)."""
    return {
        "status": conference.status.value,
        "solution": conference.solution,
        "uri": conference.uri,
        "request_id": conference.request_id,
        "conference_id": conference.conference_id,
    }


def conference_from_document(document: dict[str, Any]) -> Conference:
    """The inverse of `conference_to_document`. Raises `ValueError` for anything else."""
    return Conference(
        status=ConferenceStatus(document["status"]),
        solution=document.get("solution"),
        uri=document.get("uri"),
        request_id=document.get("request_id"),
        conference_id=document.get("conference_id"),
    )


def _props_from_document(document: dict[str, Any]) -> dict[str, Any]:
    conference = document.get("conference")
    return {
        "transparency": Transparency(document.get("transparency", "opaque")),
        "visibility": Visibility(document.get("visibility", "default")),
        "color_id": document.get("color_id"),
        "conference": conference_from_document(conference) if conference else None,
    }


def event_from_document(document: dict[str, Any]) -> Event:
    """The `Event` a document of `event_to_document` describes.

    Raises `ValueError` (or `ValidationError`) for a document that does not describe one.
    """
    reminders = document.get("reminders") or {}
    original_start = document.get("original_start")
    updated = document.get("updated")
    return Event(
        title=document.get("title", ""),
        description=document.get("description", ""),
        location=document.get("location", ""),
        start=time_from_document(document["start"]),
        end=time_from_document(document["end"]),
        timezone=document.get("timezone"),
        category=document.get("category"),
        recurrence=tuple(document.get("recurrence") or ()),
        attendees=tuple(
            Attendee(
                email=a["email"],
                display_name=a.get("display_name"),
                response_status=ResponseStatus(a.get("response_status", "needsAction")),
                optional=bool(a.get("optional", False)),
                organizer=bool(a.get("organizer", False)),
            )
            for a in document.get("attendees") or ()
        ),
        reminders=Reminders(
            use_default=bool(reminders.get("use_default", True)),
            overrides=tuple(
                Reminder(int(minutes), ReminderMethod(method))
                for minutes, method in reminders.get("overrides") or ()
            ),
        ),
        metadata=document.get("metadata") or {},
        status=EventStatus(document.get("status", "confirmed")),
        organizer_email=document.get("organizer_email"),
        recurring_event_id=document.get("recurring_event_id"),
        original_start=time_from_document(original_start) if original_start else None,
        calsync_id=document.get("calsync_id"),
        provider_event_id=document.get("provider_event_id"),
        etag=document.get("etag"),
        sequence=int(document.get("sequence", 0)),
        updated=datetime.fromisoformat(updated) if updated else None,
        event_type=document.get("event_type") or EventType.DEFAULT,
        type_properties=document.get("type_properties"),
        **_props_from_document(document),
    )
