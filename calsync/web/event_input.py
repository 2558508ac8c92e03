"""Event request bodies -> domain `Event`s, with 422 errors that name the field.

`read_changes` checks the body's shape (known fields only, read-only ones refused, right
JSON types, no control characters) and returns the fields the client gave as
`EventChanges`. `apply_changes` builds the resulting `Event` from them: for POST from
nothing, for PUT on top of the current event (fields left out keep their values). The
result is checked with `calsync.domain.validation`, so the API and a merge result obey
the same rules; an update is refused only for what it changes (what it leaves as it was
may come from Google, which is not held to calsync's rules). Every problem becomes one
entry of the 422's ``details``: ``{"field": <API field name>, "issue": ..., "message": ...}``.

Times: a timed event takes ISO 8601 date-times, either with an offset or as wall-clock
times in ``timezone`` (a naive date-time without a ``timezone`` is refused); an all-day
event takes dates (``YYYY-MM-DD``, end exclusive as in Google). ``all_day`` may be left
out; it is then read from the kind of ``start_time``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final

from calsync.domain.errors import ValidationError
from calsync.domain.models import Attendee, Event, EventTime, Reminders
from calsync.domain.timezones import zone
from calsync.domain.validation import event_problems, time_problem
from calsync.web.errors import APIError
from calsync.web.event_props_input import PROPS_FIELDS, PROPS_READERS, props_values
from calsync.web.event_type_fields import TYPE_FIELDS, TYPE_READERS, apply_type_changes

__all__ = [
    "READ_ONLY_FIELDS",
    "WRITABLE_FIELDS",
    "EventChanges",
    "apply_changes",
    "checked_event",
    "has_control_characters",
    "later_problems",
    "read_changes",
    "unprocessable",
]

WRITABLE_FIELDS: Final = (
    "title",
    "description",
    "start_time",
    "end_time",
    "timezone",
    "all_day",
    "location",
    "category",
    "calendar_id",
    "recurrence",
    "attendees",
    "reminders",
    "metadata",
    *TYPE_FIELDS,
    *PROPS_FIELDS,
)
READ_ONLY_FIELDS: Final = (
    "id",
    "etag",
    "sync_state",
    "sync_error",
    "recurrence_error",
    "conflict",
    "status",
    "user_id",
    "owner",
    "owner_id",
    "organizer",
    "organizer_email",
    "google_event_id",
    "provider_event_id",
    "calsync_id",
    "series_id",
    "recurring_event_id",
    "original_start_time",
    "sequence",
    "version",
    "role",
    "created_at",
    "updated_at",
    "birthday",
)
MAX_RECURRENCE_LINES: Final = 20
MAX_RECURRENCE_LINE_LENGTH: Final = 1000
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DATE_ONLY: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_NEEDS_ZONE: Final = (
    "a date-time without an offset needs a timezone (an IANA name such as Europe/Berlin)"
)
_DOMAIN_FIELDS: Final = {"start": "start_time", "end": "end_time"}


def unprocessable(details: Sequence[Mapping[str, Any]]) -> APIError:
    """The 422 for `details`; the message names every offending field."""
    names = ", ".join(dict.fromkeys(d["field"] for d in details))
    return APIError(422, f"invalid fields: {names}", details=details)


def _problem(name: str, issue: str, message: str) -> dict[str, str]:
    return {"field": name, "issue": issue, "message": message}


@dataclass(frozen=True)
class EventChanges:
    """The writable fields a body gave, with JSON types checked.

    `given` holds each present field's value: str for texts and times (times still
    unparsed), bool for ``all_day``, `None` where the client cleared a field,
    `tuple[str, ...]` for ``recurrence``, `tuple[Attendee, ...]`, `Reminders` and
    `dict[str, str]` for the collections.
    """

    given: Mapping[str, Any] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name in self.given

    def get(self, name: str, default: Any = None) -> Any:
        return self.given.get(name, default)


def read_changes(body: Mapping[str, Any], *, require_times: bool) -> EventChanges:
    """Check a body's fields and types; raise a 422 `APIError` naming every bad field."""
    problems: list[dict[str, str]] = []
    for name in body:
        if name in READ_ONLY_FIELDS:
            problems.append(_problem(name, "read_only", "this field is set by calsync"))
        elif name not in WRITABLE_FIELDS:
            problems.append(_problem(name, "unknown", "there is no such field"))
    given: dict[str, Any] = {}
    for name in WRITABLE_FIELDS:
        if name not in body:
            if require_times and name in ("start_time", "end_time"):
                problems.append(_problem(name, "required", "this field is required"))
            continue
        try:
            given[name] = _READERS[name](name, body[name])
        except ValidationError as err:
            problems.append(_problem(err.field, "invalid", err.message))
    if problems:
        # Name every bad field at once: the fields whose type was right are checked
        # further too, as far as they can be without the stored event (item 10).
        done = {p["field"] for p in problems}
        problems.extend(later_problems(given, skip=done, new=require_times))
        raise unprocessable(problems)
    return EventChanges(given)


_PROBE_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
#: Fields whose problems the given value alone decides, whatever the times or the stored
#: event (``end`` and ``recurrence`` depend on the start).
_STANDALONE: Final = ("category", "attendees", "reminders", "metadata")


def later_problems(
    given: Mapping[str, Any], *, skip: set[str], new: bool, current: Event | None = None
) -> list[dict[str, str]]:
    """The 422 details of `given` (values `read_changes` accepted) that can be told
    without the stored event, for fields not in `skip`: a time that does not parse (or,
    for a `new` event, a wall-clock time without a ``timezone``), and what calsync's
    rules say of the texts, attendees, reminders and metadata. Used to name every
    invalid field in one 422 when an earlier stage already failed; never a problem
    that a valid request could have (so nothing an update of `current` leaves as it
    was, decisions H2)."""
    problems: list[ValidationError] = []
    for name in ("start_time", "end_time"):
        text = given.get(name)
        if isinstance(text, str) and name not in skip:
            # The end takes the start's zone, so only the start needs one of its own.
            zoned = (
                name == "end_time"
                or given.get("timezone") is not None
                or "timezone" in skip
                or not new
            )
            problem = _time_syntax_problem(name, text, zoned=zoned)
            if problem is not None:
                problems.append(problem)
    values: dict[str, Any] = {}
    for name in ("title", "description", "location"):
        if name in given:
            values[name] = given[name] or ""
    values.update((name, given[name]) for name in _STANDALONE if name in given)
    if "attendees" in values:
        values["attendees"] = _keep_responses(current, values["attendees"])
    instant = EventTime.at(_PROBE_TIME, "UTC")
    try:
        probe = Event(start=instant, end=instant, **values)
    except ValidationError as err:  # not expected of these fields; never hide the first 422
        return [*(_domain_problem(p) for p in problems), _domain_problem(err)]
    problems.extend(
        p
        for p in event_problems(probe)
        if p.field in values
        and p.field not in skip
        and (current is None or getattr(probe, p.field) != getattr(current, p.field))
    )
    return [_domain_problem(p) for p in problems]


def _time_syntax_problem(name: str, text: str, *, zoned: bool) -> ValidationError | None:
    """The problem of a time text on its own: whether it parses, lies in calsync's span
    and (unless `zoned`: a zone is given or stored) has an offset. Whether it matches
    ``all_day`` is for `apply_changes`."""
    try:
        if _DATE_ONLY.fullmatch(text.strip()):
            _day(name, text)
        else:
            when = datetime.fromisoformat(text.strip())
            if when.tzinfo is not None:
                _supported(name, EventTime.at(when, "UTC"))
            elif not zoned:
                raise ValidationError(name, _NEEDS_ZONE)
    except ValidationError as err:
        return err
    except ValueError:
        return ValidationError(name, f"{text!r} is not an ISO 8601 date-time")
    return None


def has_control_characters(text: str) -> bool:
    """Whether `text` holds a control character other than tab, CR and LF (NUL among
    them, which PostgreSQL cannot store or compare): refused in any text a client sends."""
    return _CONTROL.search(text) is not None


def _text(name: str, value: Any, *, nullable: bool = True) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise ValidationError(name, "must be a string")
    if has_control_characters(value):
        raise ValidationError(name, "must not contain control characters (such as NUL)")
    return value


def _time_text(name: str, value: Any) -> str:
    text = _text(name, value, nullable=False)
    assert text is not None
    return text


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(name, "must be true or false")
    return value


def _timezone(name: str, value: Any) -> str | None:
    text = _text(name, value)
    if text is not None:
        zone(text, field=name)
    return text


def _recurrence(name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_RECURRENCE_LINES:
        raise ValidationError(name, f"must be a list of at most {MAX_RECURRENCE_LINES} lines")
    lines = []
    for line in value:
        text = _text(name, line, nullable=False)
        assert text is not None
        if not text.strip():
            raise ValidationError(name, "a recurrence line must not be empty")
        if len(text) > MAX_RECURRENCE_LINE_LENGTH:
            raise ValidationError(name, f"a line is longer than {MAX_RECURRENCE_LINE_LENGTH}")
        lines.append(text.strip())
    return tuple(lines)


def _attendees(name: str, value: Any) -> tuple[Attendee, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValidationError(name, "must be a list of emails or {email, display_name, optional}")
    attendees = []
    for item in value:
        if isinstance(item, str):
            item = {"email": item}
        if not isinstance(item, dict) or not set(item) <= {"email", "display_name", "optional"}:
            raise ValidationError(
                name, "each attendee is an email or {email, display_name, optional}"
            )
        email = _text(name, item.get("email"), nullable=False)
        display = _text(name, item.get("display_name"))
        optional = _boolean(name, item.get("optional", False))
        assert email is not None
        if len(email) > 320 or (display is not None and len(display) > 200):
            raise ValidationError(name, "emails are at most 320 and names 200 characters")
        attendees.append(Attendee(email=email, display_name=display, optional=optional))
    return tuple(attendees)


def _reminders(name: str, value: Any) -> Reminders:
    if value is None:
        return Reminders()
    if not isinstance(value, list) or not all(
        isinstance(m, int) and not isinstance(m, bool) for m in value
    ):
        raise ValidationError(name, "must be a list of minutes before the start, or null")
    return Reminders.minutes(*value)


def _metadata(name: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(name, "must be an object of string values")
    for key, item in value.items():
        _text(name, key, nullable=False)
        _text(name, item, nullable=False)
    return dict(value)


_READERS: Final[dict[str, Any]] = {
    "title": _text,
    "description": _text,
    "location": _text,
    "category": _text,
    "calendar_id": lambda name, value: _text(name, value, nullable=False),
    "start_time": _time_text,
    "end_time": _time_text,
    "timezone": _timezone,
    "all_day": _boolean,
    "recurrence": _recurrence,
    "attendees": _attendees,
    "reminders": _reminders,
    "metadata": _metadata,
    **TYPE_READERS,
    **PROPS_READERS,
}


def apply_changes(current: Event | None, changes: EventChanges, *, default_zone: str) -> Event:
    """The event `changes` make of `current` (`None`: a new event), checked.

    `default_zone` is the zone of a new timed event given with offsets but no
    ``timezone`` (the calendar's zone). Raises a 422 `APIError` naming every problem.
    """
    try:
        start, end, timezone = _times(current, changes, default_zone)
        values: dict[str, Any] = {"start": start, "end": end, "timezone": timezone}
        for api_name, attr in (("title", "title"), ("description", "description")):
            if changes.has(api_name):
                values[attr] = changes.get(api_name) or ""
        if changes.has("location"):
            values["location"] = changes.get("location") or ""
        if changes.has("category"):
            values["category"] = changes.get("category")
        if changes.has("recurrence"):
            values["recurrence"] = changes.get("recurrence")
        if changes.has("attendees"):
            values["attendees"] = _keep_responses(current, changes.get("attendees"))
        if changes.has("reminders"):
            values["reminders"] = changes.get("reminders")
        if changes.has("metadata"):
            values["metadata"] = changes.get("metadata")
        values.update(apply_type_changes(current, changes.given))
        values.update(props_values(current, changes.given))
        event = Event(**values) if current is None else dataclasses.replace(current, **values)
    except ValidationError as err:
        # One stage failed: name what else the client got wrong too, not only the first.
        first = _domain_problem(err)
        later = later_problems(
            changes.given, skip={first["field"]}, new=current is None, current=current
        )
        raise unprocessable([first, *later]) from None
    problems = [p for p in event_problems(event) if not _inherited(p, event, current)]
    if problems:
        raise unprocessable([_domain_problem(p) for p in problems])
    return event


def checked_event(event: Event) -> Event:
    """`event` if it breaks none of calsync's rules; a 422 `APIError` naming every problem."""
    problems = event_problems(event)
    if problems:
        raise unprocessable([_domain_problem(p) for p in problems])
    return event


#: The fields of `Event` each kind of problem depends on (by the problem's field).
_DEPENDS_ON: Final = {
    "title": ("title",),
    "description": ("description",),
    "location": ("location",),
    "category": ("category",),
    "attendees": ("attendees",),
    "reminders": ("reminders",),
    "metadata": ("metadata",),
    "recurrence": ("recurrence", "start", "end", "timezone"),
    "end": ("start", "end"),
}


def _inherited(problem: ValidationError, event: Event, current: Event | None) -> bool:
    """Whether `problem` lies only in what the update left as it was: events read from
    Google may break calsync's rules (a long description, an attendee that is not an
    email, a metadata key of another client's spelling, a zero-length event), and such
    an event must stay editable in its other fields (decisions H2)."""
    depends = _DEPENDS_ON.get(problem.field)
    if current is None or depends is None:
        return False
    return all(getattr(event, name) == getattr(current, name) for name in depends)


def _domain_problem(err: ValidationError) -> dict[str, str]:
    return _problem(_DOMAIN_FIELDS.get(err.field, err.field), "invalid", err.message)


def _keep_responses(current: Event | None, attendees: tuple[Attendee, ...]) -> tuple[Attendee, ...]:
    """Attendees still invited keep their answer and organizer flag (those come from sync)."""
    known = {a.email: a for a in current.attendees} if current is not None else {}
    kept = []
    for attendee in attendees:
        before = known.get(attendee.email)
        if before is not None:
            attendee = dataclasses.replace(
                attendee, response_status=before.response_status, organizer=before.organizer
            )
        kept.append(attendee)
    return tuple(kept)


def _times(
    current: Event | None, changes: EventChanges, default_zone: str
) -> tuple[EventTime, EventTime, str | None]:
    start_text: str | None = changes.get("start_time")
    end_text: str | None = changes.get("end_time")
    all_day = _all_day(current, changes, start_text)
    if current is not None and all_day != current.all_day and not (start_text and end_text):
        raise ValidationError(
            "all_day", "give start_time and end_time when switching between all-day and timed"
        )
    if all_day:
        timezone = changes.get("timezone") if changes.has("timezone") else None
        if current is not None and not changes.has("timezone"):
            timezone = current.timezone if current.all_day else None
        start = _day("start_time", start_text) if start_text else _current(current, "start")
        end = _day("end_time", end_text) if end_text else _current(current, "end")
        return start, end, timezone
    zone_name = changes.get("timezone") if changes.has("timezone") else None
    if zone_name is None and current is not None and not current.all_day:
        zone_name = current.timezone
    start = (
        _instant("start_time", start_text, zone_name, default_zone)
        if start_text
        else _rezoned(_current(current, "start"), zone_name)
    )
    assert start.timezone is not None
    end = (
        _instant("end_time", end_text, start.timezone, default_zone)
        if end_text
        else _rezoned(_current(current, "end"), start.timezone)
    )
    return start, end, start.timezone


def _all_day(current: Event | None, changes: EventChanges, start_text: str | None) -> bool:
    if changes.has("all_day"):
        return bool(changes.get("all_day"))
    if start_text is not None:
        return bool(_DATE_ONLY.fullmatch(start_text.strip()))
    return current.all_day if current is not None else False


def _current(current: Event | None, name: str) -> EventTime:
    if current is None:
        raise ValidationError(f"{name}_time", "this field is required")
    value: EventTime = getattr(current, name)
    return value


def _rezoned(value: EventTime, zone_name: str | None) -> EventTime:
    if zone_name is None or value.instant is None or value.timezone == zone_name:
        return value
    return EventTime(instant=value.instant, timezone=zone_name)


def _day(name: str, text: str) -> EventTime:
    if not _DATE_ONLY.fullmatch(text.strip()):
        raise ValidationError(name, "an all-day event takes a date (YYYY-MM-DD), not a date-time")
    try:
        value = EventTime.on(date.fromisoformat(text.strip()))
    except ValueError:
        raise ValidationError(name, f"{text!r} is not a valid date") from None
    return _supported(name, value)


def _instant(name: str, text: str, zone_name: str | None, default_zone: str) -> EventTime:
    if _DATE_ONLY.fullmatch(text.strip()):
        raise ValidationError(name, "a timed event takes a date-time; set all_day for dates")
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(name, f"{text!r} is not an ISO 8601 date-time") from None
    if when.tzinfo is None and zone_name is None:
        raise ValidationError(name, _NEEDS_ZONE)
    try:
        value = EventTime.at(when, zone_name or default_zone)
    except ValidationError as err:
        if err.field != "start":  # the zone's own problems name the zone
            raise
        raise ValidationError(name, err.message) from None
    return _supported(name, value)


def _supported(name: str, value: EventTime) -> EventTime:
    """``value`` if it lies in the span calsync supports, else a problem naming ``name``."""
    problem = time_problem(value)
    if problem is not None:
        raise ValidationError(name, problem)
    return value
