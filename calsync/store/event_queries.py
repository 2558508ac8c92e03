"""Reading events for the API: filtered, ordered lists and the pieces of recurring series.

Everything returns `StoredEvent`s (rows never leave the store). Lists are ordered by
``(start_time, id)`` and paged by keyset (`after`), which gives the same order on SQLite
and PostgreSQL: both compare UUIDs as their 32 hex digits. Deleted rows
(``deleted_at``) and cancelled events are never listed; cancelled exceptions are read
only as part of their series (`exceptions_of`), where they remove an instance.

Time ranges are half-open ``[start, end)`` and select what overlaps them: a single event
or exception by its own start and end, a series master by its start and
``recurrence_end`` (an upper bound, ``NULL`` = no end), so a master may be selected for a
range in which an exclusion leaves it no instance.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.domain.models import EventTime
from calsync.store.chunks import chunks
from calsync.store.events import StoredEvent, attendees_by_event, stored_event
from calsync.store.tables import Calendar
from calsync.store.tables import Event as EventRow

__all__ = [
    "CalendarView",
    "EventFilter",
    "Kind",
    "SeriesOutline",
    "calendar_of",
    "calendars_of",
    "exceptions_of",
    "exceptions_of_listed",
    "find_by_provider_id",
    "find_exception",
    "list_keys",
    "list_stored",
    "load_many",
    "series_outlines",
    "set_conflict_policy",
]


class Kind(StrEnum):
    """Which rows a list selects."""

    ALL = "all"  # singles, masters and live exceptions
    SINGLE = "single"  # neither a master nor an exception
    RECURRING = "recurring"  # masters and live exceptions
    MASTER = "master"  # series masters only


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFilter:
    """What a list selects; `None` fields do not filter."""

    user_id: uuid.UUID
    start: datetime | None = None
    end: datetime | None = None
    category: str | None = None
    calendar_id: uuid.UUID | None = None
    kind: Kind = Kind.ALL


def _conditions(spec: EventFilter) -> list[sa.ColumnElement[bool]]:
    row = EventRow
    found: list[sa.ColumnElement[bool]] = [
        row.user_id == spec.user_id,
        row.deleted_at.is_(None),
        row.status != "cancelled",
    ]
    if spec.category is not None:
        found.append(row.category == spec.category)
    if spec.calendar_id is not None:
        found.append(row.calendar_id == spec.calendar_id)
    master = row.is_recurring.is_(True)
    exception = row.recurring_event_id.is_not(None)
    if spec.kind is Kind.SINGLE:
        found += [row.is_recurring.is_(False), row.recurring_event_id.is_(None)]
    elif spec.kind is Kind.RECURRING:
        found.append(sa.or_(master, exception))
    elif spec.kind is Kind.MASTER:
        found.append(master)
    if spec.start is not None and spec.end is not None:
        found.append(row.start_time < spec.end)
        series_overlaps = sa.or_(row.recurrence_end.is_(None), row.recurrence_end > spec.start)
        event_overlaps = sa.or_(
            row.end_time > spec.start,
            sa.and_(row.end_time == row.start_time, row.start_time >= spec.start),
        )
        # Each kind gets only the branch that can hold for it, so that PostgreSQL can
        # answer from the partial indexes of singles and masters (0006).
        if spec.kind is Kind.SINGLE:
            found.append(event_overlaps)
        elif spec.kind is Kind.MASTER:
            found.append(series_overlaps)
        else:
            found.append(
                sa.or_(
                    sa.and_(master, series_overlaps),
                    sa.and_(row.is_recurring.is_(False), event_overlaps),
                )
            )
    return found


def list_stored(
    session: Session,
    spec: EventFilter,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[StoredEvent]:
    """At most `limit` events matching `spec`, by (start, id), after the `after` key."""
    query = sa.select(EventRow).where(*_conditions(spec))
    if after is not None:
        query = query.where(_after(after))
    rows = list(session.scalars(query.order_by(EventRow.start_time, EventRow.id).limit(limit)))
    return _with_attendees(session, rows)


def list_keys(
    session: Session,
    spec: EventFilter,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[tuple[datetime, uuid.UUID]]:
    """The (start, id) keys of what `list_stored` returns for the same arguments: the
    rows are not loaded (a caller that shows only some of them loads those)."""
    query = sa.select(EventRow.start_time, EventRow.id).where(*_conditions(spec))
    if after is not None:
        query = query.where(_after(after))
    query = query.order_by(EventRow.start_time, EventRow.id).limit(limit)
    return [(at, event_id) for at, event_id in session.execute(query)]


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesOutline:
    """What expanding a series master needs, read without loading the whole row.

    The fields equal those of the master's `StoredEvent` (`id`, `calendar_id`) and of its
    `event` (`start`, `end`, `timezone`, `recurrence`, `category`); `series_id` is the
    id its exceptions name it by (its Google id, else its local id).
    """

    id: uuid.UUID
    calendar_id: uuid.UUID
    series_id: str
    start: EventTime
    end: EventTime
    timezone: str | None
    recurrence: tuple[str, ...]
    category: str | None


_OUTLINE_COLUMNS = (
    EventRow.id,
    EventRow.calendar_id,
    EventRow.google_event_id,
    EventRow.start_time,
    EventRow.end_time,
    EventRow.timezone,
    EventRow.end_timezone,
    EventRow.all_day,
    EventRow.recurrence_rule,
    EventRow.category,
)


def series_outlines(session: Session, spec: EventFilter, *, limit: int) -> list[SeriesOutline]:
    """The outlines of the masters `list_stored(session, spec, limit=limit)` returns, in
    the same order (`spec.kind` should be `Kind.MASTER`)."""
    query = sa.select(*_OUTLINE_COLUMNS).where(*_conditions(spec))
    rows = session.execute(query.order_by(EventRow.start_time, EventRow.id).limit(limit))
    return [_outline(row) for row in rows]


def _outline(row: sa.Row[*tuple[Any, ...]]) -> SeriesOutline:
    (
        event_id,
        calendar_id,
        google_id,
        start_time,
        end_time,
        zone_name,
        end_zone,
        all_day,
        rule,
        category,
    ) = row
    start, end, timezone = _series_times(start_time, end_time, zone_name, end_zone, all_day)
    return SeriesOutline(
        id=event_id,
        calendar_id=calendar_id,
        series_id=google_id or str(event_id),
        start=start,
        end=end,
        timezone=timezone,
        recurrence=tuple(line.strip() for line in rule.split("\n")) if rule else (),
        category=category,
    )


def exceptions_of_listed(
    session: Session, spec: EventFilter, masters: Sequence[SeriesOutline], *, limit: int
) -> dict[tuple[uuid.UUID, str], list[StoredEvent]]:
    """`exceptions_of` the `masters` that `series_outlines(session, spec, limit=limit)`
    returned, in one query that joins the exceptions to that same list of masters
    (instead of sending their ids back), each series' by (start, id)."""
    listed = (
        sa.select(EventRow.calendar_id, EventRow.google_event_id)
        .where(*_conditions(spec))
        .order_by(EventRow.start_time, EventRow.id)
        .limit(limit)
        .subquery()
    )
    query = (
        sa.select(EventRow)
        .join(
            listed,
            sa.and_(
                listed.c.calendar_id == EventRow.calendar_id,
                listed.c.google_event_id == EventRow.recurring_event_id,
            ),
        )
        .where(EventRow.deleted_at.is_(None))
        .order_by(EventRow.start_time, EventRow.id)
    )
    found: dict[tuple[uuid.UUID, str], list[StoredEvent]] = {}
    for stored in _with_attendees(session, list(session.scalars(query))):
        key = (stored.calendar_id, stored.event.recurring_event_id or "")
        found.setdefault(key, []).append(stored)
    without_google_id = [(m.calendar_id, m.series_id) for m in masters if m.series_id == str(m.id)]
    if without_google_id:
        found.update(exceptions_of(session, without_google_id))
    return found


@lru_cache(maxsize=8192)
def _series_times(
    start_time: datetime, end_time: datetime, zone_name: str, end_zone: str | None, all_day: bool
) -> tuple[EventTime, EventTime, str | None]:
    """(start, end, timezone) of a master's event from its columns: the same mapping as
    `calsync.store.events.to_event` (tested against it). A pure function of immutable
    values, remembered because every expanded list maps every master of its range."""
    if all_day:
        start = EventTime.on(start_time.astimezone(UTC).date())
        end = EventTime.on(end_time.astimezone(UTC).date())
        return start, end, zone_name or None
    start = EventTime(instant=start_time, timezone=zone_name or "UTC")
    end = EventTime(instant=end_time, timezone=end_zone or zone_name or "UTC")
    return start, end, start.timezone


def load_many(session: Session, event_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StoredEvent]:
    """The events with these local ids (deleted ones excluded), by id; absent ids are
    missing from the answer."""
    rows: list[EventRow] = []
    for chunk in chunks(sorted(set(event_ids))):
        rows += session.scalars(
            sa.select(EventRow).where(EventRow.id.in_(chunk), EventRow.deleted_at.is_(None))
        )
    return {stored.id: stored for stored in _with_attendees(session, rows)}


def _after(after: tuple[datetime, uuid.UUID]) -> sa.ColumnElement[bool]:
    at, last_id = after
    return sa.or_(
        EventRow.start_time > at,
        sa.and_(EventRow.start_time == at, EventRow.id > last_id),
    )


def exceptions_of(
    session: Session, series: Sequence[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], list[StoredEvent]]:
    """The exception rows (cancelled ones included, deleted ones not) of each series,
    keyed by (calendar id, the master's provider id)."""
    found: dict[tuple[uuid.UUID, str], list[StoredEvent]] = {}
    by_calendar: dict[uuid.UUID, list[str]] = {}
    for calendar_id, series_id in series:
        by_calendar.setdefault(calendar_id, []).append(series_id)
    for calendar_id, ids in by_calendar.items():
        for chunk in chunks(ids, 500):
            rows = list(
                session.scalars(
                    sa.select(EventRow).where(
                        EventRow.calendar_id == calendar_id,
                        EventRow.recurring_event_id.in_(chunk),
                        EventRow.deleted_at.is_(None),
                    )
                )
            )
            for stored in _with_attendees(session, rows):
                key = (calendar_id, stored.event.recurring_event_id or "")
                found.setdefault(key, []).append(stored)
    return found


def find_exception(
    session: Session, *, calendar_id: uuid.UUID, series_id: str, original_start: datetime
) -> StoredEvent | None:
    """The exception of series `series_id` that replaces the instance at `original_start`
    (its stored UTC instant; midnight UTC for all-day), deleted ones excluded."""
    row = session.scalar(
        sa.select(EventRow).where(
            EventRow.calendar_id == calendar_id,
            EventRow.recurring_event_id == series_id,
            EventRow.original_start_time == original_start,
            EventRow.deleted_at.is_(None),
        )
    )
    if row is None:
        return None
    return _with_attendees(session, [row])[0]


def find_by_provider_id(
    session: Session, *, calendar_id: uuid.UUID, provider_id: str
) -> StoredEvent | None:
    """The calendar's event with Google id `provider_id` (deleted or not), or `None`."""
    row = session.scalar(
        sa.select(EventRow).where(
            EventRow.calendar_id == calendar_id, EventRow.google_event_id == provider_id
        )
    )
    if row is None:
        return None
    return _with_attendees(session, [row])[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class CalendarView:
    """A calendar as the API shows it."""

    id: uuid.UUID
    provider_calendar_id: str
    summary: str
    timezone: str
    access_role: str
    is_primary: bool
    selected: bool
    conflict_policy: str | None
    last_synced_at: datetime | None
    last_sync_status: str | None
    dirty: bool
    poll_only: bool

    @property
    def writable(self) -> bool:
        return self.access_role in ("owner", "writer")


def calendars_of(session: Session, user_id: uuid.UUID) -> list[CalendarView]:
    """The user's calendars, the primary one first, then by name."""
    rows = session.scalars(
        sa.select(Calendar)
        .where(Calendar.user_id == user_id)
        .order_by(Calendar.is_primary.desc(), Calendar.summary, Calendar.id)
    )
    return [_calendar_view(row) for row in rows]


def calendar_of(session: Session, calendar_id: uuid.UUID) -> tuple[uuid.UUID, CalendarView] | None:
    """(owner id, calendar) of one calendar, or `None`."""
    row = session.get(Calendar, calendar_id)
    return (row.user_id, _calendar_view(row)) if row is not None else None


def set_conflict_policy(session: Session, calendar_id: uuid.UUID, policy: str | None) -> None:
    """Set (or with `None` clear) the calendar's own conflict policy."""
    row = session.get(Calendar, calendar_id)
    if row is not None:
        row.conflict_policy = policy
        session.flush()


def _calendar_view(row: Calendar) -> CalendarView:
    return CalendarView(
        id=row.id,
        provider_calendar_id=row.provider_calendar_id,
        summary=row.summary,
        timezone=row.timezone,
        access_role=row.access_role,
        is_primary=row.is_primary,
        selected=row.selected,
        conflict_policy=row.conflict_policy,
        last_synced_at=row.last_synced_at,
        last_sync_status=row.last_sync_status,
        dirty=row.dirty,
        poll_only=row.poll_only,
    )


def _with_attendees(session: Session, rows: list[EventRow]) -> list[StoredEvent]:
    attendees = attendees_by_event(session, [row.id for row in rows]) if rows else {}
    return [stored_event(row, attendees.get(row.id, ())) for row in rows]
