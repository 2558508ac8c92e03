"""What the read model stores for an owner: its items' rows and its documents.

`calsync.events.read_model` decides which owners to (re-)expand and over which ranges;
this module makes their ``event_instances`` rows and ``event_documents`` rows, with the
same functions today's expansion uses (`occurrences`, `instance_id`, `sort_instant`),
per series over chunks of a range no longer than `CHUNK`, so that an item's row is what
that expansion would list for any window inside the ranges expanded (decisions V1-V3,
X1, A2). A series may be expanded over several disjoint ranges (`Range`s: the near
range first, the rest later, decision HC2); the items of one call are merged by API id,
and a caller that adds ranges later leaves out the API ids it stored already.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from calsync.domain.errors import ValidationError
from calsync.domain.models import Event, EventStatus, EventTime
from calsync.domain.recurrence import instance_id, instance_of, occurrences
from calsync.domain.windows import DayRange
from calsync.events.templates import stored_template
from calsync.events.views import EventView, event_json, json_bytes
from calsync.store import instances
from calsync.store.events import StoredEvent

__all__ = [
    "CHUNK",
    "Range",
    "series_documents",
    "series_id_of",
    "series_rows",
    "single_document",
    "sort_instant",
]

Range = tuple[datetime, datetime]
"""Instants ``[first, end)``, midnights UTC."""

CHUNK: Final = timedelta(days=200)
"""The longest window one expansion covers (well under `recurrence.MAX_WINDOW`, the
window validated series are guaranteed to expand in); a range is expanded chunk by
chunk, and the chunks' items merged by API id."""


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def sort_instant(value: EventTime) -> datetime:
    """The instant an item sorts by: its start, midnight UTC for a day (as stored)."""
    if value.day is not None:
        return _midnight(value.day)
    assert value.instant is not None
    return value.instant


def series_id_of(master: StoredEvent) -> str:
    """The id exceptions name their series by (the master's Google id, else its own)."""
    return master.event.provider_event_id or str(master.id)


def single_document(single: StoredEvent) -> dict[str, Any]:
    """The ``event_documents`` row of a single: its item's JSON."""
    body = json_bytes(event_json(EventView(str(single.id), single.event, single)))
    return {"event_id": single.id, "body": body, "end_zone": None, "series_id": None}


def series_documents(master: StoredEvent, own: Sequence[StoredEvent]) -> list[dict[str, Any]]:
    """The ``event_documents`` rows of a series: the master's, the JSON of a generated
    instance of it (the template `calsync.events.model_bodies` makes every other one
    from, with the zone of its end and the series id their Google ids start with), and
    each live exception's as the series lists it (with its own bookkeeping). None for a
    master without rules (listed as itself: rendered per page)."""
    event = master.event
    key = str(master.id)
    found: list[dict[str, Any]] = []
    series_id = series_id_of(master)
    if event.recurrence:
        first = event.start
        template = EventView(
            instance_id(key, first), instance_of(event, series_id, first), master, series=master
        )
        found.append(
            {
                "event_id": master.id,
                "body": stored_template(event_json(template)),
                "end_zone": event.end.timezone,
                "series_id": series_id,
            }
        )
    for exception in own:
        shown = exception.event
        if shown.status == EventStatus.CANCELLED:
            continue
        view = EventView(
            instance_id(key, shown.original_start or shown.start), shown, exception, series=master
        )
        found.append(
            {
                "event_id": exception.id,
                "body": json_bytes(event_json(view)),
                "end_zone": None,
                "series_id": None,
            }
        )
    return found


def _row(
    owner: StoredEvent,
    api_id: str,
    shown: Event,
    *,
    start: EventTime | None = None,
    end_at: datetime | None = None,
    original: EventTime | None = None,
    exception_id: uuid.UUID | None = None,
    bookkeeping_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """An ``event_instances`` row of a series item."""
    begin = start if start is not None else shown.start
    sort_at = sort_instant(begin)
    end = end_at if end_at is not None else sort_instant(shown.end)
    return {
        "owner_id": owner.id,
        "api_id": api_id,
        "user_id": owner.user_id,
        "calendar_id": owner.calendar_id,
        "in_series": True,
        "sort_at": sort_at,
        "end_at": end,
        "all_day": begin.day is not None,
        "long_span": end - sort_at > instances.LONG_SPAN,
        "original_at": sort_instant(original) if original is not None else None,
        "original_zone": None
        if original is None or original.day is not None
        else original.timezone,
        "exception_id": exception_id,
        "bookkeeping_id": bookkeeping_id,
        "category": shown.category,
        "status": shown.status.value,
        "version": owner.version,
    }


def _chunks(ranges: Sequence[Range]) -> list[Range]:
    found = []
    for first, end in ranges:
        while first < end:
            step = min(end, first + CHUNK)
            found.append((first, step))
            first = step
    return found


def series_rows(
    master: StoredEvent, own: Sequence[StoredEvent], ranges: Sequence[Range]
) -> tuple[list[dict[str, Any]], bool]:
    """The items of a series (`own`: its exceptions) that overlap `ranges`, as today's
    expansion lists them, and whether a bound cut the expansion short."""
    event = master.event
    if not event.recurrence:
        return _whole_master(master, own, ranges), False
    series_id = series_id_of(master)
    by_start = {sort_instant(e.event.original_start): e for e in own if e.event.original_start}
    own_events = [e.event for e in own]
    rows: dict[str, dict[str, Any]] = {}
    complete = True
    for low, high in _chunks(ranges):
        try:
            found = occurrences(
                event.recurrence,
                event.start,
                event.end,
                low,
                high,
                own_events,
                series_id=series_id,
                timezone=event.timezone,
                days=DayRange(low.date(), high.date()),
            )
        except ValidationError:
            return [], False  # a rule calsync cannot expand: listed unexpanded only
        complete = complete and found.complete
        _add_generated(rows, master, found.starts, by_start)
        _add_exceptions(rows, master, found.exceptions, own, by_start)
    return list(rows.values()), not complete


def _add_generated(
    rows: dict[str, dict[str, Any]],
    master: StoredEvent,
    starts: Sequence[EventTime],
    by_start: dict[datetime, StoredEvent],
) -> None:
    """Add the rows of generated instances (by API id; one already there is kept)."""
    key, event = str(master.id), master.event
    duration = event.duration
    for value in starts:
        api_id = instance_id(key, value)
        if api_id in rows:
            continue
        if value.day is not None:
            end_at = _midnight(value.day + duration)
        else:
            assert value.instant is not None
            end_at = value.instant + duration
        keeper = by_start.get(sort_instant(value))
        rows[api_id] = _row(
            master,
            api_id,
            event,
            start=value,
            end_at=end_at,
            original=value,
            bookkeeping_id=keeper.id if keeper is not None else None,
        )


def _add_exceptions(
    rows: dict[str, dict[str, Any]],
    master: StoredEvent,
    shown: Sequence[Event],
    own: Sequence[StoredEvent],
    by_start: dict[datetime, StoredEvent],
) -> None:
    """Add the rows of the exceptions shown (by API id; one already there is kept)."""
    key = str(master.id)
    by_event = {id(e.event): e for e in own}
    for exception in shown:
        original = exception.original_start or exception.start
        api_id = instance_id(key, original)
        if api_id in rows:
            continue
        keeper = by_start.get(sort_instant(original))
        rows[api_id] = _row(
            master,
            api_id,
            exception,
            original=original,
            exception_id=by_event[id(exception)].id,
            bookkeeping_id=keeper.id if keeper is not None else None,
        )


def _whole_master(
    master: StoredEvent, own: Sequence[StoredEvent], ranges: Sequence[Range]
) -> list[dict[str, Any]]:
    """A row marked as a series but without rules (never one calsync wrote): listed as
    expansion lists it, the master itself as its one instance, when it meets a range."""
    event = master.event
    at, end = sort_instant(event.start), sort_instant(event.end)
    if not any(at < high and end >= low for low, high in ranges):
        return []
    keeper = next((e for e in own if e.event.original_start == event.start), None)
    api_id = instance_id(str(master.id), event.start)
    bookkeeping = keeper.id if keeper is not None else None
    return [_row(master, api_id, event, original=event.start, bookkeeping_id=bookkeeping)]
