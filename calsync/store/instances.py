"""SQL of the instance read model (migration 0015, decisions V1-V6).

`calsync.events.read_model` decides what the rows hold; this module writes them and
keeps their bookkeeping (a page reads them with `calsync.store.instance_pages`): the
listed items (``event_instances``), the series a bound cut short
(``instance_incomplete``), the owners a write left to re-expand (``instance_dirty``,
filled by triggers on ``events``) and the horizon (``instance_horizon``).

Keys: an item is (``sort_at``, ``api_id``), compared as the API's cursors compare them
(``api_id`` in code-point order: ``COLLATE "C"`` on PostgreSQL, SQLite's ``BINARY``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from calsync.store.chunks import chunks, ordered_ids
from calsync.store.events import WRITTEN_KEY, any_of
from calsync.store.tables import Event as EventRow
from calsync.store.tables import (
    event_documents,
    event_instances,
    instance_dirty,
    instance_horizon,
    instance_incomplete,
)

__all__ = [
    "LONG_SPAN",
    "WRITTEN_KEY",
    "Dirty",
    "add_new_singles",
    "api_ids_of",
    "blocked",
    "delete_rows",
    "forget_all",
    "forget_held",
    "held_near",
    "horizon",
    "insert_documents",
    "insert_rows",
    "insert_singles",
    "live_masters",
    "live_singles",
    "live_singles_near",
    "lock_owners",
    "mark_filled",
    "masters_named",
    "owners_of_users",
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
    *,
    held: Sequence[tuple[uuid.UUID, uuid.UUID]] = (),
    near: tuple[datetime, datetime] | None = None,
) -> None:
    """Add `rows` (series items), the (owner, user) pairs a bound cut short, and the
    pairs `held` only `near` (decision HC2)."""
    _insert(session, event_instances, rows)
    marks: list[dict[str, Any]] = [
        {"owner_id": o, "user_id": u, "held_from": None, "held_to": None} for o, u in incomplete
    ]
    if near is not None:
        cut = {owner for owner, _ in incomplete}
        marks += [
            {"owner_id": o, "user_id": u, "held_from": near[0], "held_to": near[1]}
            for o, u in held
            if o not in cut
        ]
    _insert(session, instance_incomplete, marks)  # thousands after a full sync: COPY


def held_near(
    session: Session, owner_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[datetime, datetime]]:
    """The owners among these held only near today, with the range they are held for."""
    t = instance_incomplete
    found: dict[uuid.UUID, tuple[datetime, datetime]] = {}
    for condition in any_of(session, t.c.owner_id, sorted(owner_ids)):
        query = sa.select(t.c.owner_id, t.c.held_from, t.c.held_to).where(
            condition, t.c.held_from.is_not(None)
        )
        found.update((owner, (first, end)) for owner, first, end in session.execute(query))
    return found


def forget_held(session: Session, owner_ids: Sequence[uuid.UUID]) -> None:
    """These owners are no longer held near: their items cover the horizon."""
    t = instance_incomplete
    for condition in any_of(session, t.c.owner_id, sorted(owner_ids)):
        session.execute(sa.delete(t).where(condition, t.c.held_from.is_not(None)))


def api_ids_of(session: Session, owner_ids: Sequence[uuid.UUID]) -> set[tuple[uuid.UUID, str]]:
    """(owner, API id) of the items these owners have."""
    t = event_instances
    found: set[tuple[uuid.UUID, str]] = set()
    for condition in any_of(session, t.c.owner_id, sorted(owner_ids)):
        found.update(
            (owner, api_id)
            for owner, api_id in session.execute(
                sa.select(t.c.owner_id, t.c.api_id).where(condition)
            )
        )
    return found


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
    for query in _single_items(session, owner_ids):
        session.execute(query)


def add_new_singles(
    session: Session,
    owner_ids: Sequence[uuid.UUID],
    documents: Sequence[Mapping[str, Any]],
    *,
    records: Sequence[int],
) -> None:
    """Store the items and `documents` of new live singles that have none yet
    (`insert_singles`, `insert_documents`) and remove the `records` (``instance_dirty``
    ids) they answer. On PostgreSQL, for one single (a create's), one statement (decision
    HV6: it was three round trips, the document's a ``COPY``); else the three."""
    if session.get_bind().dialect.name != "postgresql" or len(owner_ids) != 1:
        insert_singles(session, owner_ids)
        insert_documents(session, documents)
        _delete_records(session, records)
        return
    # Data-modifying CTEs all run, on one snapshot, each on rows of its own. One row of
    # VALUES: SQLAlchemy caches the compiled statement (not a multi-row VALUES).
    if records and documents:  # a create's: the statement built once
        (owner,) = owner_ids
        params = {**documents[0], "new_single": owner, "new_records": list(records)}
        session.execute(_NEW_SINGLE_PG, params)
        return
    ctes = [query.cte(f"item{n}") for n, query in enumerate(_single_items(session, owner_ids))]
    if records:
        ctes.append(
            sa.delete(instance_dirty).where(*any_of(session, instance_dirty.c.id, records)).cte()
        )
    if documents:
        (document,) = documents
        statement: sa.Executable = sa.insert(event_documents).values(**document).add_cte(*ctes)
    else:
        statement = sa.select(sa.literal(1)).add_cte(*ctes)
    session.execute(statement)


def _delete_records(session: Session, records: Sequence[int]) -> None:
    for condition in any_of(session, instance_dirty.c.id, sorted(records)):
        session.execute(sa.delete(instance_dirty).where(condition))


def _single_items(session: Session, owner_ids: Sequence[uuid.UUID]) -> list[sa.Insert]:
    """The statements of `insert_singles` (one per batch of owners)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    return [
        _single_item(condition, postgres=postgres)
        for condition in any_of(session, EventRow.id, list(owner_ids))
    ]


def _single_item(condition: sa.ColumnElement[bool], *, postgres: bool) -> sa.Insert:
    """The insert of the items of the live singles that `condition` picks."""
    if postgres:
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
    return sa.insert(event_instances).from_select(
        list(columns), sa.select(*columns.values()).where(condition, *_SINGLE)
    )


#: `add_new_singles`' one statement on PostgreSQL, built once (decision IF4): the
#: single's item and the records' removal as CTEs of its document's insert, whose values
#: are given as parameters with ``new_single`` (the owner) and ``new_records`` (the ids).
_NEW_SINGLE_PG: Final = sa.insert(event_documents).add_cte(
    _single_item(EventRow.id == sa.bindparam("new_single"), postgres=True).cte("item0"),
    sa.delete(instance_dirty)
    .where(
        instance_dirty.c.id
        == sa.any_(sa.bindparam("new_records", type_=postgresql.ARRAY(instance_dirty.c.id.type)))
    )
    .cte("records"),
)


def live_singles(session: Session, owner_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """The live singles among these owners (those `insert_singles` lists)."""
    found: list[uuid.UUID] = []
    for condition in any_of(session, EventRow.id, list(owner_ids)):
        found += session.scalars(sa.select(EventRow.id).where(condition, *_SINGLE))
    return found


def live_singles_near(
    session: Session, owner_ids: Sequence[uuid.UUID], near: tuple[datetime, datetime] | None
) -> tuple[list[uuid.UUID], list[tuple[uuid.UUID, uuid.UUID]]]:
    """The live singles among these owners that meet `near` (all without it), and
    (id, user id) of the others."""
    if near is None:
        return live_singles(session, owner_ids), []
    met: list[uuid.UUID] = []
    others: list[tuple[uuid.UUID, uuid.UUID]] = []
    columns = (EventRow.id, EventRow.user_id, EventRow.start_time, EventRow.end_time)
    for condition in any_of(session, EventRow.id, list(owner_ids)):
        for event_id, user_id, start, end in session.execute(
            sa.select(*columns).where(condition, *_SINGLE)
        ):
            if start < near[1] and end >= near[0]:
                met.append(event_id)
            else:
                others.append((event_id, user_id))
    return met, others


def replace_documents(
    session: Session, event_ids: Sequence[uuid.UUID], documents: Sequence[Mapping[str, Any]]
) -> None:
    """Forget the documents of `event_ids` and store `documents` (``event_documents``
    rows: every event id among them is one of `event_ids`)."""
    for condition in any_of(session, event_documents.c.event_id, ordered_ids(event_ids)):
        session.execute(sa.delete(event_documents).where(condition))
    _insert(session, event_documents, documents)


def insert_documents(session: Session, documents: Sequence[Mapping[str, Any]]) -> None:
    """Store `documents` (``event_documents`` rows) of events that have none: what
    `replace_documents` does without its ``DELETE`` (a row this transaction has just
    inserted has no document yet)."""
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
    """Whether the user's items may not be read from the model for every window: a
    change not yet re-expanded (committed by a writer that bypassed the session hook), a
    series whose expansion a bound cut short, or an owner held near today (decision
    HC2; windows inside its range are still read from the model)."""
    dirty = sa.select(instance_dirty.c.id).where(instance_dirty.c.user_id == user_id).limit(1)
    cut = (
        sa.select(instance_incomplete.c.owner_id)
        .where(instance_incomplete.c.user_id == user_id)
        .limit(1)
    )
    found = session.execute(sa.select(dirty.exists() | cut.exists())).scalar()
    return bool(found)
