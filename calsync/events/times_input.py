"""The time texts of an event body -> `EventTime`s, with problems that name the field.

A timed event takes ISO 8601 date-times, either with an offset or as wall-clock times in
``timezone`` (a naive date-time without a zone is refused); an all-day event takes dates
(``YYYY-MM-DD``, end exclusive as in Google). Each reader raises `ValidationError`
naming the API field (``start_time``, ``end_time``) it read; every value must lie in the
span calsync supports (`calsync.domain.validation.time_problem`).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Final

from calsync.domain.errors import ValidationError
from calsync.domain.models import EventTime
from calsync.domain.validation import time_problem

__all__ = ["DATE_ONLY", "day", "instant", "is_day", "supported", "time_syntax_problem"]

DATE_ONLY: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_NEEDS_ZONE: Final = (
    "a date-time without an offset needs a timezone (an IANA name such as Europe/Berlin)"
)


def is_day(text: str) -> bool:
    """Whether `text` is a date (``YYYY-MM-DD``), as all-day times are given."""
    return bool(DATE_ONLY.fullmatch(text.strip()))


def time_syntax_problem(name: str, text: str, *, zoned: bool) -> ValidationError | None:
    """The problem of a time text on its own: whether it parses, lies in calsync's span
    and (unless `zoned`: a zone is given or stored) has an offset. Whether it matches
    ``all_day`` is for `calsync.events.changes_applied`."""
    try:
        if is_day(text):
            day(name, text)
        else:
            when = datetime.fromisoformat(text.strip())
            if when.tzinfo is not None:
                supported(name, EventTime.at(when, "UTC"))
            elif not zoned:
                raise ValidationError(name, _NEEDS_ZONE)
    except ValidationError as err:
        return err
    except ValueError:
        return ValidationError(name, f"{text!r} is not an ISO 8601 date-time")
    return None


def day(name: str, text: str) -> EventTime:
    """The all-day time `text` gives for the field `name`."""
    if not is_day(text):
        raise ValidationError(name, "an all-day event takes a date (YYYY-MM-DD), not a date-time")
    try:
        value = EventTime.on(date.fromisoformat(text.strip()))
    except ValueError:
        raise ValidationError(name, f"{text!r} is not a valid date") from None
    return supported(name, value)


def instant(name: str, text: str, zone_name: str | None, default_zone: str) -> EventTime:
    """The timed value `text` gives for the field `name`, in `zone_name` (the event's
    zone), else `default_zone` for a text with an offset."""
    if is_day(text):
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
    return supported(name, value)


def supported(name: str, value: EventTime) -> EventTime:
    """``value`` if it lies in the span calsync supports, else a problem naming ``name``."""
    problem = time_problem(value)
    if problem is not None:
        raise ValidationError(name, problem)
    return value
