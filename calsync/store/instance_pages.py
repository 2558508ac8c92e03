"""A page of the instance read model: the listed items of a window, with their
documents, in one statement (decisions V1-V6, X1, A1).

`read_snapshot` makes a page's session one snapshot; `listed_rows` reads the items
(``event_instances``), the documents they show (``event_documents``) and whether the
model may answer (``instance_horizon``, ``instance_dirty``, ``instance_incomplete``), as
`calsync.store.instances` keeps them.

Keys: an item is (``sort_at``, ``api_id``), compared as the API's cursors compare them
(``api_id`` in code-point order: ``COLLATE "C"`` on PostgreSQL, SQLite's ``BINARY``).
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Final, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.db import PAGE_STATEMENT, statements_alone
from calsync.store.instances import LONG_SPAN
from calsync.store.tables import (
    event_documents,
    event_instances,
    instance_dirty,
    instance_horizon,
    instance_incomplete,
)
from calsync.store.types import UTCDateTime

__all__ = ["ListedRow", "Window", "listed_rows", "read_snapshot"]


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


_ITEM = event_instances.alias("i")
"""``event_instances`` as the listing names it: short names keep its text under the
length psycopg caches the parsing of (4 KB)."""

_TIMES: Final = frozenset({"sort_at", "original_at", "end_at"})
"""The listed columns that hold instants."""


def _listed(*, plain_times: bool) -> list[sa.ColumnElement[Any]]:
    """The item's columns a page reads (`ListedRow`'s first fields). With `plain_times`
    (PostgreSQL), its instants are read as the driver gives them (aware, in the session's
    zone) rather than through `UTCDateTime`, whose ~600 conversions were a fifth of a
    page's use case (decision HN2); what uses them converts (`keyset.encode`,
    `astimezone`)."""
    t = _ITEM
    names = ["sort_at", "api_id", "owner_id", "in_series", "original_at", "original_zone"]
    names += ["exception_id", "bookkeeping_id", "version", "end_at"]
    return [
        sa.type_coerce(t.c[name], _PLAIN_TIME).label(name)
        if plain_times and name in _TIMES
        else t.c[name]
        for name in names
    ]


_PLAIN_TIME: Final = sa.DateTime(timezone=True)


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
    alone: bool = False,
) -> list[ListedRow] | None:
    """The first `limit` items of the user in `window` after the key `after`, by
    (``sort_at``, ``api_id``); `None` when the model may not answer: no filled horizon,
    the user `blocked`, or a window (its instants or its days) not wholly inside the
    horizon.

    One statement (one snapshot): a range scan of the listing index for the items that
    start from `LONG_SPAN` before the window, one of the few long items (the partial
    index ``ix_event_instances_long``), and the horizon's check, a row of its own with
    no ``api_id`` (decision A1). With `alone`, the statement runs outside any
    transaction when the session has none open yet (`_alone`, decision HN1)."""
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
        plain_times=session.get_bind().dialect.name == "postgresql",
    )
    if alone:
        found = list(map(ListedRow._make, _alone(session, statement, values)))
    else:
        found = list(map(ListedRow._make, session.connection().execute(statement, values).all()))
    items = [row for row in found if row.api_id is not None]
    if len(items) == len(found):
        return None  # no horizon row: not readable, or the window is outside it
    items.sort(key=_key)
    return items[:limit]


def _alone(session: Session, statement: sa.Executable, values: dict[str, Any]) -> list[Any]:
    """The rows of `statement`, run as a statement of its own when `session` has no
    transaction open yet (decision HN1): on PostgreSQL in autocommit, without the
    ``BEGIN`` and ``ROLLBACK`` round trips a transaction costs (one statement is one
    snapshot by itself); SQLite's driver runs a ``SELECT`` outside a transaction
    anyway. The session's transaction is then ended (nothing is open on the server)
    and its connection set back to its default isolation before anything else runs on
    it, as `calsync.store.db.RequestConnection.first_statement` does."""
    if session.in_transaction():
        return list(session.connection().execute(statement, values).all())
    try:
        with statements_alone(session.connection()) as connection:
            return list(connection.execute(statement, values).all())
    finally:
        session.rollback()


def _key(row: ListedRow) -> tuple[datetime, str]:
    return row.sort_at, row.api_id


@functools.cache
def _listing(
    *, after: bool, category: bool, calendar: bool, in_series: bool | None, plain_times: bool
) -> sa.CompoundSelect[Any]:
    """The statement of `listed_rows` for one shape of query (which filters it has), its
    values bound by name: built once per shape, so that a page neither builds nor
    compiles it (SQLAlchemy's cache key of a statement built anew costs more than the
    scan). The main scan and the long items' scan are the two halves of one
    ``UNION ALL``, each in list order, limited, and empty unless the model may answer
    (`_readable`); its third part is `_readable`'s row, if any, without an ``api_id``.
    Marked `PAGE_STATEMENT`: on PostgreSQL its rows come in binary and it is prepared at
    its first execution on a connection (decisions II1, II2)."""
    t = _ITEM
    conditions = _conditions(after=after, category=category, calendar=calendar)
    if in_series is not None:
        conditions.append(t.c.in_series.is_(in_series))
    low = sa.bindparam("low", type_=UTCDateTime())
    order, limit = (t.c.sort_at, t.c.api_id), sa.bindparam("limit", type_=sa.Integer())
    listed = _listed(plain_times=plain_times)
    short = sa.select(*listed).where(*conditions, t.c.sort_at >= low)
    long = sa.select(*listed).where(*conditions, _LONG, t.c.sort_at < low)
    readable = _readable()
    halves = [
        sa.select(
            _with_documents(half.where(sa.select(readable).exists()))
            .order_by(*order)
            .limit(limit)
            .subquery(name)
        )
        for name, half in (("a", short), ("b", long))
    ]
    nothing = [sa.null().label(f"n{n}") for n in range(len(listed) + 3)]
    marker = sa.select(readable.c.first_at, *nothing)
    return sa.union_all(*halves, marker).execution_options(**{PAGE_STATEMENT: True})


def _conditions(*, after: bool, category: bool, calendar: bool) -> list[sa.ColumnElement[bool]]:
    """What selects an item of the window (`calsync.domain.windows`), after the cursor,
    with the filters asked for."""
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
    return conditions


def _readable() -> sa.CTE:
    """The horizon's start, when the model may answer the page: the horizon filled and
    holding the window's instants and days, and the user not blocked (no change left to
    re-expand, no series a bound cut short, no owner held only near today short of the
    window: `calsync.store.instances.blocked`)."""
    h = instance_horizon.alias("h")
    user = sa.bindparam("user_id", type_=sa.Uuid())
    d, c = instance_dirty.alias("d"), instance_incomplete.alias("c")
    return (
        sa.select(h.c.first_at)
        .where(
            h.c.id == 1,
            h.c.filled.is_(True),
            ~sa.select(d.c.id).where(d.c.user_id == user).exists(),
            ~sa.select(c.c.owner_id).where(c.c.user_id == user, _not_held(c)).exists(),
            h.c.first_at <= sa.bindparam("start"),
            h.c.first_at <= sa.bindparam("day_start"),
            h.c.end_at >= sa.bindparam("end"),
            h.c.end_at >= sa.bindparam("day_end"),
        )
        .cte("r")
    )


def _not_held(c: Any) -> sa.ColumnElement[bool]:
    """An ``instance_incomplete`` row that bars the window: a series a bound cut short
    (no range), or an owner held only near today (decision HC2) whose range does not
    hold the window's instants and days."""
    return sa.or_(
        c.c.held_from.is_(None),
        c.c.held_from > sa.bindparam("start"),
        c.c.held_from > sa.bindparam("day_start"),
        c.c.held_to < sa.bindparam("end"),
        c.c.held_to < sa.bindparam("day_end"),
    )


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
