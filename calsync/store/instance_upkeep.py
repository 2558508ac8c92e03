"""SQL of the read model's upkeep after the write (decisions Z1-Z4).

The triggers on ``events`` and ``event_attendees`` (migrations 0015, 0016) record every
change a listed item depends on in ``instance_dirty``; a user with a record there is
listed by expansion (`calsync.store.instances.readable_horizon`). This module finds
those records (`recorded_here`, `pending`), claims them by id (`claim`) and removes
exactly the ones claimed (`clear`): a record written after the claim - by a writer that
changed the owner again meanwhile - stays, and keeps its user's lists expanded until it
is claimed in turn. `lock_free_owners` locks the owners' ``events`` rows without
waiting, so an upkeep never waits for a writer (and never deadlocks with one).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from calsync.store.chunks import ordered_ids
from calsync.store.events import any_of
from calsync.store.tables import Event as EventRow
from calsync.store.tables import event_documents, instance_dirty, instance_incomplete

__all__ = [
    "Recorded",
    "begin_writing",
    "claim",
    "claim_related",
    "clear",
    "held_owners",
    "lock_free_owners",
    "lock_owners_found",
    "pending",
    "record_owners",
    "recorded_here",
    "recorded_here_along",
    "records_name_their_writer",
    "replace_document",
]


@dataclass(frozen=True, slots=True)
class Recorded:
    """One ``instance_dirty`` record: its id, and the row's user, id, calendar and series
    reference (the master an exception names)."""

    id: int
    user_id: uuid.UUID
    event_id: uuid.UUID
    calendar_id: uuid.UUID
    series_ref: str | None


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def records_name_their_writer(session: Session) -> bool:
    """Whether `claim`'s ``mine`` takes only this transaction's records: on PostgreSQL;
    SQLite's one writer takes every record as its own, an earlier transaction's left
    for a run too."""
    return _postgres(session)


def _mine(session: Session) -> list[sa.ColumnElement[bool]]:
    """The records of this transaction: on PostgreSQL by its id; SQLite has one writer,
    whose transaction sees its own records and the committed ones of others, which are
    as much its to take (nothing else is writing)."""
    if _postgres(session):
        return [instance_dirty.c.xact == sa.func.txid_current_if_assigned()]
    return []


def recorded_here(session: Session, *, up_to: int) -> int:
    """How many changes this transaction recorded, counted up to `up_to` (a bound: the
    caller only asks whether there are few). 0 while the model is off (no horizon, so
    the triggers record nothing; decision V8). One indexed read, of a statement built
    once per database kind (it runs before the commit of every pull that wrote)."""
    statement = _RECORDED_HERE_PG if _postgres(session) else _RECORDED_HERE
    return int(session.execute(statement, {"up_to": up_to}).scalar_one())


def _recorded_here(*mine: sa.ColumnElement[bool]) -> sa.Select[int]:
    up_to = sa.bindparam("up_to", type_=sa.Integer)
    found = sa.select(instance_dirty.c.id).where(*mine).limit(up_to).subquery()
    return sa.select(sa.func.count()).select_from(found)


#: `recorded_here`'s statements: PostgreSQL's reads this transaction's records (`_mine`);
#: SQLite's one writer takes every record as its own.
_RECORDED_HERE_PG: Final = _recorded_here(
    instance_dirty.c.xact == sa.func.txid_current_if_assigned()
)


def recorded_here_along(write: sa.Insert) -> sa.Select[int]:
    """PostgreSQL's `recorded_here` statement that also runs `write` (an ``INSERT`` of a
    row the read model's triggers cannot record), as a data-modifying ``WITH`` of the
    count: one statement where they were two (decision IO2). Its parameters are
    ``up_to`` and `write`'s. The count sees the records of this transaction's earlier
    statements; `write` adds none. Built once by its caller."""
    return _RECORDED_HERE_PG.add_cte(write.cte("written_along"))


_RECORDED_HERE: Final = _recorded_here()


def pending(session: Session) -> bool:
    """Whether any recorded change is left (committed, or this transaction's), or any
    owner is held only near today (decision HC2): work for the upkeep's runs."""
    held = sa.select(instance_incomplete.c.owner_id).where(
        instance_incomplete.c.held_from.is_not(None)
    )
    query = sa.select(sa.exists(sa.select(instance_dirty.c.id)) | sa.exists(held))
    return bool(session.execute(query).scalar())


def held_owners(session: Session, *, after: uuid.UUID | None, limit: int) -> list[uuid.UUID]:
    """Up to `limit` owners held only near today (decision HC2), in id order, after
    `after`: the work list of the upkeep's second step (`upkeep.catch_up`)."""
    t = instance_incomplete
    query = sa.select(t.c.owner_id).where(t.c.held_from.is_not(None))
    if after is not None:
        query = query.where(t.c.owner_id > after)
    return list(session.scalars(query.order_by(t.c.owner_id).limit(limit)))


def begin_writing(session: Session) -> None:
    """Begin `session`'s transaction as a writer, before its first read: on SQLite
    ``BEGIN IMMEDIATE``, so that the upkeep's reads and writes are one serialised
    transaction (a deferred one that read first is refused its write when another
    writer committed meanwhile). PostgreSQL needs nothing (row locks serialise)."""
    if _postgres(session):
        return
    connection = session.connection()
    raw = connection.connection.driver_connection
    if raw is not None and not getattr(raw, "in_transaction", True):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


#: `claim` of this transaction's records on PostgreSQL (every API write's), built once
#: (decision IF4), with the parameters ``after`` and ``limit``.
_CLAIM_MINE_PG: Final = (
    sa.select(
        instance_dirty.c.id,
        instance_dirty.c.user_id,
        instance_dirty.c.event_id,
        instance_dirty.c.calendar_id,
        instance_dirty.c.series_ref,
    )
    .where(
        instance_dirty.c.id > sa.bindparam("after"),
        instance_dirty.c.xact == sa.func.txid_current_if_assigned(),
    )
    .order_by(instance_dirty.c.id)
    .limit(sa.bindparam("limit", type_=sa.Integer()))
    .with_for_update(skip_locked=True)
)


def claim(session: Session, *, limit: int, after: int = 0, mine: bool = False) -> list[Recorded]:
    """Up to `limit` records with ids above `after`, oldest first (only this
    transaction's with `mine`). On PostgreSQL they are locked, and records another
    upkeep holds are skipped: two upkeeps never claim the same record."""
    if mine and _postgres(session):
        rows = session.execute(_CLAIM_MINE_PG, {"after": after, "limit": limit})
        return [Recorded(*row) for row in rows]
    t = instance_dirty
    query = (
        sa.select(t.c.id, t.c.user_id, t.c.event_id, t.c.calendar_id, t.c.series_ref)
        .where(t.c.id > after, *(_mine(session) if mine else []))
        .order_by(t.c.id)
        .limit(limit)
    )
    if _postgres(session):
        query = query.with_for_update(skip_locked=True)
    return [Recorded(*row) for row in session.execute(query)]


def claim_related(
    session: Session,
    *,
    users: Sequence[uuid.UUID],
    owners: Sequence[uuid.UUID],
    besides: Sequence[int],
) -> list[Recorded]:
    """The other records of these users (not `besides`) that name one of `owners`: the
    row itself, or, for an exception, the series master it names by Google or local id
    (claimed as `claim` claims). A run re-expanding an owner takes them along, so that
    an owner whose changes were recorded far apart (a full sync lists exceptions after
    their masters) is re-expanded once rather than once per batch."""
    if not owners or not users:
        return []
    t = instance_dirty
    masters = session.execute(
        sa.select(EventRow.id, EventRow.google_event_id).where(
            _one_of(session, EventRow.id, owners), EventRow.is_recurring.is_(True)
        )
    ).all()
    refs = {str(master) for master, _ in masters} | {ref for _, ref in masters if ref}
    query = (
        sa.select(t.c.id, t.c.user_id, t.c.event_id, t.c.calendar_id, t.c.series_ref)
        .where(
            _one_of(session, t.c.user_id, users),
            sa.or_(_one_of(session, t.c.event_id, owners), _one_of(session, t.c.series_ref, refs)),
            sa.not_(_one_of(session, t.c.id, besides)),
        )
        .order_by(t.c.id)
    )
    if _postgres(session):
        query = query.with_for_update(skip_locked=True)
    return [Recorded(*row) for row in session.execute(query)]


def _one_of(session: Session, column: Any, values: Iterable[Any]) -> sa.ColumnElement[bool]:
    """`column` is one of `values` (false for none), as one condition."""
    listed = list(values)
    unique = (
        ordered_ids(listed) if listed and isinstance(listed[0], uuid.UUID) else sorted(set(listed))
    )
    conditions = any_of(session, column, unique)
    return sa.or_(*conditions) if conditions else sa.false()


def clear(session: Session, ids: Sequence[int]) -> None:
    """Remove these records (and no other: a change recorded after they were claimed
    stays for the next upkeep)."""
    for condition in any_of(session, instance_dirty.c.id, sorted(ids)):
        session.execute(sa.delete(instance_dirty).where(condition))


#: `replace_document`'s statement, built once (decisions IR4, IW): the document's
#: ``UPDATE ... RETURNING`` as a CTE, joined (``USING``) by the records' ``DELETE``, with
#: the parameters ``of_event``, ``new_body`` and ``records`` (an array: one parameter
#: whatever their number, as `any_of`'s on PostgreSQL). Never named after a column of
#: the ``UPDATE``: SQLAlchemy would take such a parameter for a new value of it.
_REPLACED: Final = (
    sa.update(event_documents)
    .where(event_documents.c.event_id == sa.bindparam("of_event"))
    .values(body=sa.bindparam("new_body"))
    .returning(event_documents.c.event_id)
    .cte("replaced")
)
_REPLACE_DOCUMENT: Final = (
    sa.delete(instance_dirty)
    .where(
        instance_dirty.c.id
        == sa.any_(sa.bindparam("records", type_=postgresql.ARRAY(instance_dirty.c.id.type))),
        # the CTE joined: its one row, or none (the records all name it)
        instance_dirty.c.event_id == _REPLACED.c.event_id,
    )
    .returning(instance_dirty.c.id)
    .add_cte(_REPLACED)
)


def replace_document(
    session: Session, event_id: uuid.UUID, body: bytes, *, records: Sequence[int]
) -> bool:
    """Replace the stored document of `event_id` by `body` and remove these records, if
    it has one; else change nothing and return False (decision IG2). For a row whose
    item is unchanged (only what its document shows changed), whose row the caller
    holds locked; the records must all name it, and be this transaction's alone, which
    only PostgreSQL's tell (`records_name_their_writer`: on SQLite the caller
    re-expands instead, review RY2). One statement: the records' ``DELETE`` joins the
    document's ``UPDATE ... RETURNING``, a data-modifying CTE."""
    assert records, "an empty list of records would select every record"
    assert _postgres(session), "SQLite's records may be another writer's (RY2)"
    removed = session.execute(
        _REPLACE_DOCUMENT, {"of_event": event_id, "new_body": body, "records": list(records)}
    ).all()
    return bool(removed)


_HELD_OWNERS: Final = sa.text(
    "SELECT id FROM events WHERE id = ANY(:ids) AND id NOT IN"
    " (SELECT id FROM events WHERE id = ANY(:ids) ORDER BY id FOR UPDATE SKIP LOCKED)"
).bindparams(sa.bindparam("ids", type_=postgresql.ARRAY(sa.Uuid())))
"""The owners among ``ids`` whose rows are present but held by another transaction,
locking the others' rows, in one statement (decision HI3): it was a locking read and a
plain read of the same rows, two round trips. A row deleted by a transaction that
committed after the statement's snapshot is reported held (its records stay for a later
run), where the plain read, a snapshot later, would have called it gone: either is safe."""


_LOCKED_OWNERS: Final = sa.text(
    "SELECT id, id IN (SELECT id FROM events WHERE id = ANY(:ids) ORDER BY id"
    " FOR UPDATE SKIP LOCKED) FROM events WHERE id = ANY(:ids)"
).bindparams(sa.bindparam("ids", type_=postgresql.ARRAY(sa.Uuid())))
"""`_HELD_OWNERS` answering every present owner, with whether it was locked (decision
HS1): the same locking subquery, the same round trip."""


def lock_owners_found(
    session: Session, owner_ids: Sequence[uuid.UUID]
) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """`lock_free_owners`, telling apart the owners whose ``events`` row was found and
    locked from those whose row is gone (deleted and committed: the cascade took their
    items, documents and held ranges, so they need no re-expansion; decision HS1):
    (locked, gone). The others are held by another transaction. SQLite: every owner
    found is locked (one plain read)."""
    wanted = ordered_ids(owner_ids)
    if not wanted:
        return set(), set()
    if not _postgres(session):
        found: set[uuid.UUID] = set()
        for condition in any_of(session, EventRow.id, wanted):
            found.update(session.scalars(sa.select(EventRow.id).where(condition)))
        return found, set(wanted) - found
    rows = session.execute(_LOCKED_OWNERS, {"ids": wanted}).all()
    return {owner for owner, locked in rows if locked}, set(wanted) - {r[0] for r in rows}


def lock_free_owners(session: Session, owner_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Lock the ``events`` rows of these owners that no other transaction holds, without
    waiting (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, in id order), and return the owners
    that may be re-expanded now: those locked, and those whose row is gone (their items
    went with it). An owner held by a writer or another upkeep is left out; its records
    must stay. SQLite: every owner (the transaction is the one writer)."""
    wanted = ordered_ids(owner_ids)
    if not _postgres(session) or not wanted:
        return set(wanted)
    held = session.scalars(_HELD_OWNERS, {"ids": wanted})
    return set(wanted) - set(held)


def record_owners(session: Session) -> None:
    """Record a change of every owner of items (every live single and series master),
    as their writes would have: the first fill, left to the upkeep (decision Z5). One
    ``INSERT ... SELECT``."""
    e = EventRow
    live = sa.select(e.user_id, e.id, e.calendar_id, sa.null()).where(
        e.deleted_at.is_(None),
        sa.or_(e.recurring_event_id.is_(None), e.is_recurring.is_(True)),
    )
    columns = ["user_id", "event_id", "calendar_id", "series_ref"]
    session.execute(sa.insert(instance_dirty).from_select(columns, live))
