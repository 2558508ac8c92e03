"""Google Calendar v3 Event resources <-> calsync `Event` values.

The only module that knows the JSON shape of an Event resource
(https://developers.google.com/calendar/api/v3/reference/events). It does no I/O and
raises nothing from Google's errors; bad JSON from Google raises `ValueError`.

calsync keeps its own fields in `extendedProperties.private`: `calsync_id` (the local
id), `calsync_category` (the category) and one `calsync_meta_<key>` per metadata key;
other private and shared properties belong to other clients and are left alone. Reading
then writing an event is lossless for what calsync owns: title, description, location,
start/end/timezone, category, recurrence, attendees, reminders, metadata, status,
transparency, visibility and colour; conferences are read, and asked for or removed,
but never written otherwise (`calsync.providers.google.props`).

Google's texts are whatever anyone who can write to an event (an inviter, another app)
sent, so they are made storable here (decisions H1): a NUL or a lone surrogate, which
neither PostgreSQL nor UTF-8 can hold, becomes U+FFFD (`MARK`), and a text longer than
its column is cut to fit, ending in `MARK`. A text that holds `MARK` and is unchanged
since Google's copy is left out of a patch, so Google keeps its original. Identifiers
(`id`, `recurringEventId`, `etag`) are never altered: a resource whose identifiers
cannot be stored is refused like any other malformed one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
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
from calsync.providers.google.event_types import type_from_google, type_to_google
from calsync.providers.google.props import props_from_google as _props_from_google
from calsync.providers.google.props import props_to_google as _props_to_google

__all__ = [
    "CALSYNC_CATEGORY_KEY",
    "CALSYNC_ID_KEY",
    "CALSYNC_META_PREFIX",
    "MARK",
    "event_from_google",
    "event_time_from_google",
    "event_time_to_google",
    "event_to_google",
    "storable_id",
    "storable_text",
]

CALSYNC_ID_KEY: Final = "calsync_id"
CALSYNC_CATEGORY_KEY: Final = "calsync_category"
CALSYNC_META_PREFIX: Final = "calsync_meta_"
_EPOCH: Final = EventTime.on(date(1970, 1, 1))
_RESPONSES: Final = frozenset(status.value for status in ResponseStatus)
_DEFAULT_REMINDERS: Final = Reminders()

#: What replaces a character calsync cannot store, and ends a text cut to fit its column.
MARK: Final = "\ufffd"
#: NUL (PostgreSQL's text and JSONB refuse it) and lone surrogates (not UTF-8 at all;
#: the standard JSON decoder makes them of ``"\ud800"`` escapes).
_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")
#: The longest texts the ``events`` and ``event_attendees`` columns hold, in characters
#: (`tests/unit/providers/test_google_mapping_strings.py` checks them against the tables).
#: Descriptions, recurrence lines and metadata have no limit.
TITLE_LIMIT: Final = 1024
LOCATION_LIMIT: Final = 1024
CATEGORY_LIMIT: Final = 64
EMAIL_LIMIT: Final = 320
DISPLAY_NAME_LIMIT: Final = 200
ID_LIMIT: Final = 1024
ETAG_LIMIT: Final = 128


def event_from_google(resource: Mapping[str, Any], calendar_timezone: str) -> Event:
    """The calsync view of a Google Event resource, storable on every database.

    `calendar_timezone` is used for date-times that carry only an offset (single events
    may) and as the zone of all-day events. A cancelled resource may carry only `id`,
    `status` and, for a cancelled exception, `recurringEventId` and `originalStartTime`:
    its missing start and end are taken from `originalStartTime`, else set to
    1970-01-01 (all-day, one day); callers act on the status, not on those times.
    Texts are made storable (`storable_text`), attendees with the same email after that
    are kept once, and recurrence lines that are blank are dropped. Raises `ValueError`
    (or `ValidationError`, a `ValueError`) for a resource that is not an event, whatever
    is wrong with it: a wrong JSON type, an unknown zone, a date past year 9999, an id
    that cannot be stored.

    Listings map thousands of resources, so the value is built without `Event`'s own
    checks (`Event.trusted`), which are done here instead: the same errors for the same
    resources and the same normalised value (the mapping tests compare it with the
    checked construction).
    """
    try:
        return _event_from_google(resource, calendar_timezone)
    except (TypeError, KeyError, AttributeError, IndexError, OverflowError) as err:
        # JSON of the wrong shape (a number for a text, a list for an object) or a date
        # that overflows: as malformed as a missing id.
        raise ValueError(f"a malformed Google event resource ({type(err).__name__})") from err


def _event_from_google(resource: Mapping[str, Any], calendar_timezone: str) -> Event:
    event_id = _identifier(resource.get("id"), "id", ID_LIMIT)
    if event_id is None:
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
    category = private.get(CALSYNC_CATEGORY_KEY) if private else None
    event_type, type_properties = type_from_google(resource)
    return Event.trusted(
        title=storable_text(resource.get("summary") or "", TITLE_LIMIT),
        description=storable_text(resource.get("description") or ""),
        location=storable_text(resource.get("location") or "", LOCATION_LIMIT),
        start=start,
        end=end,
        timezone=calendar_timezone if all_day else start.timezone,
        category=_cut(category, CATEGORY_LIMIT) if category is not None else None,
        recurrence=_recurrence(recurrence) if recurrence else (),
        attendees=_attendees(attendees) if attendees else (),
        reminders=_reminders(resource.get("reminders")),
        metadata=_metadata(private) if private else EMPTY_METADATA,
        status=status,
        organizer_email=_email(organizer_email) if organizer_email is not None else None,
        recurring_event_id=_identifier(
            resource.get("recurringEventId"), "recurringEventId", ID_LIMIT
        ),
        original_start=original_start,
        calsync_id=private.get(CALSYNC_ID_KEY) if private else None,
        provider_event_id=event_id,
        etag=_identifier(resource.get("etag"), "etag", ETAG_LIMIT),
        sequence=int(resource.get("sequence", 0)),
        updated=updated,
        event_type=event_type,
        type_properties=type_properties,
        **_props_from_google(resource),
    )


def storable_text(value: str, limit: int | None = None) -> str:
    """`value` as calsync stores a text Google sent: each NUL and lone surrogate replaced
    by `MARK`, and, when longer than `limit` characters, cut to `limit` ending in `MARK`.
    The same text for a text already made so. Raises `TypeError` for a non-string."""
    if not isinstance(value, str):
        raise TypeError(f"a text must be a string, not {type(value).__name__}")
    if not _is_storable(value):
        value = _UNSTORABLE.sub(MARK, value)
    if limit is not None and len(value) > limit:
        value = value[: limit - 1] + MARK
    return value


def storable_id(value: Any) -> str:
    """An id Google sent, as a text any column can hold: the id itself when calsync could
    store it as an id, else made storable and cut to `ID_LIMIT` (for the sync log: it
    then matches no stored row); an empty string for a missing or non-string id."""
    return storable_text(value, ID_LIMIT) if isinstance(value, str) else ""


def _is_storable(text: str) -> bool:
    """Whether `text` holds neither NUL nor a lone surrogate. C-speed tests first: nearly
    every text is clean, and most are ASCII (which holds no surrogate)."""
    return "\x00" not in text and (text.isascii() or _UNSTORABLE.search(text) is None)


def _cut(value: str, limit: int) -> str:
    """`storable_text` of a value that `_private_properties` already cleaned."""
    return value if len(value) <= limit else value[: limit - 1] + MARK


def _identifier(value: Any, name: str, limit: int) -> str | None:
    """An id Google gave, as it is (ids are never altered), or `None` when absent.
    Raises `ValueError` for one that cannot be stored as it is."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit or not _is_storable(value):
        raise ValueError(f"a Google event resource with an {name} calsync cannot store")
    return value


def _email(value: str) -> str:
    """An email as `Attendee` normalises it (stripped, lower case), storable: cut after
    lower-casing, which may lengthen a text."""
    return _cut(storable_text(value).strip().lower(), EMAIL_LIMIT)


def _recurrence(lines: Iterable[Any]) -> tuple[str, ...]:
    """The lines, stripped and storable, blank ones dropped. A line break inside a line
    becomes `MARK` too: the store keeps the lines joined by line breaks, so the line
    would come back as two, a change nobody made."""
    if isinstance(lines, str):
        raise TypeError("recurrence must be a list of lines")
    found = []
    for line in lines:
        text = storable_text(line).strip()
        if text:
            found.append(text.replace("\n", MARK) if "\n" in text else text)
    return tuple(found)


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
    and end when switching between all-day and timed; and it leaves out what calsync
    made storable when reading Google's copy and `event` did not change (a text, the
    attendees, the recurrence, a private property holding `MARK`, equal to
    `previous`'s), so that a patch never replaces Google's original with calsync's
    cleaned copy (decisions H1). `event_id` is put in the body as the client-chosen id
    for an insert. The event's type adds its own fields, and for the types whose
    updates Google restricts leaves out what Google would refuse (`type_to_google`).
    Never includes read-only fields (organizer, etag, sequence, updated)
    nor `recurringEventId`/`originalStartTime`.
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
    if previous is not None:
        _keep_googles_originals(body, event, previous)
    body.update(_props_to_google(event, previous))
    type_to_google(body, event, previous=previous, inserting=event_id is not None)
    return body


def _keep_googles_originals(body: dict[str, Any], event: Event, previous: Event) -> None:
    """Take out of a patch body what holds `MARK` and is as in `previous`."""
    for key, name in (
        ("summary", "title"),
        ("description", "description"),
        ("location", "location"),
    ):
        value = getattr(event, name)
        if MARK in value and value == getattr(previous, name):
            del body[key]
    if event.attendees == previous.attendees and any(
        MARK in person.email or MARK in (person.display_name or "") for person in event.attendees
    ):
        del body["attendees"]
    if event.recurrence == previous.recurrence and any(MARK in line for line in event.recurrence):
        del body["recurrence"]
    private = body["extendedProperties"]["private"]
    before = _private_to_google(previous, "", None)
    for key, value in list(private.items()):
        marked = value is not None and (MARK in key or MARK in value)
        if marked and key != CALSYNC_ID_KEY and before.get(key) == value:
            del private[key]


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
    """The private extended properties (``extendedProperties.private``) as storable
    strings (they end up in JSON documents, which hold texts of any length)."""
    if not properties:
        return {}
    return {
        storable_text(str(k)): storable_text(str(v)) for k, v in properties.items() if v is not None
    }


def _metadata(private: Mapping[str, str]) -> Metadata:
    """The metadata keys among the private properties (`EMPTY_METADATA` for none)."""
    found = {
        key.removeprefix(CALSYNC_META_PREFIX): value
        for key, value in private.items()
        if key.startswith(CALSYNC_META_PREFIX)
    }
    return Metadata(found) if found else EMPTY_METADATA


def _attendees(values: Any) -> tuple[Attendee, ...]:
    """The attendees with an email, in `Event`'s order (by email, then display name),
    the first of those with the same (storable) email only: one row per email."""
    people: dict[str, Attendee] = {}
    for value in values:
        if value.get("email"):
            attendee = _attendee(value)
            people.setdefault(attendee.email, attendee)
    return attendee_order(people.values())


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
    name = value.get("displayName")
    return Attendee(
        email=_email(value["email"]),
        display_name=storable_text(name, DISPLAY_NAME_LIMIT) if name else None,
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
