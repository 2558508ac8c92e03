"""Event bodies (the JSON object a client sent) -> `EventChanges`, with problems that
name the field.

`read_changes` checks the body's shape (known fields only, read-only ones refused, right
JSON types, no control characters) and returns the fields the client gave as
`EventChanges`; `calsync.events.changes_applied` builds the resulting `Event` from them.
Every problem is one `ValidationError` named by its API field, with its ``issue``
(``invalid``, ``required``, ``unknown``, ``read_only``); all of a body's problems are
raised at once as `FieldErrors`, which the web layer answers as a 422 with one
``details`` entry each (decision HE2). Reading the HTTP request itself (its JSON, its
size) is the web layer's; this module starts from the parsed object.

Times (`calsync.events.times_input`): a timed event takes ISO 8601 date-times, either with
an offset or as wall-clock times in ``timezone`` (a naive date-time without a
``timezone`` is refused); an all-day event takes dates (``YYYY-MM-DD``, end exclusive as
in Google). ``all_day`` may be left out; it is then read from the kind of ``start_time``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from calsync.domain.errors import FieldErrors, ValidationError
from calsync.domain.models import Attendee, Event, EventTime, Reminders
from calsync.domain.timezones import zone
from calsync.domain.validation import event_problems
from calsync.events.props_input import PROPS_FIELDS, PROPS_READERS
from calsync.events.times_input import time_syntax_problem
from calsync.events.type_fields import TYPE_FIELDS, TYPE_READERS

__all__ = [
    "READ_ONLY_FIELDS",
    "WRITABLE_FIELDS",
    "EventChanges",
    "api_problem",
    "has_control_characters",
    "keep_responses",
    "later_problems",
    "read_changes",
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
#: The API name of the domain's fields where they differ.
_API_FIELDS: Final = {"start": "start_time", "end": "end_time"}


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
    """Check a body's fields and types; raise `FieldErrors` naming every bad field."""
    problems: list[ValidationError] = []
    for name in body:
        if name in READ_ONLY_FIELDS:
            problems.append(
                ValidationError(name, "this field is set by calsync", issue="read_only")
            )
        elif name not in WRITABLE_FIELDS:
            problems.append(ValidationError(name, "there is no such field", issue="unknown"))
    given: dict[str, Any] = {}
    for name in WRITABLE_FIELDS:
        if name not in body:
            if require_times and name in ("start_time", "end_time"):
                problems.append(ValidationError(name, "this field is required", issue="required"))
            continue
        try:
            given[name] = _READERS[name](name, body[name])
        except ValidationError as err:
            problems.append(ValidationError(err.field, err.message))
    if problems:
        # Name every bad field at once: the fields whose type was right are checked
        # further too, as far as they can be without the stored event (item 10).
        done = {p.field for p in problems}
        problems.extend(later_problems(given, skip=done, new=require_times))
        raise FieldErrors(problems)
    return EventChanges(given)


_PROBE_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
#: Fields whose problems the given value alone decides, whatever the times or the stored
#: event (``end`` and ``recurrence`` depend on the start).
_STANDALONE: Final = ("category", "attendees", "reminders", "metadata")


def later_problems(
    given: Mapping[str, Any], *, skip: set[str], new: bool, current: Event | None = None
) -> list[ValidationError]:
    """The problems (named by API field) of `given` (values `read_changes` accepted)
    that can be told without the stored event, for fields not in `skip`: a time that
    does not parse (or, for a `new` event, a wall-clock time without a ``timezone``),
    and what calsync's rules say of the texts, attendees, reminders and metadata. Used
    to name every
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
            problem = time_syntax_problem(name, text, zoned=zoned)
            if problem is not None:
                problems.append(problem)
    values: dict[str, Any] = {}
    for name in ("title", "description", "location"):
        if name in given:
            values[name] = given[name] or ""
    values.update((name, given[name]) for name in _STANDALONE if name in given)
    if "attendees" in values:
        values["attendees"] = keep_responses(current, values["attendees"])
    instant = EventTime.at(_PROBE_TIME, "UTC")
    try:
        probe = Event(start=instant, end=instant, **values)
    except ValidationError as err:  # not expected of these fields; never hide the first 422
        return [*(api_problem(p) for p in problems), api_problem(err)]
    problems.extend(
        p
        for p in event_problems(probe)
        if p.field in values
        and p.field not in skip
        and (current is None or getattr(probe, p.field) != getattr(current, p.field))
    )
    return [api_problem(p) for p in problems]


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


def api_problem(err: ValidationError) -> ValidationError:
    """`err` named by its API field (``start_time`` for the domain's ``start``), as an
    ``invalid`` problem."""
    return ValidationError(_API_FIELDS.get(err.field, err.field), err.message)


def keep_responses(current: Event | None, attendees: tuple[Attendee, ...]) -> tuple[Attendee, ...]:
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
