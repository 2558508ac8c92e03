"""Google Calendar v3 Event resources <-> calsync `Event` values.

The only module that knows the JSON shape of an Event resource
(https://developers.google.com/calendar/api/v3/reference/events). It does no I/O and
raises nothing from Google's errors; bad JSON from Google raises `ValueError`.

calsync keeps its own fields in `extendedProperties.private`: `calsync_id` (the local
id), `calsync_category` (the category) and one `calsync_meta_<key>` per metadata key;
other private and shared properties belong to other clients and are left alone. Reading
then writing an event is lossless for what calsync owns: title, description, location,
start/end/timezone, category, recurrence, attendees, reminders, metadata and status.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from calsync.domain.errors import ValidationError
from calsync.domain.models import (
    EMPTY_METADATA,
    Attendee,
    Event,
    EventStatus,
    EventTime,
    Metadata,
    Reminder,
    ReminderMethod,
    Reminders,
    ResponseStatus,
    attendee_order,
)
from calsync.domain.timezones import zone

__all__ = [
    "CALSYNC_CATEGORY_KEY",
    "CALSYNC_ID_KEY",
    "CALSYNC_META_PREFIX",
    "event_from_google",
    "event_time_from_google",
    "event_time_to_google",
    "event_to_google",
]

CALSYNC_ID_KEY: Final = "calsync_id"
CALSYNC_CATEGORY_KEY: Final = "calsync_category"
CALSYNC_META_PREFIX: Final = "calsync_meta_"
_EPOCH: Final = EventTime.on(date(1970, 1, 1))
_RESPONSES: Final = frozenset(status.value for status in ResponseStatus)
_DEFAULT_REMINDERS: Final = Reminders()


def event_from_google(resource: Mapping[str, Any], calendar_timezone: str) -> Event:
    """The calsync view of a Google Event resource.

    `calendar_timezone` is used for date-times that carry only an offset (single events
    may) and as the zone of all-day events. A cancelled resource may carry only `id`,
    `status` and, for a cancelled exception, `recurringEventId` and `originalStartTime`:
    its missing start and end are taken from `originalStartTime`, else set to
    1970-01-01 (all-day, one day); callers act on the status, not on those times.
    Raises `ValueError` (or `ValidationError`) for a resource that is not an event.

    Listings map thousands of resources, so the value is built without `Event`'s own
    checks (`Event.trusted`), which are done here instead: the same errors for the same
    resources and the same normalised value (the mapping tests compare it with the
    checked construction).
    """
    event_id = resource.get("id")
    if not isinstance(event_id, str):
        raise ValueError("a Google event resource needs an id")
    status = EventStatus(resource.get("status", EventStatus.CONFIRMED))
    original = resource.get("originalStartTime")
    original_start = event_time_from_google(original, calendar_timezone) if original else None
    start_json, end_json = resource.get("start"), resource.get("end")
    if start_json and end_json:
        start = event_time_from_google(start_json, calendar_timezone)
        end = event_time_from_google(end_json, calendar_timezone)
    elif status == EventStatus.CANCELLED:
        start = original_start or _EPOCH
        end = start.shifted(timedelta(days=1)) if start.is_all_day else start
    else:
        raise ValueError(f"event {event_id!r} has no start or end")
    all_day = start.day is not None
    if all_day != (end.day is not None):
        raise ValidationError("end", "start and end must both be dates or both date-times")
    if all_day:
        zone(calendar_timezone)
    extended = resource.get("extendedProperties")
    private = _private_properties(extended.get("private") if extended else None)
    organizer = resource.get("organizer")
    organizer_email = organizer.get("email") if organizer else None
    updated = _parse_datetime(resource["updated"]) if resource.get("updated") else None
    if updated is not None and updated.tzinfo is None:
        raise ValidationError("updated", "must be an aware datetime")
    recurrence = resource.get("recurrence")
    attendees = resource.get("attendees")
    return Event.trusted(
        title=resource.get("summary") or "",
        description=resource.get("description") or "",
        location=resource.get("location") or "",
        start=start,
        end=end,
        timezone=calendar_timezone if all_day else start.timezone,
        category=private.get(CALSYNC_CATEGORY_KEY) if private else None,
        recurrence=tuple(line.strip() for line in recurrence) if recurrence else (),
        attendees=_attendees(attendees) if attendees else (),
        reminders=_reminders(resource.get("reminders")),
        metadata=_metadata(private) if private else EMPTY_METADATA,
        status=status,
        organizer_email=organizer_email.strip().lower() if organizer_email is not None else None,
        recurring_event_id=resource.get("recurringEventId"),
        original_start=original_start,
        calsync_id=private.get(CALSYNC_ID_KEY) if private else None,
        provider_event_id=event_id,
        etag=resource.get("etag"),
        sequence=int(resource.get("sequence", 0)),
        updated=updated,
    )


def event_to_google(
    event: Event,
    *,
    calsync_id: str,
    previous: Event | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """The request body to insert, update or patch `event` on Google.

    Carries the fields calsync owns and tags the event with `calsync_id` (the argument,
    not `event.calsync_id`). With `previous` (the last known Google copy), the body also
    clears for a patch what `event` dropped: metadata keys and the category (as JSON
    null, which a patch treats as "delete"), a recurrence, and the other kind of start
    and end when switching between all-day and timed. `event_id` is put in the body as
    the client-chosen id for an insert. Never includes read-only fields (organizer,
    etag, sequence, updated) nor `recurringEventId`/`originalStartTime`.
    """
    body: dict[str, Any] = {
        "summary": event.title,
        "description": event.description,
        "location": event.location,
        "start": event_time_to_google(event.start),
        "end": event_time_to_google(event.end),
        "attendees": [_attendee_to_google(a) for a in event.attendees],
        "reminders": _reminders_to_google(event.reminders),
        "extendedProperties": {"private": _private_to_google(event, calsync_id, previous)},
        "status": str(event.status),
    }
    if event_id is not None:
        body["id"] = event_id
    if event.recurrence or (previous is not None and previous.recurrence):
        body["recurrence"] = list(event.recurrence)
    if previous is not None and previous.all_day != event.all_day:
        cleared = "dateTime" if event.all_day else "date"
        for key in ("start", "end"):
            body[key][cleared] = None
            if event.all_day:
                body[key]["timeZone"] = None
    return body


def event_time_from_google(value: Mapping[str, Any], calendar_timezone: str) -> EventTime:
    """An EventDateTime (`{"date"}` or `{"dateTime", "timeZone"?}`) as an `EventTime`.

    A date-time without `timeZone` is placed in `calendar_timezone`; one without an
    offset is a wall-clock time in its `timeZone`. Raises `ValueError` otherwise. Does
    the checks of `EventTime.at` and `EventTime.on` (a known zone, an instant that UTC
    can hold) and builds the value without repeating them.
    """
    day = value.get("date")
    if day:
        return EventTime.trusted(date.fromisoformat(day), None, None)
    text = value.get("dateTime")
    if not text:
        raise ValueError(f"an EventDateTime needs date or dateTime: {dict(value)!r}")
    when = _parse_datetime(text)
    name = value.get("timeZone") or calendar_timezone
    where = zone(name)
    if when.tzinfo is None:
        when = when.replace(tzinfo=where, fold=0)
    try:
        instant = when.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+14:00: before year 1 in UTC
        raise ValidationError("start", "is outside the dates calsync supports") from None
    return EventTime.trusted(None, instant, name)


def event_time_to_google(value: EventTime) -> dict[str, Any]:
    """`{"date": "YYYY-MM-DD"}` or `{"dateTime": RFC 3339 with offset, "timeZone": zone}`."""
    if value.day is not None:
        return {"date": value.day.isoformat()}
    return {"dateTime": value.local().isoformat(), "timeZone": value.timezone}


def _parse_datetime(text: str) -> datetime:
    # RFC 3339 as Google writes it: "2024-01-01T10:00:00.000Z", "...+01:00", fraction optional.
    return datetime.fromisoformat(text)


def _private_properties(properties: Mapping[str, Any] | None) -> dict[str, str]:
    """The private extended properties (``extendedProperties.private``) as strings."""
    if not properties:
        return {}
    return {str(k): str(v) for k, v in properties.items() if v is not None}


def _metadata(private: Mapping[str, str]) -> Metadata:
    """The metadata keys among the private properties (`EMPTY_METADATA` for none)."""
    found = {
        key.removeprefix(CALSYNC_META_PREFIX): value
        for key, value in private.items()
        if key.startswith(CALSYNC_META_PREFIX)
    }
    return Metadata(found) if found else EMPTY_METADATA


def _attendees(values: Any) -> tuple[Attendee, ...]:
    """The attendees with an email, in `Event`'s order (by email, then display name)."""
    return attendee_order(_attendee(a) for a in values if a.get("email"))


def _private_to_google(
    event: Event, calsync_id: str, previous: Event | None
) -> dict[str, str | None]:
    private: dict[str, str | None] = {CALSYNC_ID_KEY: calsync_id}
    if previous is not None:
        private.update({CALSYNC_META_PREFIX + key: None for key in previous.metadata})
        if previous.category is not None:
            private[CALSYNC_CATEGORY_KEY] = None
    if event.category is not None:
        private[CALSYNC_CATEGORY_KEY] = event.category
    private.update({CALSYNC_META_PREFIX + key: value for key, value in event.metadata.items()})
    return private


def _attendee(value: Mapping[str, Any]) -> Attendee:
    status = value.get("responseStatus", ResponseStatus.NEEDS_ACTION)
    return Attendee(
        email=value["email"],
        display_name=value.get("displayName") or None,
        response_status=ResponseStatus(status)
        if status in _RESPONSES
        else ResponseStatus.NEEDS_ACTION,
        optional=bool(value.get("optional", False)),
        organizer=bool(value.get("organizer", False)),
    )


def _attendee_to_google(attendee: Attendee) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": attendee.email,
        "responseStatus": str(attendee.response_status),
    }
    if attendee.display_name:
        body["displayName"] = attendee.display_name
    if attendee.optional:
        body["optional"] = True
    if attendee.organizer:
        body["organizer"] = True  # read-only for Google, which ignores it; keeps round trips exact
    return body


def _reminders(value: Mapping[str, Any] | None) -> Reminders:
    if not value or (value.get("useDefault") is True and not value.get("overrides")):
        return _DEFAULT_REMINDERS  # the common case; Reminders values are immutable
    overrides = tuple(
        Reminder(int(o["minutes"]), ReminderMethod(o.get("method", ReminderMethod.POPUP)))
        for o in value.get("overrides") or ()
    )
    use_default = bool(value.get("useDefault", not overrides)) and not overrides
    return Reminders(use_default=use_default, overrides=overrides)


def _reminders_to_google(reminders: Reminders) -> dict[str, Any]:
    if reminders.use_default:
        return {"useDefault": True}
    return {
        "useDefault": False,
        "overrides": [{"method": str(r.method), "minutes": r.minutes} for r in reminders.overrides],
    }
