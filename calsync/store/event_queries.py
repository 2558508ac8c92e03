"""Reading events for the API: filtered, ordered lists and the pieces of recurring series.

Everything returns `StoredEvent`s (rows never leave the store). Lists are ordered by
``(start_time, id)`` and paged by keyset (`after`), which gives the same order on SQLite
and PostgreSQL: both compare UUIDs as their 32 hex digits. Deleted rows
(``deleted_at``) and cancelled events are never listed; cancelled exceptions are read
only as part of their series (`exceptions_of`), where they remove an instance.

Time ranges are half-open ``[start, end)`` with the days ``[first, end)`` they cover for
the viewer (`calsync.domain.windows`), and select what falls in them: a timed single
event or exception by its own start and end against the instants; an all-day one by its
dates against the days (`all_day_in_window`: all-day dates are stored as midnight UTC, so
comparing those midnights compares the dates); a series master by its start and
``recurrence_end`` (an upper bound, ``NULL`` = no end) against the instants, or the days
if it is all-day, so a master may be selected for a range in which an exclusion leaves
it no instance (or, all-day, that begins the day its last instance ends).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.domain.models import EventTime
from calsync.store.chunks import chunks
from calsync.store.event_filters import (
    EventFilter,
    FilterShape,
    filter_conditions,
    filter_shape,
    filter_values,
    midnight,
)
from calsync.store.events import (
    EventRecord,
    StoredEvent,
    any_of,
    attendees_by_event,
    select_stored,
    stored_event,
    stored_table_columns,
)
from calsync.store.tables import Event as EventRow
from calsync.store.tables import EventAttendee, OutboxEntry

__all__ = [
    "SeriesOutline",
    "dropped_exceptions",
    "exceptions_of",
    "exceptions_of_outlines",
    "find_by_provider_id",
    "find_exception",
    "list_keys",
    "list_stored",
    "load_many",
    "load_shown",
    "masters_of_exceptions_in",
    "read_stored",
    "series_outlines",
]


def list_stored(
    session: Session,
    spec: EventFilter,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[StoredEvent]:
    """At most `limit` events matching `spec`, by (start, id), after the `after` key."""
    query = select_stored().where(*filter_conditions(filter_shape(spec, after)))
    query = query.order_by(EventRow.start_time, EventRow.id).limit(limit)
    rows = list(session.execute(query, filter_values(spec, after)))
    return _with_attendees(session, rows)


def list_keys(
    session: Session,
    spec: EventFilter,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[tuple[datetime, uuid.UUID]]:
    """The (start, id) keys of what `list_stored` returns for the same arguments: the
    rows are not loaded (a caller that shows only some of them loads those, see
    `load_many`). Singles on PostgreSQL are found by an index-only scan of their partial
    index (0006; it holds every column their conditions read)."""
    query = _keys_statement(filter_shape(spec, after), limit)
    rows = session.execute(query, filter_values(spec, after))
    return [(at, event_id) for at, event_id in rows]


@lru_cache(maxsize=256)
def _keys_statement(shape: FilterShape, limit: int) -> sa.Select[datetime, uuid.UUID]:
    """The keys statement of `list_keys`."""
    query = sa.select(EventRow.start_time, EventRow.id).where(*filter_conditions(shape))
    return query.order_by(EventRow.start_time, EventRow.id).limit(limit)


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesOutline:
    """What expanding a series master needs, read without loading the whole row.

    The fields equal those of the master's `StoredEvent` (`id`, `calendar_id`) and of its
    `event` (`start`, `end`, `timezone`, `recurrence`, `category`); `series_id` is the
    id its exceptions name it by (its Google id, else its local id). `has_exceptions` is
    false only if, when read, no exception row (deleted ones aside) named the series by
    its Google id; a master without one may have exceptions whatever it says.
    """

    id: uuid.UUID
    calendar_id: uuid.UUID
    series_id: str
    start: EventTime
    end: EventTime
    timezone: str | None
    recurrence: tuple[str, ...]
    category: str | None
    has_exceptions: bool


_exception = sa.orm.aliased(EventRow, name="exception")

# A scalar subquery (not EXISTS, which PostgreSQL may answer by hashing every exception
# of every user): one index probe per master listed.
_HAS_EXCEPTIONS = (
    sa.select(_exception.id)
    .where(
        _exception.calendar_id == EventRow.calendar_id,
        _exception.recurring_event_id == EventRow.google_event_id,
        _exception.deleted_at.is_(None),
    )
    .limit(1)
    .scalar_subquery()
    .is_not(None)
    .label("has_exceptions")
)

# SQLite, once ANALYZE has seen that nearly every row has no recurring_event_id, judges
# the (calendar_id, recurring_event_id) index useless and scans the whole table for every
# master (0.7 s for the benchmark's month); the same test with the index named.
_HAS_EXCEPTIONS_SQLITE = sa.literal_column(
    "(SELECT exception.id FROM events AS exception"
    " INDEXED BY ix_events_calendar_id_recurring_event_id"
    " WHERE exception.calendar_id = events.calendar_id"
    " AND exception.recurring_event_id = events.google_event_id"
    " AND exception.deleted_at IS NULL LIMIT 1) IS NOT NULL",
    sa.Boolean(),
).label("has_exceptions")


def _has_exceptions(dialect: str) -> sa.ColumnElement[bool]:
    """The outlines' ``has_exceptions`` column for a database of dialect `dialect`."""
    return _HAS_EXCEPTIONS_SQLITE if dialect == "sqlite" else _HAS_EXCEPTIONS


@lru_cache(maxsize=8)
def _outline_columns(dialect: str) -> tuple[Any, ...]:
    """What `_outline` reads: the outline's columns, whether the series has exceptions,"""
    return (*_OUTLINE_COLUMNS, _has_exceptions(dialect))


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
    query = sa.select(*_outline_columns(session.get_bind().dialect.name)).where(
        *filter_conditions(filter_shape(spec))
    )
    query = query.order_by(EventRow.start_time, EventRow.id).limit(limit)
    return [_outline(row) for row in session.execute(query, filter_values(spec))]


def masters_of_exceptions_in(
    session: Session, spec: EventFilter, *, known: Collection[uuid.UUID]
) -> list[SeriesOutline]:
    """The outlines of the masters, other than those `known`, of the live exceptions that
    `spec`'s window selects (`spec.kind` should be `Kind.EXCEPTION`; its category is not
    applied to the masters): an instance moved out of its series' span (after its last
    instance, before its start) falls in windows its master's range does not.

    One index scan of the user's exceptions that start before the window's end
    (``ix_events_exceptions_by_start``, migration 0011), then one query for their masters
    if any is missing. Masters are matched by their Google id, or by their local id when
    they have none (what exceptions name a series by)."""
    query = _exception_series_statement(filter_shape(spec))
    rows = session.execute(query, filter_values(spec))
    named = {(calendar_id, series_id) for calendar_id, series_id in rows if series_id}
    if not named:
        return []
    by_google: dict[uuid.UUID, list[str]] = {}
    local: list[uuid.UUID] = []
    for calendar_id, series_id in named:
        by_google.setdefault(calendar_id, []).append(series_id)
        with contextlib.suppress(ValueError):
            local.append(uuid.UUID(series_id))
    columns = _outline_columns(session.get_bind().dialect.name)
    live = (
        EventRow.user_id == spec.user_id,
        EventRow.is_recurring.is_(True),
        EventRow.deleted_at.is_(None),
        EventRow.status != "cancelled",
    )
    found: dict[uuid.UUID, SeriesOutline] = {}
    for calendar_id, ids in by_google.items():
        for condition in any_of(session, EventRow.google_event_id, ids):
            statement = sa.select(*columns).where(
                *live, EventRow.calendar_id == calendar_id, condition
            )
            found.update((o.id, o) for o in map(_outline, session.execute(statement)))
    for condition in any_of(session, EventRow.id, local):
        statement = sa.select(*columns).where(*live, EventRow.google_event_id.is_(None), condition)
        found.update((o.id, o) for o in map(_outline, session.execute(statement)))
    return sorted(
        (o for o in found.values() if o.id not in known and (o.calendar_id, o.series_id) in named),
        key=lambda o: (_sort_instant(o.start), o.id),
    )


def _sort_instant(value: EventTime) -> datetime:
    """The stored instant of a start: its instant, midnight UTC for a day."""
    if value.day is not None:
        return midnight(value.day)
    assert value.instant is not None
    return value.instant


@lru_cache(maxsize=16)
def _exception_series_statement(shape: FilterShape) -> sa.Select[uuid.UUID, str | None]:
    return (
        sa.select(EventRow.calendar_id, EventRow.recurring_event_id)
        .where(*filter_conditions(shape))
        .distinct()
    )


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
        has_exceptions,
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
        has_exceptions=bool(has_exceptions) or google_id is None,
    )


def exceptions_of_outlines(
    session: Session, masters: Sequence[SeriesOutline]
) -> dict[tuple[uuid.UUID, str], list[StoredEvent]]:
    """`exceptions_of` the `masters` that may have any (`SeriesOutline.has_exceptions`):
    no query at all when none has."""
    return exceptions_of(
        session, [(m.calendar_id, m.series_id) for m in masters if m.has_exceptions]
    )


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
    rows: list[sa.Row[Any]] = []
    for condition in any_of(session, EventRow.id, sorted(set(event_ids))):
        rows += session.execute(select_stored().where(condition, EventRow.deleted_at.is_(None)))
    return {stored.id: stored for stored in _with_attendees(session, rows)}


_SHOWN_COLUMNS: Final = stored_table_columns(without=("base_version",))
_events_table = cast(sa.Table, EventRow.__table__)
_attendees = cast(sa.Table, EventAttendee.__table__)
_ATTENDEE_COLUMNS: Final = tuple(
    _attendees.c[name].label(name)
    for name in ("event_id", "email", "display_name", "response_status", "optional", "is_organizer")
)


def load_shown(session: Session, event_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StoredEvent]:
    """`load_many` for showing the events alone: the same `StoredEvent`s but without
    their `base` (what sync last agreed with Google, never shown), read by plain Core
    statements (no ORM compilation, no ORM instances for attendees): what a page of
    the read model loads (`calsync.events.read_model`)."""
    wanted = sorted(set(event_ids))
    rows: list[sa.Row[Any]] = []
    for condition in any_of(session, _events_table.c.id, wanted):
        rows += session.execute(
            sa.select(*_SHOWN_COLUMNS).where(condition, _events_table.c.deleted_at.is_(None))
        ).all()
    people: dict[uuid.UUID, list[Any]] = {}
    for condition in any_of(session, _attendees.c.event_id, [row.id for row in rows]):
        query = sa.select(*_ATTENDEE_COLUMNS).where(condition).order_by(_attendees.c.email)
        for person in session.execute(query).all():
            people.setdefault(person.event_id, []).append(person)
    return {row.id: stored_event(row, people.get(row.id, ()), with_base=False) for row in rows}


def exceptions_of(
    session: Session, series: Sequence[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], list[StoredEvent]]:
    """The exception rows (cancelled ones included, deleted ones not) of each series,
    keyed by (calendar id, the master's provider id), each series' by (start, id)."""
    found: dict[tuple[uuid.UUID, str], list[StoredEvent]] = {}
    by_calendar: dict[uuid.UUID, list[str]] = {}
    for calendar_id, series_id in series:
        by_calendar.setdefault(calendar_id, []).append(series_id)
    for calendar_id, ids in by_calendar.items():
        for chunk in chunks(ids, 500):
            rows: list[EventRecord] = list(
                session.execute(
                    select_stored()
                    .where(
                        EventRow.calendar_id == calendar_id,
                        EventRow.recurring_event_id.in_(chunk),
                        EventRow.deleted_at.is_(None),
                    )
                    .order_by(EventRow.start_time, EventRow.id)
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
    row = session.execute(
        select_stored().where(
            EventRow.calendar_id == calendar_id,
            EventRow.recurring_event_id == series_id,
            EventRow.original_start_time == original_start,
            EventRow.deleted_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    return _with_attendees(session, [row])[0]


def dropped_exceptions(
    session: Session, *, calendar_id: uuid.UUID, series_id: str
) -> list[StoredEvent]:
    """The exceptions of series `series_id` deleted locally with no write of their own
    (``pending``, no queued outbox row): those a change of their series (a split's cut)
    deleted with it, which Google keeps. Deleted ones with a queued write are not."""
    queued = sa.exists().where(OutboxEntry.event_id == EventRow.id, OutboxEntry.status == "pending")
    rows = session.execute(
        select_stored().where(
            EventRow.calendar_id == calendar_id,
            EventRow.recurring_event_id == series_id,
            EventRow.deleted_at.is_not(None),
            EventRow.sync_state == "pending",
            ~queued,
        )
    ).all()
    return _with_attendees(session, rows)


def find_by_provider_id(
    session: Session, *, calendar_id: uuid.UUID, provider_id: str
) -> StoredEvent | None:
    """The calendar's event with Google id `provider_id` (deleted or not), or `None`."""
    row = session.execute(
        select_stored().where(
            EventRow.calendar_id == calendar_id, EventRow.google_event_id == provider_id
        )
    ).first()
    if row is None:
        return None
    return _with_attendees(session, [row])[0]


def _with_attendees(session: Session, rows: Sequence[EventRecord]) -> list[StoredEvent]:
    attendees = attendees_by_event(session, [row.id for row in rows]) if rows else {}
    return [stored_event(row, attendees.get(row.id, ())) for row in rows]


_event_table = cast(sa.Table, EventRow.__table__)
_attendee_table = cast(sa.Table, EventAttendee.__table__)
#: `read_stored`'s two statements, built once (decision IR5): the event's stored columns
#: and its attendee rows in `attendees_by_event`'s order, parameter ``stored_id``.
_READ_STORED: Final = sa.select(*stored_table_columns()).where(
    _event_table.c.id == sa.bindparam("stored_id", type_=_event_table.c.id.type)
)
_READ_ATTENDEES: Final = (
    sa.select(_attendee_table)
    .where(_attendee_table.c.event_id == sa.bindparam("stored_id", type_=_event_table.c.id.type))
    .order_by(_attendee_table.c.email)
)


def read_stored(session: Session, event_id: uuid.UUID) -> StoredEvent | None:
    """`calsync.store.events.load_stored` as plain Core rows (no ORM instance enters the
    session): the event with local id `event_id`, deleted or not, or `None`. For a
    reader that changes nothing through the ORM (the push, decision IR5)."""
    values = {"stored_id": event_id}
    row = session.execute(_READ_STORED, values).one_or_none()
    if row is None:
        return None
    # rows whose fields carry `EventAttendee`'s names: all `to_event` reads of them
    attendees: Any = session.execute(_READ_ATTENDEES, values).all()
    return stored_event(row, attendees)
