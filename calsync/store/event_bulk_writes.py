"""Bulk writes of ``events`` rows: the pull's new rows (`insert_events`, a binary ``COPY``
on PostgreSQL, decision S12) and its changed ones (`update_events`, one
``UPDATE ... FROM (VALUES ...)`` per batch, decision S19).

Callers hand in column values by column name, as `calsync.store.events.event_columns`
makes them; nothing here knows the domain `Event`. The ``COPY`` flags the session
itself (`calsync.store.events.WRITTEN_KEY`), which the store's statement hook does not
see, so that the read model's upkeep runs before the commit.
"""

from __future__ import annotations

import functools
import operator
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, cast

import orjson
import psycopg
import sqlalchemy as sa
from psycopg.rows import namedtuple_row
from sqlalchemy.orm import Session

from calsync.store.chunks import chunks
from calsync.store.events import WRITTEN_KEY
from calsync.store.tables import Event as EventRow
from calsync.store.types import UTCDateTime
from calsync.store.upcoming import LATEST_SLOT, NOW_SLOT, replanning_returning

__all__ = ["insert_events", "update_events"]

_events = cast(sa.Table, EventRow.__table__)


def insert_events(
    session: Session,
    rows: Iterable[Mapping[str, Any]],
    *,
    columns: Sequence[str] | None = None,
) -> None:
    """Insert ``events`` rows (values by column name; ``id`` required) in bulk: through a
    binary ``COPY`` on PostgreSQL, an ``executemany`` insert elsewhere. Columns left out
    get their defaults; callable defaults (the timestamps) are evaluated once per call.
    Rows must not collide with existing ones (``COPY`` has no ``ON CONFLICT``).

    Without `columns`, `rows` must be a sequence, and its columns are those of the first
    row followed by any other row's (a row without one of them stores ``NULL`` there).
    With `columns`, every row has exactly those keys, and `rows` may be any iterable,
    consumed once while the rows are sent: a generator makes each row as ``COPY`` takes
    it, so that making the rows overlaps with PostgreSQL storing the earlier ones.
    JSON documents are encoded with orjson (the stored ``jsonb`` values are the ones the
    standard encoder gives; the store's tests compare both paths).
    """
    if columns is None:
        rows = listed = list(rows)
        if not listed:
            return
        given = list(listed[0])
        given.extend(sorted(set().union(*listed).difference(given)))
    else:
        given = list(columns)
    if session.get_bind().dialect.name == "postgresql":
        _copy_events(session, rows, given, exact=columns is not None)
        return
    if columns is None:
        dicts = [dict(r) for r in rows]
    else:
        dicts = [{name: r[name] for name in given} for r in rows]
    if dicts:
        session.execute(sa.insert(_events), dicts)


def _copy_events(
    session: Session, rows: Iterable[Mapping[str, Any]], given: list[str], *, exact: bool
) -> None:
    """`insert_events` on PostgreSQL: one binary ``COPY`` of `rows`' `given` columns and
    the Python defaults of the others. With `exact`, a row without one of `given` raises
    `KeyError`; without, it stores ``NULL`` there. A naive datetime raises `ValueError`."""
    defaults = _python_defaults(given, on_update=False)
    names = [*given, *defaults]
    kinds = [_events.c[name].type for name in given]
    documents = [i for i, kind in enumerate(kinds) if isinstance(kind, sa.JSON)]
    instants = [i for i, kind in enumerate(kinds) if isinstance(kind, UTCDateTime)]
    tail = list(defaults.values())
    pick = operator.itemgetter(*given)
    connection = session.connection().connection.driver_connection
    assert connection is not None
    session.info[WRITTEN_KEY] = True  # the read model's triggers fire on COPY too
    statement = f"COPY {_events.name} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)"
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types([_COPY_TYPES[name] for name in names])
        for row in rows:
            try:
                picked = pick(row)
            except KeyError:
                if exact:
                    raise
                picked = tuple(row.get(name) for name in given)
            values: list[Any] = [picked] if len(given) == 1 else list(picked)
            for i in documents:
                if values[i] is not None:
                    values[i] = _jsonb(values[i])
            for i in instants:
                moment = values[i]
                if moment is not None and moment.tzinfo is None:
                    raise ValueError(f"naive datetime given for {given[i]}")
            values.extend(tail)
            copy.write_row(values)


def _python_defaults(given: Sequence[str], *, on_update: bool) -> dict[str, Any]:
    """By column name, the values of the ``events`` columns not in `given` that have a
    Python-side insert default (or update default, with `on_update`), callable ones
    evaluated now: what SQLAlchemy would fill in for a statement it built."""
    found: dict[str, Any] = {}
    for column in _events.columns:
        default = column.onupdate if on_update else column.default
        if column.name not in given and isinstance(default, sa.ColumnDefault):
            found[column.name] = default.arg(None) if default.is_callable else default.arg
    return found


def update_events(
    session: Session,
    rows: Sequence[Mapping[str, Any]],
    *,
    replanning: tuple[datetime, datetime] | None = None,
) -> dict[uuid.UUID, Any]:
    """Update ``events`` rows by id in bulk: each row gives the id as ``_id`` and the new
    values by column name. On PostgreSQL, rows with the same columns (and distinct ids)
    are written by one ``UPDATE ... FROM (VALUES ...)`` per batch, a statement in one
    round trip that PostgreSQL plans once, where an ``executemany`` runs one ``UPDATE``
    per row (still the way elsewhere). Columns with an update default (``updated_at``)
    and not given get it, evaluated once per call. Rows of unknown ids change nothing.

    With `replanning` (the reminders' ``now`` and latest start), the rows written by
    such a statement are returned by id as `calsync.store.upcoming.replanning_rows`
    reads them on PostgreSQL (every one, the upcoming test a column), from its
    ``RETURNING`` (IS1); rows written otherwise (SQLite, repeated ids) are not: the
    caller reads those. Without, or on SQLite, the result is empty.
    """
    written: dict[uuid.UUID, Any] = {}
    if rows:  # neither a raw cursor nor `Connection.execute` passes the session's hook
        session.info[WRITTEN_KEY] = True
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for values in rows:
        groups.setdefault(tuple(sorted(values)), []).append(values)
    postgres = session.get_bind().dialect.name == "postgresql"
    statement = sa.update(_events).where(_events.c.id == sa.bindparam("_id"))
    for keys, batch in groups.items():
        if not postgres or len({values["_id"] for values in batch}) < len(batch):
            session.connection().execute(statement, [dict(values) for values in batch])
            continue
        for part in chunks(batch, max(1, _MAX_PARAMETERS // len(keys))):
            for row in _update_from_values(
                session, [k for k in keys if k != "_id"], part, replanning
            ):
                written[row.id] = row
    return written


#: Parameters per statement (PostgreSQL allows 65,535).
_MAX_PARAMETERS: Final = 30_000


def _update_from_values(
    session: Session,
    names: list[str],
    rows: Sequence[Mapping[str, Any]],
    replanning: tuple[datetime, datetime] | None,
) -> list[Any]:
    """One ``UPDATE events ... FROM (VALUES ...)`` of `rows` (distinct ids); with
    `replanning`, the rows `update_events` returns (else none). The names must be
    columns of ``events`` (else `KeyError`): they are spelled into the SQL."""
    unknown = set(names).difference(_VALUE_TYPES)
    if unknown:
        raise KeyError(f"not columns of {_events.name}: {sorted(unknown)}")
    defaults = _python_defaults(names, on_update=True)
    documents = {i for i, name in enumerate(names) if _VALUE_TYPES[name] == "jsonb"}
    instants = {i for i, name in enumerate(names) if _VALUE_TYPES[name] == "timestamptz"}
    parameters: list[Any] = list(defaults.values())  # the SET clause's come first
    for row in rows:
        parameters.append(row["_id"])
        for i, name in enumerate(names):
            value = row[name]
            if value is not None:
                if i in documents:
                    value = orjson.dumps(value).decode()
                elif i in instants and value.tzinfo is None:
                    raise ValueError(f"naive datetime given for {name}")
            parameters.append(value)
    if replanning is not None:
        parameters.extend(replanning)
    shape = (tuple(defaults), tuple(names), len(rows), replanning is not None)
    query = _update_text(*shape) if len(rows) <= _TEXTS_KEPT_UP_TO else _text_of(*shape)
    connection = session.connection().connection.driver_connection
    assert connection is not None
    with psycopg.RawCursor(connection, row_factory=namedtuple_row) as cursor:
        cursor.execute(query, parameters)
        if replanning is None:
            return []
        return [_utc(row) for row in cursor.fetchall()]


#: Statements of up to this many rows keep their text (`_update_text`): at most
#: `_TEXTS_KEPT` texts of ~1 KiB a row; a longer statement (a full sync's) builds its own.
_TEXTS_KEPT_UP_TO: Final = 32
_TEXTS_KEPT: Final = 32


def _text_of(defaults: tuple[str, ...], names: tuple[str, ...], rows: int, replanning: bool) -> str:
    """The text of `_update_from_values`' statement for its shape - the update defaults'
    and the given columns' names, how many rows, whether it returns the replanning rows.
    Its parameters, in order: the defaults, then each row's id and values, then
    (`replanning`) the reminders' ``now`` and latest start.

    ``$n`` placeholders, for a cursor that sends the text as it is: psycopg parses and
    caches only texts of up to 4 KiB, and this one grows with the rows."""
    numbers = iter(range(1, len(defaults) + rows * (len(names) + 1) + 3))
    assignments = [f"{name} = ${next(numbers)}" for name in defaults]
    assignments.extend(f"{name} = v.{name}" for name in names)
    casts = [f"::{_VALUE_TYPES[name]}" for name in names]
    values = ", ".join(
        "(" + ", ".join([f"${next(numbers)}::uuid", *(f"${next(numbers)}{c}" for c in casts)]) + ")"
        for _ in range(rows)
    )
    # names are the table's columns (checked by the caller); every value is a parameter
    query = (
        f"UPDATE {_events.name} SET {', '.join(assignments)} "  # noqa: S608
        f"FROM (VALUES {values}) AS v(_id, {', '.join(names)})"
    )
    if not replanning:
        return query + f" WHERE {_events.name}.id = v._id"
    # the reminders' read of these rows, in this statement (IS1)
    now, latest = next(numbers), next(numbers)
    return query + _RETURNING.replace(NOW_SLOT, f"${now}::timestamptz").replace(
        LATEST_SLOT, f"${latest}::timestamptz"
    )


#: `_text_of`, kept by shape: a pull writes the same few shapes again and again, and
#: building the text of 10 rows took ~0.2 ms of its CPU (decision IU2).
_update_text: Final = functools.lru_cache(maxsize=_TEXTS_KEPT)(_text_of)


#: What `_update_from_values` adds to return the rows for the reminders: the owners and
#: their preferences joined (the preferences' join is on ``users``: a join condition in
#: ``FROM`` cannot name the target table), the rows matched in ``WHERE``.
_RETURNING: Final = (
    f", users LEFT OUTER JOIN notification_preferences"
    f" ON notification_preferences.user_id = users.id"
    f" WHERE {_events.name}.id = v._id AND users.id = {_events.name}.user_id"
    f" RETURNING {replanning_returning()}"
)
#: The positions of the returned instants (`UTCDateTime` columns), given back in UTC.
_INSTANTS: Final = frozenset(
    column.name for column in _events.columns if isinstance(column.type, UTCDateTime)
)


def _utc(row: Any) -> Any:
    """`row` with its instants in UTC, as SQLAlchemy's `UTCDateTime` reads them."""
    values = list(row)
    for i in _instant_positions(row._fields):
        if values[i] is not None:
            values[i] = values[i].astimezone(UTC)
    return row._make(values)


@functools.lru_cache(maxsize=8)
def _instant_positions(fields: tuple[str, ...]) -> tuple[int, ...]:
    """The positions of the `_INSTANTS` among a returned row's `fields`."""
    return tuple(i for i, name in enumerate(fields) if name in _INSTANTS)


def _jsonb(document: Any) -> bytes:
    """`document` in ``jsonb``'s binary input form: the format version (1), then the JSON
    text. Sent as bytes (``bytea``'s binary form is the bytes as they are), so that the
    JSON is encoded once, by orjson, which differs from ``json.dumps`` only in spelling
    (UTF-8 instead of ``\\u`` escapes, ``1e16`` instead of ``1e+16``), never in the value
    PostgreSQL stores. Raises `TypeError` for what JSON cannot hold (non-string keys)."""
    return b"\x01" + orjson.dumps(document)


def _copy_type(kind: sa.types.TypeEngine[Any]) -> str:
    """The PostgreSQL type name a binary ``COPY`` dumps a column of type `kind` as."""
    for python_type, name in _COPY_TYPE_NAMES:
        if isinstance(kind, python_type):
            return name
    raise TypeError(f"no COPY type for {kind!r}")  # a new column type: add it above


_COPY_TYPE_NAMES: Final[tuple[tuple[type[sa.types.TypeEngine[Any]], str], ...]] = (
    (sa.JSON, "bytea"),  # see _jsonb
    (UTCDateTime, "timestamptz"),
    (sa.Uuid, "uuid"),
    (sa.Text, "text"),
    (sa.String, "varchar"),
    (sa.Boolean, "bool"),
    (sa.Integer, "int4"),
)


#: By column name, the types a binary ``COPY`` into ``events`` sends (`insert_events`).
_COPY_TYPES: Final = {column.name: _copy_type(column.type) for column in _events.columns}
#: By column name, the types of the values of `update_events` (JSON as ``jsonb`` text).
_VALUE_TYPES: Final = {
    name: "jsonb" if kind == "bytea" else kind for name, kind in _COPY_TYPES.items()
}
