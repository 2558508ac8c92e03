"""SQL of the instance read model (migration 0015, decisions V1-V6).

`calsync.events.read_model` decides what the rows hold; this module reads and writes
them: the listed items (``event_instances``), the series a bound cut short
(``instance_incomplete``), the owners a write left to re-expand (``instance_dirty``,
filled by triggers on ``events``) and the horizon (``instance_horizon``).

Keys: an item is (``sort_at``, ``api_id``), compared as the API's cursors compare them
(``api_id`` in code-point order: ``COLLATE "C"`` on PostgreSQL, SQLite's ``BINARY``).
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.chunks import chunks
from calsync.store.events import WRITTEN_KEY, any_of
from calsync.store.tables import Event as EventRow
from calsync.store.tables import (
    event_documents,
    event_instances,
    instance_dirty,
    instance_horizon,
    instance_incomplete,
)
from calsync.store.types import UTCDateTime

__all__ = [
    "LONG_SPAN",
    "WRITTEN_KEY",
    "Dirty",
    "ListedRow",
    "Window",
    "blocked",
    "delete_rows",
    "forget_all",
    "horizon",
    "insert_rows",
    "insert_singles",
    "listed_rows",
    "live_masters",
    "live_singles",
    "lock_owners",
    "mark_filled",
    "masters_named",
    "owners_of_users",
    "read_snapshot",
    "readable_horizon",
    "replace_documents",
    "set_horizon",
    "stop_writers",
    "take_all_dirty",
    "take_dirty",
]

LONG_SPAN: Final = timedelta(days=8)
"""Items that last longer are flagged ``long_span`` and found by a second scan: the
main scan starts at the window's start less this, so that it never reads the rows of
the user's whole past."""


@dataclass(frozen=True, slots=True)
class Dirty:
    """A change a trigger recorded: the row's user, id, calendar and series reference."""

    user_id: uuid.UUID
    event_id: uuid.UUID
    calendar_id: uuid.UUID
    series_ref: str | None


@dataclass(frozen=True, slots=True)
class Window:
    """What a page selects: timed items overlapping ``[start, end)``, all-day items whose
    dates overlap ``[first_day, end_day)`` (`calsync.domain.windows`)."""

    start: datetime
    end: datetime
    first_day: date
    end_day: date


class ListedRow(NamedTuple):
    """One ``event_instances`` row as a page reads it (a named tuple: a page makes 200,
    and a frozen dataclass's constructor cost more than the scan, decision A1)."""

    sort_at: datetime
    api_id: str
    owner_id: uuid.UUID
    in_series: bool
    original_at: datetime | None
    original_zone: str | None
    exception_id: uuid.UUID | None
    bookkeeping_id: uuid.UUID | None
    version: int
    end_at: datetime
    #: The owner's ``event_documents`` row: its JSON (a single's; a master's generated
    #: instance's), the zone of its end and its Google series id (masters); `None`
    #: when it has none (a master without rules).
    owner_body: bytes | None = None
    end_zone: str | None = None
    series_id: str | None = None
    #: The JSON of the exception shown (`None` without one).
    exception_body: bytes | None = None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def take_dirty(session: Session) -> list[Dirty]:
    """The changes this transaction's triggers recorded, removed from the table.

    On PostgreSQL only this transaction's own (``xact``): another's are its to take. On
    SQLite a writing transaction is the only writer, so it takes all there are."""
    t = instance_dirty
    columns = (t.c.user_id, t.c.event_id, t.c.calendar_id, t.c.series_ref)
    if session.get_bind().dialect.name == "postgresql":
        mine = t.c.xact == sa.func.txid_current_if_assigned()
        rows = session.execute(sa.delete(t).where(mine).returning(*columns)).all()
    else:
        rows = session.execute(sa.select(*columns)).all()
        if rows:
            session.execute(sa.delete(t))
    return [Dirty(*row) for row in rows]


def take_all_dirty(session: Session) -> list[Dirty]:
    """Every recorded change (committed, or this transaction's), removed from the table."""
    t = instance_dirty
    columns = (t.c.user_id, t.c.event_id, t.c.calendar_id, t.c.series_ref)
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(sa.delete(t).returning(*columns)).all()
    else:  # the one writer
        rows = session.execute(sa.select(*columns)).all()
        if rows:
            session.execute(sa.delete(t))
    return [Dirty(*row) for row in rows]


def forget_all(session: Session) -> None:
    """Remove the horizon and every row of the model (it is switched off)."""
    for table in (instance_horizon, instance_dirty, instance_incomplete, event_instances):
        session.execute(sa.delete(table))
    session.execute(sa.delete(event_documents))


def masters_named(
    session: Session, refs: Iterable[tuple[uuid.UUID, str]]
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(user id, id) of the series masters that exceptions naming (calendar, series id)
    belong to: by Google id, or by local id for a master not yet on Google."""
    by_calendar: dict[uuid.UUID, set[str]] = {}
    for calendar_id, ref in refs:
        by_calendar.setdefault(calendar_id, set()).add(ref)
    found: list[tuple[uuid.UUID, uuid.UUID]] = []
    for calendar_id, names in sorted(by_calendar.items()):
        google_ids = sorted(names)
        local_ids = []
        for name in google_ids:
            with contextlib.suppress(ValueError):  # a Google id, not a local one
                local_ids.append(uuid.UUID(name))
        named = any_of(session, EventRow.google_event_id, google_ids)
        named += any_of(session, EventRow.id, local_ids)
        for condition in named:
            rows = session.execute(
                sa.select(EventRow.user_id, EventRow.id).where(
                    EventRow.calendar_id == calendar_id,
                    EventRow.is_recurring.is_(True),
                    condition,
                )
            )
            found += [(user_id, event_id) for user_id, event_id in rows]
    return found


def lock_owners(session: Session, owner_ids: Sequence[uuid.UUID]) -> None:
    """Serialise re-expansions of the same owners (PostgreSQL: their ``events`` rows'
    locks, taken in id order), so that two transactions never replace one owner's rows
    at once. SQLite has one writer."""
    if session.get_bind().dialect.name != "postgresql" or not owner_ids:
        return
    for condition in any_of(session, EventRow.id, sorted(owner_ids)):
        session.execute(
            sa.select(EventRow.id).where(condition).order_by(EventRow.id).with_for_update()
        )


def delete_rows(session: Session, owner_ids: Sequence[uuid.UUID]) -> None:
    """Forget the items of these owners, and whether a bound cut them short."""
    for condition in any_of(session, event_instances.c.owner_id, list(owner_ids)):
        session.execute(sa.delete(event_instances).where(condition))
    for condition in any_of(session, instance_incomplete.c.owner_id, list(owner_ids)):
        session.execute(sa.delete(instance_incomplete).where(condition))


def insert_rows(
    session: Session,
    rows: Sequence[Mapping[str, Any]],
    incomplete: Sequence[tuple[uuid.UUID, uuid.UUID]],
) -> None:
    """Add `rows` (series items) and the (owner, user) pairs a bound cut short."""
    _insert(session, event_instances, rows)
    if incomplete:
        session.execute(
            sa.insert(instance_incomplete),
            [{"owner_id": owner, "user_id": user} for owner, user in incomplete],
        )


#: What the singles' listing selects (`calsync.store.event_queries`, ``Kind.SINGLE``).
_SINGLE = (
    EventRow.is_recurring.is_(False),
    EventRow.recurring_event_id.is_(None),
    EventRow.deleted_at.is_(None),
    EventRow.status != "cancelled",
)
#: What the series' listing expands (``Kind.MASTER``).
_MASTER = (
    EventRow.is_recurring.is_(True),
    EventRow.deleted_at.is_(None),
    EventRow.status != "cancelled",
)
_SQLITE_UUID_TEXT = (
    "substr(events.id, 1, 8) || '-' || substr(events.id, 9, 4) || '-' || "
    "substr(events.id, 13, 4) || '-' || substr(events.id, 17, 4) || '-' || "
    "substr(events.id, 21, 12)"
)


def insert_singles(session: Session, owner_ids: Sequence[uuid.UUID]) -> None:
    """Add the item of each live single among these owners, computed in the database
    from its columns (one statement per batch: a full sync stores thousands)."""
    if session.get_bind().dialect.name == "postgresql":
        api_id: sa.ColumnElement[Any] = sa.cast(EventRow.id, sa.Text())
        long_span: sa.ColumnElement[Any] = sa.literal_column(
            "events.end_time - events.start_time > interval '8 days'", sa.Boolean()
        )
    else:
        api_id = sa.func.lower(sa.literal_column(_SQLITE_UUID_TEXT, sa.String()))
        long_span = sa.literal_column(
            "julianday(events.end_time) - julianday(events.start_time) > 8", sa.Boolean()
        )
    assert timedelta(days=8) == LONG_SPAN  # as both spell it
    columns = {
        "owner_id": EventRow.id,
        "api_id": api_id,
        "user_id": EventRow.user_id,
        "calendar_id": EventRow.calendar_id,
        "in_series": sa.false(),
        "sort_at": EventRow.start_time,
        "end_at": EventRow.end_time,
        "all_day": EventRow.all_day,
        "long_span": long_span,
        "category": EventRow.category,
        "status": EventRow.status,
        "version": EventRow.version,
    }
    for condition in any_of(session, EventRow.id, list(owner_ids)):
        query = sa.select(*columns.values()).where(condition, *_SINGLE)
        session.execute(sa.insert(event_instances).from_select(list(columns), query))


def live_singles(session: Session, owner_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """The live singles among these owners (those `insert_singles` lists)."""
    found: list[uuid.UUID] = []
    for condition in any_of(session, EventRow.id, list(owner_ids)):
        found += session.scalars(sa.select(EventRow.id).where(condition, *_SINGLE))
    return found


def replace_documents(
    session: Session, event_ids: Sequence[uuid.UUID], documents: Sequence[Mapping[str, Any]]
) -> None:
    """Forget the documents of `event_ids` and store `documents` (``event_documents``
    rows: every event id among them is one of `event_ids`)."""
    for condition in any_of(session, event_documents.c.event_id, sorted(set(event_ids))):
        session.execute(sa.delete(event_documents).where(condition))
    _insert(session, event_documents, documents)


def _insert(session: Session, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (all with the same keys) into `table`: by ``COPY`` on PostgreSQL (an
    ``executemany`` sends them one statement each: the largest cost of a full sync's
    upkeep, tens of thousands of series items), an ``executemany`` elsewhere."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        for chunk in chunks(list(rows), 2000):
            session.execute(sa.insert(table), [dict(r) for r in chunk])
        return
    names = list(rows[0])
    connection = session.connection().connection.driver_connection
    assert connection is not None
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"  # names: our own keys
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[name] for name in names])


def live_masters(session: Session, owner_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """The live series masters among these owners."""
    found: list[uuid.UUID] = []
    for condition in any_of(session, EventRow.id, list(owner_ids)):
        found += session.scalars(sa.select(EventRow.id).where(condition, *_MASTER))
    return found


def read_snapshot(session: Session) -> None:
    """Make the rest of `session`'s reads one snapshot, so that the rows a page names
    and the rows it then loads are of the same moment (a write committed in between is
    seen by neither): PostgreSQL's REPEATABLE READ; on SQLite an explicit ``BEGIN``
    (pysqlite leaves SELECTs in autocommit, each its own snapshot). Only before the
    session's first statement; later it changes nothing."""
    if session.in_transaction():
        return
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        return
    connection = session.connection()
    raw = connection.connection.driver_connection
    if raw is not None and not getattr(raw, "in_transaction", True):
        connection.exec_driver_sql("BEGIN")


def horizon(session: Session, *, filled: bool = True) -> tuple[datetime, datetime] | None:
    """The instants ``[first, end)`` series instances are held for (midnights UTC), or
    `None` before the model was first filled. With ``filled=False`` also a horizon whose
    first fill is under way (the upkeep keeps the model from its creation on, V8)."""
    query = sa.select(instance_horizon.c.first_at, instance_horizon.c.end_at).where(
        instance_horizon.c.id == 1
    )
    if filled:
        query = query.where(instance_horizon.c.filled.is_(True))
    row = session.execute(query).first()
    return (row[0], row[1]) if row is not None else None


def set_horizon(session: Session, first: datetime, end: datetime, *, filled: bool = True) -> None:
    """Record the horizon: ``filled`` when the caller has expanded every owner over it
    (the model is read), else the start of a first fill (the triggers record from the
    commit on, the model is not read yet)."""
    session.execute(sa.delete(instance_horizon))
    session.execute(
        sa.insert(instance_horizon).values(id=1, first_at=first, end_at=end, filled=filled)
    )


def mark_filled(session: Session) -> None:
    """Let the model be read: the caller has expanded every owner over the horizon."""
    session.execute(sa.update(instance_horizon).values(filled=True))


def stop_writers(session: Session) -> None:
    """Wait for every transaction writing ``events`` to end, and hold new ones off until
    this one commits (PostgreSQL: ``SHARE`` lock on ``events``), so that a write either
    committed before, or its triggers see what this transaction writes. SQLite has one
    writer at a time already."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("LOCK TABLE events IN SHARE MODE"))


def owners_of_users(
    session: Session, *, masters_only: bool = False
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(user id, id) of every live single and series master (or master alone): the
    owners of items."""
    query = sa.select(EventRow.user_id, EventRow.id).where(
        EventRow.deleted_at.is_(None),
        sa.or_(EventRow.recurring_event_id.is_(None), EventRow.is_recurring.is_(True)),
    )
    if masters_only:
        query = query.where(EventRow.is_recurring.is_(True))
    rows = session.execute(query.order_by(EventRow.id))
    return [(user_id, event_id) for user_id, event_id in rows]


def blocked(session: Session, user_id: uuid.UUID) -> bool:
    """Whether the user's items may not be read from the model: a change not yet
    re-expanded (committed by a writer that bypassed the session hook), or a series whose
    expansion a bound cut short."""
    dirty = sa.select(instance_dirty.c.id).where(instance_dirty.c.user_id == user_id).limit(1)
    cut = (
        sa.select(instance_incomplete.c.owner_id)
        .where(instance_incomplete.c.user_id == user_id)
        .limit(1)
    )
    found = session.execute(sa.select(dirty.exists() | cut.exists())).scalar()
    return bool(found)


def readable_horizon(session: Session, user_id: uuid.UUID) -> tuple[datetime, datetime] | None:
    """`horizon` (filled) when the user's items may be read from the model (not
    `blocked`), else `None`: one statement, as a page asks it."""
    row = session.connection().execute(_readable_horizon(), {"user_id": user_id}).first()
    return (row[0], row[1]) if row is not None else None


@functools.cache
def _readable_horizon() -> sa.Select[Any]:
    """The statement of `readable_horizon`, built once (as `_listing`)."""
    user_id = sa.bindparam("user_id", type_=sa.Uuid())
    dirty = sa.select(instance_dirty.c.id).where(instance_dirty.c.user_id == user_id).limit(1)
    cut = (
        sa.select(instance_incomplete.c.owner_id)
        .where(instance_incomplete.c.user_id == user_id)
        .limit(1)
    )
    h = instance_horizon
    return sa.select(h.c.first_at, h.c.end_at).where(
        h.c.id == 1, h.c.filled.is_(True), ~dirty.exists(), ~cut.exists()
    )


_ITEM = event_instances.alias("i")
"""``event_instances`` as the listing names it: short names keep its text under the
length psycopg caches the parsing of (4 KB)."""

_LISTED = (
    _ITEM.c.sort_at,
    _ITEM.c.api_id,
    _ITEM.c.owner_id,
    _ITEM.c.in_series,
    _ITEM.c.original_at,
    _ITEM.c.original_zone,
    _ITEM.c.exception_id,
    _ITEM.c.bookkeeping_id,
    _ITEM.c.version,
    _ITEM.c.end_at,
)


def listed_rows(
    session: Session,
    user_id: uuid.UUID,
    window: Window,
    *,
    limit: int,
    after: tuple[datetime, str] | None,
    category: str | None,
    calendar_id: uuid.UUID | None,
    in_series: bool | None,
) -> list[ListedRow]:
    """The first `limit` items of the user in `window` after the key `after`, by
    (``sort_at``, ``api_id``): one statement, a range scan of the listing index for the
    items that start from `LONG_SPAN` before the window, and one of the few long items
    (the partial index ``ix_event_instances_long``)."""
    day_start, day_end = _midnight(window.first_day), _midnight(window.end_day)
    values: dict[str, Any] = {
        "user_id": user_id,
        "start": window.start,
        "end": window.end,
        "day_start": day_start,
        "day_end": day_end,
        "until": max(window.end, day_end),
        "low": min(window.start, day_start) - LONG_SPAN,
        "limit": limit,
    }
    if after is not None:
        values |= {"after_at": after[0], "after_id": after[1]}
    if category is not None:
        values["category"] = category
    if calendar_id is not None:
        values["calendar_id"] = calendar_id
    statement = _listing(
        after=after is not None,
        category=category is not None,
        calendar=calendar_id is not None,
        in_series=in_series,
    )
    found = list(map(ListedRow._make, session.connection().execute(statement, values).all()))
    found.sort(key=_key)
    return found[:limit]


def _key(row: ListedRow) -> tuple[datetime, str]:
    return row.sort_at, row.api_id


@functools.cache
def _listing(
    *, after: bool, category: bool, calendar: bool, in_series: bool | None
) -> sa.CompoundSelect[Any]:
    """The statement of `listed_rows` for one shape of query (which filters it has), its
    values bound by name: built once per shape, so that a page neither builds nor
    compiles it (SQLAlchemy's cache key of a statement built anew costs more than the
    scan). The main scan and the long items' scan are the two halves of one
    ``UNION ALL``, each in list order and limited; the caller merges them."""
    t = _ITEM
    timed = sa.and_(
        t.c.all_day.is_(False),
        t.c.sort_at < sa.bindparam("end"),
        sa.or_(
            sa.and_(t.c.end_at > t.c.sort_at, t.c.end_at > sa.bindparam("start")),
            sa.and_(t.c.end_at <= t.c.sort_at, t.c.sort_at >= sa.bindparam("start")),
        ),
    )
    all_day = sa.and_(
        t.c.all_day.is_(True),
        t.c.sort_at < sa.bindparam("day_end"),
        t.c.end_at > sa.bindparam("day_start"),
    )
    conditions: list[sa.ColumnElement[bool]] = [
        t.c.user_id == sa.bindparam("user_id"),
        t.c.sort_at < sa.bindparam("until"),
        sa.or_(timed, all_day),
    ]
    if after:
        at = sa.bindparam("after_at", type_=UTCDateTime())
        api_id = sa.bindparam("after_id", type_=sa.String())
        conditions.append(sa.or_(t.c.sort_at > at, sa.and_(t.c.sort_at == at, t.c.api_id > api_id)))
        # the same, as a range the index scan can start from (the OR above it cannot):
        # else each page reads every item of the window before its cursor
        conditions.append(t.c.sort_at >= at)
    if category:
        conditions.append(t.c.category == sa.bindparam("category"))
    if calendar:
        conditions.append(t.c.calendar_id == sa.bindparam("calendar_id"))
    if in_series is not None:
        conditions.append(t.c.in_series.is_(in_series))
    low = sa.bindparam("low", type_=UTCDateTime())
    order, limit = (t.c.sort_at, t.c.api_id), sa.bindparam("limit", type_=sa.Integer())
    short = sa.select(*_LISTED).where(*conditions, t.c.sort_at >= low)
    long = sa.select(*_LISTED).where(*conditions, _LONG, t.c.sort_at < low)
    halves = [
        sa.select(_with_documents(half).order_by(*order).limit(limit).subquery())
        for half in (short, long)
    ]
    return sa.union_all(*halves)


_LONG: Final = sa.literal_column("i.long_span", sa.Boolean())
"""The predicate of the partial index ``ix_event_instances_long`` as the index spells it:
neither database matches ``long_span IS true`` (nor SQLite ``long_span = 1``) to it, and
the long items' scan then read every item of the user's past (5 ms a page on
PostgreSQL, decision A1)."""

_OWNER_DOCUMENT = event_documents.alias("o")
_EXCEPTION_DOCUMENT = event_documents.alias("x")


def _with_documents(query: sa.Select[Any]) -> sa.Select[Any]:
    """`query` of ``event_instances`` with the documents of each item's owner and
    exception (`ListedRow`'s last fields)."""
    t, owner, shown = _ITEM, _OWNER_DOCUMENT, _EXCEPTION_DOCUMENT
    return (
        query.add_columns(owner.c.body, owner.c.end_zone, owner.c.series_id, shown.c.body)
        .outerjoin(owner, owner.c.event_id == t.c.owner_id)
        .outerjoin(shown, shown.c.event_id == t.c.exception_id)
    )
