"""A per-process cache of events as read, each entry valid for one version of its rows.

Expanded lists read the same rows again and again (a calendar client polls its month),
and building a `StoredEvent` from a row costs more than finding the row. Entries are
keyed by (event id, row version), where the version is a value PostgreSQL itself changes
whenever the event's row or any of its attendee rows changes (`version_column`: the
``xmin`` of each, the id of the transaction that wrote that row version). A reader gets
the versions along with the keys it lists anyway, and loads only the events whose
version it has no entry for, so an entry can never be served for content other than its
own, whichever process or tool wrote the row.

Use it only in read-only transactions: a transaction that writes a row twice leaves the
same ``xmin`` on both versions. ``xmin`` is a 32-bit transaction id, so after about four
billion transactions a value comes round again; an entry would have to survive that long
unread in a bounded LRU and its row be written by exactly that transaction.

SQLite has no row versions: there `version_column` is ``NULL`` and nothing is cached.
"""

from __future__ import annotations

import re
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Final, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.events import StoredEvent

__all__ = [
    "MAX_ENTRIES",
    "EventCache",
    "PerDatabase",
    "cache_of",
    "dialect_of",
    "version_by_id",
    "version_column",
    "version_column_of",
]

MAX_ENTRIES: Final = 10_000
"""Events kept per database and process: about 1.6 KB each for a bare event (measured),
more with long descriptions and attendees, so some 16-50 MB at most."""


class EventCache:
    """`StoredEvent`s by (id, version), least recently used dropped past `max_entries`.
    Thread-safe; one entry per id (a newer version replaces the older)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[uuid.UUID, tuple[str, StoredEvent]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, event_id: uuid.UUID, version: str) -> StoredEvent | None:
        """The event read at `version`, or `None`."""
        with self._lock:
            entry = self._entries.get(event_id)
            if entry is None or entry[0] != version:
                return None
            self._entries.move_to_end(event_id)
            return entry[1]

    def put(self, version: str, stored: StoredEvent) -> None:
        """Remember `stored` as the content of its rows at `version`."""
        with self._lock:
            self._entries[stored.id] = (version, stored)
            self._entries.move_to_end(stored.id)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


T = TypeVar("T")


class PerDatabase(Generic[T]):
    """One `T` per PostgreSQL database (engine) of the process, made by `factory` when
    first asked for: what is keyed by row versions (this cache, the list memos of
    `calsync.web.list_cache`) must not mix databases, whose versions are unrelated."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._made: weakref.WeakKeyDictionary[sa.Engine, T] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def of(self, session: Session) -> T | None:
        """The `T` of the database `session` reads (`None` where rows have no versions)."""
        engine = session.get_bind()
        if isinstance(engine, sa.Connection):  # a request's held connection (db.RequestSessions)
            engine = engine.engine
        if not isinstance(engine, sa.Engine) or engine.dialect.name != "postgresql":
            return None
        with self._lock:
            made = self._made.get(engine)
            if made is None:
                made = self._made[engine] = self._factory()
            return made


_caches: Final = PerDatabase(EventCache)


def cache_of(session: Session) -> EventCache | None:
    """The cache of the database `session` reads (`None` where rows have no versions)."""
    return _caches.of(session)


def dialect_of(session: Session) -> str:
    """The name of the dialect of the database `session` reads (``postgresql``, ``sqlite``)."""
    return session.get_bind().dialect.name


def version_column(session: Session) -> sa.ColumnElement[str]:
    """A column of an ``events`` query: its row's version as text (``xmin`` of the event
    row and of each of its attendee rows), or ``NULL`` on databases without versions."""
    return version_column_of(dialect_of(session))


def version_column_of(dialect: str) -> sa.ColumnElement[str]:
    """`version_column` for a database of dialect `dialect`."""
    if dialect != "postgresql":
        return sa.type_coerce(sa.null(), sa.String()).label("row_version")
    return sa.literal_column(_version_sql("events.xmin", "events.id"), sa.String()).label(
        "row_version"
    )


_QUALIFIED_NAME: Final = re.compile(r"[a-z_]+\.[a-z_]+")
_ATTENDEE_VERSIONS: Final = (
    "SELECT string_agg(a.xmin::text, ',') FROM event_attendees a WHERE a.event_id = "
)


def version_by_id(id_sql: str) -> sa.ColumnElement[str]:
    """`version_column` (PostgreSQL) of the ``events`` row whose id is the SQL expression
    `id_sql` (such as ``k.id`` of a subquery ``k`` of ids), read by its primary key: for
    queries that find their rows without reading them (an index-only scan) and read the
    versions of only those they return. `id_sql` is a qualified column name of calsync's
    own statements, never input (`ValueError` for anything else)."""
    if not _QUALIFIED_NAME.fullmatch(id_sql):
        raise ValueError(f"not a qualified column name: {id_sql!r}")
    xmin = f"(SELECT e.xmin FROM events e WHERE e.id = {id_sql})"  # noqa: S608 - a column name
    return sa.literal_column(_version_sql(xmin, id_sql), sa.String()).label("row_version")


def _version_sql(xmin_sql: str, id_sql: str) -> str:
    """The version text: the event row's ``xmin``, then its attendee rows' ``xmin``s."""
    # id_sql is one of calsync's column names (see version_by_id), never input
    attendees = f"({_ATTENDEE_VERSIONS}{id_sql})"
    return f"{xmin_sql}::text || ':' || coalesce({attendees}, '')"
