"""The rules an event must meet before calsync accepts it from a client.

`event_problems` lists every broken rule; `validate_event` raises the first. They are
applied to input (the REST API, a merge result about to be pushed), not to events read
from Google, which calsync stores as Google has them. The limits follow Google's where
Google has one (5 reminder overrides of at most 4 weeks; private extended property keys
of at most 44 characters, of which calsync's `calsync_meta_` prefix takes 13; no
rule repeating more often than daily).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Final

from calsync.domain.errors import ValidationError
from calsync.domain.models import Event, EventTime
from calsync.domain.recurrence import DEFAULT_MAX_COUNT, validate_recurrence
from calsync.domain.rfc5545 import parse_recurrence

MAX_TITLE_LENGTH: Final = 1024
MAX_DESCRIPTION_LENGTH: Final = 8192
MAX_LOCATION_LENGTH: Final = 1024
MAX_CATEGORY_LENGTH: Final = 64
MAX_ATTENDEES: Final = 200
MAX_REMINDER_OVERRIDES: Final = 5
MAX_REMINDER_MINUTES: Final = 40320
MAX_METADATA_ENTRIES: Final = 32
MAX_METADATA_VALUE_LENGTH: Final = 1024
#: The span a start or end a client writes must lie in (UTC; all-day dates as midnight
#: UTC): far wider than any calendar use, far enough from datetime's own ends (years 1
#: and 9999) that converting to any zone or expanding a series never overflows.
EARLIEST_TIME: Final = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_TIME: Final = datetime(2200, 1, 1, tzinfo=UTC)
METADATA_KEY_PATTERN: Final = re.compile(r"[A-Za-z0-9_.-]{1,31}")
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
SUB_DAILY_FREQUENCIES: Final = frozenset({"HOURLY", "MINUTELY", "SECONDLY"})
"""RRULE frequencies a client may not write: Google refuses them (`_refuse_sub_daily`)."""


def validate_event(event: Event, *, max_recurrence_count: int = DEFAULT_MAX_COUNT) -> Event:
    """Return `event` unchanged if it meets every rule; else raise the first `ValidationError`."""
    problems = event_problems(event, max_recurrence_count=max_recurrence_count)
    if problems:
        raise problems[0]
    return event


def time_problem(value: EventTime) -> str | None:
    """Why a start or end a client writes is outside the supported span, or None."""
    if value.instant is not None:
        moment = value.instant
    else:
        assert value.day is not None
        moment = datetime.combine(value.day, time(), tzinfo=UTC)
    if not EARLIEST_TIME <= moment <= LATEST_TIME:
        return (
            f"must be between {EARLIEST_TIME.date().isoformat()} and "
            f"{LATEST_TIME.date().isoformat()} (UTC)"
        )
    return None


def event_problems(
    event: Event, *, max_recurrence_count: int = DEFAULT_MAX_COUNT
) -> list[ValidationError]:
    """Every rule `event` breaks, in field order; empty if it is acceptable."""
    problems: list[ValidationError] = []
    _check_texts(event, problems)
    _check_times(event, problems)
    _check_attendees(event, problems)
    _check_reminders(event, problems)
    _check_metadata(event, problems)
    if event.recurrence:
        _check_recurrence(event, problems, max_recurrence_count)
    return problems


def _check_recurrence(event: Event, problems: list[ValidationError], max_count: int) -> None:
    if event.is_exception:
        problems.append(ValidationError("recurrence", "an exception cannot recur itself"))
        return
    try:
        _refuse_sub_daily(event.recurrence, max_count)
        validate_recurrence(event.recurrence, event.start, max_count=max_count)
    except ValidationError as err:
        problems.append(err)


def _refuse_sub_daily(lines: tuple[str, ...], max_count: int) -> None:
    """Refuse an RRULE repeating more often than daily. RFC 5545 allows one and calsync
    can expand one, but Google does not store it (a server error on import,
    googleapis/google-api-ruby-client#572): accepted here, the series would be created
    locally and never reach Google. Checked before `validate_recurrence`'s work budget so
    that such a rule is named for what it is; lines that do not parse are left to it."""
    try:
        parsed = parse_recurrence(lines, max_count=max_count)
    except ValidationError:
        return
    for rule in parsed.rrules:
        if rule.freq in SUB_DAILY_FREQUENCIES:
            raise ValidationError(
                "recurrence",
                f"FREQ={rule.freq} is not supported by Google Calendar (in {rule.source!r}):"
                " a series may repeat at most daily (FREQ=DAILY, WEEKLY, MONTHLY or YEARLY)",
            )


def _check_texts(event: Event, problems: list[ValidationError]) -> None:
    for name, value, limit in (
        ("title", event.title, MAX_TITLE_LENGTH),
        ("description", event.description, MAX_DESCRIPTION_LENGTH),
        ("location", event.location, MAX_LOCATION_LENGTH),
    ):
        if len(value) > limit:
            problems.append(ValidationError(name, f"must be at most {limit} characters"))
    if event.category is not None and not 1 <= len(event.category.strip()) <= MAX_CATEGORY_LENGTH:
        problems.append(
            ValidationError("category", f"must be 1 to {MAX_CATEGORY_LENGTH} characters")
        )


def _check_times(event: Event, problems: list[ValidationError]) -> None:
    """The end may not come before the start. As Google: a timed event may have no length
    (start == end, common in exports: a deadline, a reminder), an all-day one may not
    (Google answers ``timeRangeEmpty``). An instance may change kind (timed to all-day
    and back) while its ``original_start`` keeps its series' kind, as Google's
    ``originalStartTime`` does (decisions G4)."""
    seconds = event.duration.total_seconds()
    if seconds < 0 or (event.all_day and seconds == 0):
        problems.append(
            ValidationError(
                "end",
                "must be after the start" if event.all_day else "must not be before the start",
            )
        )


def _check_attendees(event: Event, problems: list[ValidationError]) -> None:
    if len(event.attendees) > MAX_ATTENDEES:
        problems.append(ValidationError("attendees", f"at most {MAX_ATTENDEES} attendees"))
    seen: set[str] = set()
    for attendee in event.attendees:
        if not _EMAIL.fullmatch(attendee.email):
            problems.append(ValidationError("attendees", f"{attendee.email!r} is not an email"))
        elif attendee.email in seen:
            problems.append(ValidationError("attendees", f"{attendee.email!r} appears twice"))
        seen.add(attendee.email)


def _check_reminders(event: Event, problems: list[ValidationError]) -> None:
    overrides = event.reminders.overrides
    if len(overrides) > MAX_REMINDER_OVERRIDES:
        problems.append(ValidationError("reminders", f"at most {MAX_REMINDER_OVERRIDES} reminders"))
    for reminder in overrides:
        if not 0 <= reminder.minutes <= MAX_REMINDER_MINUTES:
            problems.append(
                ValidationError("reminders", f"minutes must be 0 to {MAX_REMINDER_MINUTES}")
            )


def _check_metadata(event: Event, problems: list[ValidationError]) -> None:
    if len(event.metadata) > MAX_METADATA_ENTRIES:
        problems.append(ValidationError("metadata", f"at most {MAX_METADATA_ENTRIES} keys"))
    for key, value in event.metadata.items():
        if not METADATA_KEY_PATTERN.fullmatch(key):
            problems.append(
                ValidationError("metadata", f"key {key!r} must be 1-31 of A-Z a-z 0-9 _ . -")
            )
        if len(value) > MAX_METADATA_VALUE_LENGTH:
            problems.append(
                ValidationError("metadata", f"value of {key!r} exceeds 1024 characters")
            )
