"""`EventChanges` applied to an event -> the resulting domain `Event`, checked.

`apply_changes` builds it: for a create from nothing, for an update on top of the
current event (fields left out keep their values). The result is checked with
`calsync.domain.validation`, so the API and a merge result obey the same rules; an update
is refused only for what it changes (what it leaves as it was may come from Google, which
is not held to calsync's rules, decisions H2). Problems are raised as `FieldErrors`
named by API field (`calsync.events.changes_input`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from calsync.domain.errors import FieldErrors, ValidationError
from calsync.domain.models import Event, EventTime
from calsync.domain.validation import event_problems
from calsync.events.changes_input import (
    EventChanges,
    api_problem,
    keep_responses,
    later_problems,
)
from calsync.events.props_input import props_values
from calsync.events.times_input import day, instant, is_day
from calsync.events.type_fields import apply_type_changes

__all__ = ["apply_changes", "checked_event"]


def apply_changes(current: Event | None, changes: EventChanges, *, default_zone: str) -> Event:
    """The event `changes` make of `current` (`None`: a new event), checked.

    `default_zone` is the zone of a new timed event given with offsets but no
    ``timezone`` (the calendar's zone). Raises `FieldErrors` naming every problem.
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
            values["attendees"] = keep_responses(current, changes.get("attendees"))
        if changes.has("reminders"):
            values["reminders"] = changes.get("reminders")
        if changes.has("metadata"):
            values["metadata"] = changes.get("metadata")
        values.update(apply_type_changes(current, changes.given))
        values.update(props_values(current, changes.given))
        event = Event(**values) if current is None else dataclasses.replace(current, **values)
    except ValidationError as err:
        # One stage failed: name what else the client got wrong too, not only the first.
        first = api_problem(err)
        later = later_problems(
            changes.given, skip={first.field}, new=current is None, current=current
        )
        raise FieldErrors([first, *later]) from None
    problems = [p for p in event_problems(event) if not _inherited(p, event, current)]
    if problems:
        raise FieldErrors([api_problem(p) for p in problems])
    return event


def checked_event(event: Event) -> Event:
    """`event` if it breaks none of calsync's rules; else `FieldErrors` naming every problem."""
    problems = event_problems(event)
    if problems:
        raise FieldErrors([api_problem(p) for p in problems])
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
        start = day("start_time", start_text) if start_text else _current(current, "start")
        end = day("end_time", end_text) if end_text else _current(current, "end")
        return start, end, timezone
    zone_name = changes.get("timezone") if changes.has("timezone") else None
    if zone_name is None and current is not None and not current.all_day:
        zone_name = current.timezone
    start = (
        instant("start_time", start_text, zone_name, default_zone)
        if start_text
        else _rezoned(_current(current, "start"), zone_name)
    )
    assert start.timezone is not None
    end = (
        instant("end_time", end_text, start.timezone, default_zone)
        if end_text
        else _rezoned(_current(current, "end"), start.timezone)
    )
    return start, end, start.timezone


def _all_day(current: Event | None, changes: EventChanges, start_text: str | None) -> bool:
    if changes.has("all_day"):
        return bool(changes.get("all_day"))
    if start_text is not None:
        return bool(is_day(start_text))
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
