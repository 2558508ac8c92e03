"""What a notice says about an event: a small JSON summary stored with each delivery.

Deliveries carry a snapshot of the event (title, times, location...) taken when they were
planned or when the change happened, so a sender needs nothing else and a user's notice
list shows what they were told. Times are documents as in the events API: ``{"date":
"2026-03-29"}`` for a whole day or ``{"dateTime": "<UTC ISO>", "timeZone": "<IANA>"}``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from calsync.domain.models import Event, EventTime
from calsync.domain.timezones import zone

__all__ = ["event_summary", "instant_of", "time_document", "time_from_document"]

MAX_DESCRIPTION = 2000


def time_document(value: EventTime) -> dict[str, str]:
    """``{"date": ...}`` or ``{"dateTime": ..., "timeZone": ...}`` for ``value``."""
    if value.day is not None:
        return {"date": value.day.isoformat()}
    assert value.instant is not None
    assert value.timezone is not None
    return {"dateTime": value.instant.astimezone(UTC).isoformat(), "timeZone": value.timezone}


def time_from_document(document: dict[str, Any]) -> EventTime:
    """The inverse of :func:`time_document`."""
    if "date" in document:
        return EventTime.on(date.fromisoformat(document["date"]))
    return EventTime(
        instant=datetime.fromisoformat(document["dateTime"]), timezone=document["timeZone"]
    )


def instant_of(value: EventTime, day_zone: str) -> datetime:
    """When ``value`` begins: its instant, or midnight of its day in ``day_zone``."""
    if value.day is not None:
        return datetime.combine(value.day, time(), tzinfo=zone(day_zone)).astimezone(UTC)
    assert value.instant is not None
    return value.instant


def event_summary(event: Event, *, uid: str) -> dict[str, Any]:
    """The parts of ``event`` a notice shows, as JSON. ``uid`` names the event for calendar
    clients (the iCalendar UID)."""
    return {
        "uid": uid,
        "title": event.title,
        "location": event.location,
        "description": event.description[:MAX_DESCRIPTION],
        "start": time_document(event.start),
        "end": time_document(event.end),
        "all_day": event.all_day,
        "timezone": event.timezone,
        "status": event.status.value,
        "organizer_email": event.organizer_email,
        "attendees": [a.email for a in event.attendees],
        "recurrence": list(event.recurrence),
        "sequence": event.sequence,
    }
