"""Engines and sessions for PostgreSQL (psycopg 3) and SQLite, built from settings.

Nothing connects until first use. ``make_engine`` normalises ``postgresql://`` URLs to the
psycopg 3 driver and gives SQLite what concurrent worker threads need (WAL, a busy timeout,
foreign keys on, and for a file one line of writers a process, `sqlite_turns`).

An HTTP request of the API uses one pooled connection (decision U1): `RequestConnection`
holds it from the first statement of authentication to the end of the request, and the
sessions of `make_session_factory` bind to it while one is held (`holding`). The API's
engine has no pre-ping (decision U2): a connection the server dropped is found by the
request's first statement, which authentication retries once on a fresh connection
(`first_statement`). The other engines (workers, scheduler, webhook intake) ping a pooled
connection at checkout only when it has been idle for `PING_AFTER_IDLE` seconds
(decision HP1): one that answered moments ago is handed out as it is.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from calsync import tracing
from calsync.store import sqlite_turns
from calsync.store.events import UNRECORDED, StoredEvent
from calsync.store.instances import WRITTEN_KEY

T = TypeVar("T")


#: How long a pooled connection may have been idle and still be handed out without a
#: ping, in seconds (decision HP1; HikariCP's ``aliveBypassWindowMs`` is the same idea,
#: 0.5 s by default). A pull checks out three connections within milliseconds.
PING_AFTER_IDLE: Final = 1.0


@dataclass(frozen=True)
class PoolSize:
    """A pool of `size` connections kept open plus up to `overflow` more while busy.

    `pre_ping`: ping a connection at checkout (PostgreSQL) when it has been idle in the
    pool for `ping_after_idle` seconds or more (0: whenever it was used before)."""

    size: int = 10
    overflow: int = 10
    pre_ping: bool = True
    ping_after_idle: float = PING_AFTER_IDLE


def api_pool(threads: int) -> PoolSize:
    """The pool of an API process with `threads` threads (``CALSYNC_API_THREADS``).

    Each authenticated request holds one connection and at most `threads` hold one at a
    time (`RequestConnection`, whose permits number `threads`), so `threads` are kept
    open; the overflow (as many again) serves what runs beside them without a permit: the
    webhook intake's reads and group commits on the event loop's executor, sign-in,
    ``/readyz`` and ``/metrics``. No pre-ping (decision U2).
    """
    return PoolSize(size=threads, overflow=threads, pre_ping=False)


def normalise_url(url: str) -> str:
    """Return ``url`` with the psycopg 3 driver named for PostgreSQL URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(
    database_url: str,
    *,
    pool_size: int = 10,
    echo: bool = False,
    pool: PoolSize | None = None,
) -> Engine:
    """Create (but do not connect) the engine for ``database_url``; its statements get
    client spans when tracing is on (:mod:`calsync.tracing`).

    `pool` sizes the pool (default: `pool_size` kept, as many again in overflow, with a
    pre-ping of idle connections on PostgreSQL, `ping_idle_connections`); an in-memory
    SQLite database keeps SQLAlchemy's own pool.
    """
    pool = pool or PoolSize(size=pool_size, overflow=pool_size)
    url = normalise_url(database_url)
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        file = bool(database) and ":memory:" not in url  # its writers take turns (JE2)
        sizes = {"pool_size": pool.size, "max_overflow": pool.overflow} if file else {}
        factory = {"factory": sqlite_turns.TurnTakingConnection} if file else {}
        engine = sa.create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, **factory}, **sizes
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        if file:
            line = sqlite_turns.join_line(
                os.path.abspath(str(database)), sqlite_turns.BUSY_TIMEOUT_MS / 1000
            )
            event.listen(engine, "connect", line)
        event.listen(engine, "before_execute", _sqlite_lock_for_update)
    else:
        engine = sa.create_engine(
            url,
            echo=echo,
            connect_args=connection_defaults(url),
            pool_size=pool.size,
            max_overflow=pool.overflow,
            # the connection given back last is handed out first: the one that answered
            # most recently, which `ping_idle_connections` need not ping
            pool_use_lifo=pool.pre_ping,
            pool_recycle=1800,
            json_deserializer=_json_loads,
        )
        if pool.pre_ping:
            ping_idle_connections(engine, after=pool.ping_after_idle)
        event.listen(engine, "do_execute", _page_statement)
    tracing.instrument_engine(engine)
    return engine


#: libpq's connection parameters a PostgreSQL engine sets unless its URL names them.
#: Without a connect timeout, a server that accepts the TCP connection and never answers
#: (hung, or a proxy whose backend is gone) holds the connecting thread for ever - every
#: API thread in turn; without keepalives, a server gone mid-statement leaves the
#: statement waiting for the kernel's two hours. Five seconds, as the Redis clients' own
#: connect timeout; a dead peer is found within 30 + 3 x 10 s.
PG_CONNECTION_DEFAULTS: Final[Mapping[str, int]] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def connection_defaults(url: str) -> dict[str, int]:
    """`PG_CONNECTION_DEFAULTS` less those `url`'s query sets (an operator's own
    ``?connect_timeout=...`` wins)."""
    given = sa.engine.make_url(url).query
    return {key: value for key, value in PG_CONNECTION_DEFAULTS.items() if key not in given}


#: Where a pooled connection's record keeps when it was last given back (`time.monotonic`).
_RETURNED_AT: Final = "calsync.returned_at"


def ping_idle_connections(engine: Engine, *, after: float) -> None:
    """Ping a pooled connection of `engine` at checkout when it has sat in the pool for
    `after` seconds or more (SQLAlchemy's pre-ping pings at every checkout): one that
    fails the ping is replaced, and every older one with it, as SQLAlchemy's pre-ping
    does. A connection just opened, or given back less than `after` seconds ago, is
    handed out without the round trip (decision HP1). Should the server drop it in that
    window anyway, its first statement fails with a disconnect error, which makes
    SQLAlchemy replace it and every older one (the job is retried)."""
    dialect = engine.dialect

    def given_back(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get(_RETURNED_AT)
        if returned_at is None or time.monotonic() - returned_at < after:
            return  # just connected (its record's info is new), or answered moments ago
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as err:
            if dialect.is_disconnect(err, dbapi_connection, None):
                raise sa.exc.InvalidatePoolError(str(err)) from err
            raise

    event.listen(engine.pool, "checkin", given_back)
    event.listen(engine.pool, "checkout", checked_out)


PAGE_STATEMENT: Final = "calsync_page_statement"
"""An execution option (PostgreSQL) for a statement run on every page of a listing:

- its rows are sent in PostgreSQL's binary format rather than as text (decision II1):
  ``bytea`` as its bytes, not twice as many hex digits; instants, ids and numbers
  without being printed by the server and parsed by psycopg; the same Python values;
- it is prepared on its connection at its first execution, not its fifth (psycopg's
  threshold; decision II2), so that PostgreSQL's plan cache settles on the generic plan
  after its five custom plans at a connection's sixth page, not its eleventh: each page
  before it planned the statement anew (~0.5-1 ms of the server's CPU).

Other statements run as SQLAlchemy runs them. SQLite ignores it."""


_UNPREPARED: ContextVar[bool] = ContextVar("calsync_unprepared_pages", default=False)


@contextmanager
def unprepared_pages() -> Iterator[None]:
    """Page statements run in the block are not prepared at once (psycopg's threshold
    applies, as to any other): an API process's warm-up lists for nobody (decision HZ1),
    whose custom plan, far cheaper than a user's, must not be one of the five whose
    mean PostgreSQL weighs the generic plan against (decision II2)."""
    token = _UNPREPARED.set(True)
    try:
        yield
    finally:
        _UNPREPARED.reset(token)


def _page_statement(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    """Run a statement marked `PAGE_STATEMENT` as it says (SQLAlchemy's ``do_execute``
    hook: `True` says it has run); others as SQLAlchemy runs them (`False`)."""
    if not context.execution_options.get(PAGE_STATEMENT):
        return False
    cursor.execute(statement, parameters, binary=True, prepare=None if _UNPREPARED.get() else True)
    return True


def _json_loads(data: str | bytes) -> Any:
    """What a PostgreSQL ``json``/``jsonb`` value holds: parsed by orjson (a page of the
    read model parses four such columns per row, and the standard library's parser was
    a seventh of its time), or, for what orjson refuses and the standard library reads
    (``NaN``, ``Infinity``), as before. (orjson reads an integer beyond 64 bits as a
    float; calsync writes none: its documents are rendered by orjson, which refuses
    them, and Google's integers are small.)"""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={sqlite_turns.BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_lock_for_update(
    conn: Connection,
    clauseelement: Any,
    _multiparams: Any,
    _params: Any,
    execution_options: Mapping[str, Any],
) -> None:
    """Give ``SELECT ... FOR UPDATE`` its meaning on SQLite: from this read on, the
    transaction is the database's one writer, until it ends.

    SQLite has no row locks, so SQLAlchemy drops ``FOR UPDATE``, and the driver runs a
    ``SELECT`` outside any transaction: what it read could be changed by another writer
    before this transaction wrote, and the ORM then leaves out of its ``UPDATE`` every
    column it sets to the value it read (a sign-in stored new tokens but left them flagged
    ``needs_reauth`` by a refresh that committed in between; issue 15). Starting the
    transaction with ``BEGIN IMMEDIATE`` before such a read makes every other writer wait
    for this one (up to the busy timeout), as the row lock makes them on PostgreSQL. A
    connection already in a transaction holds the write lock already: the driver begins
    transactions only before a write. A statement run with the execution option
    ``writer_lock=False`` locks rows on PostgreSQL only (one that waits on the network
    while holding its lock must not stop every writer of a SQLite database).
    """
    locking = getattr(clauseelement, "_for_update_arg", None)
    if locking is None or locking.skip_locked:
        return
    if not execution_options.get("writer_lock", True):
        return
    raw = conn.connection.dbapi_connection
    if raw is not None and not raw.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit (repositories return detached data),
    on the request's connection while one is held for `engine` (`holding`), and that
    keep the read model of lists (`calsync.events.read_model`) in step with the
    ``events`` rows they write: an API request's few changes before it commits, any
    other's asked for after it (`calsync.events.upkeep`, decisions V2, Z1, Z2)."""
    factory = RequestSessions(engine, expire_on_commit=False)
    event.listen(factory, "do_orm_execute", _note_writes)
    event.listen(factory, "after_flush", _note_flush)
    event.listen(factory, "before_commit", _refresh_read_model)
    return factory


(_UNRECORDED_OPTION,) = UNRECORDED


def _note_writes(state: ORMExecuteState) -> None:
    """Flag a session that ran an INSERT, UPDATE or DELETE: only those can have left
    changes for `_refresh_read_model` (the ``COPY`` of `insert_events` flags itself).
    A write the store marked `UNRECORDED` (one the triggers cannot record) does not."""
    writes = state.is_insert or state.is_update or state.is_delete
    if writes and not state.execution_options.get(_UNRECORDED_OPTION):
        state.session.info[WRITTEN_KEY] = True


def _note_flush(session: Session, _context: Any) -> None:
    """Flag a session whose unit of work flushed rows (ORM objects, not statements)."""
    session.info[WRITTEN_KEY] = True


def _refresh_read_model(session: Session) -> None:
    from calsync.events.upkeep import refresh_written

    refresh_written(session)


class RequestConnection:
    """The one pooled connection of an HTTP request (decision U1).

    Checked out on first use (`connection`, from a worker thread: a checkout may wait or
    connect) and returned by `close`; in between, each session of `RequestSessions` made
    while it is held (`holding`) runs on it, one after another. `permitted` says whether
    the request holds one of the API's connection permits (``calsync.web.connections``):
    only then do sessions bind to it, so a connection is held across awaits only by the
    bounded number of requests the pool was sized for.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.permitted = False
        self._connection: Connection | None = None

    @property
    def checked_out(self) -> bool:
        return self._connection is not None

    def connection(self) -> Connection:
        """The request's connection, checked out now if it was not yet (blocking)."""
        if self._connection is None:
            self._connection = self.engine.connect()
        return self._connection

    def idle(self) -> bool:
        """Checked out and outside any transaction: a new session may begin on it."""
        return self._connection is not None and not self._connection.in_transaction()

    def needs_io_to_close(self) -> bool:
        """Whether `close` would talk to the server (roll back an open transaction, or
        drop an invalidated connection); otherwise it only returns the connection to the
        pool (psycopg and sqlite3 roll back an idle connection without I/O)."""
        connection = self._connection
        return connection is not None and (connection.in_transaction() or connection.invalidated)

    def close(self) -> None:
        """Return the connection to the pool (rolling back what is open); idempotent."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def first_statement(self, run: Callable[[Connection], T]) -> T:
        """`run` on the request's connection as its first statements, then end the
        transaction they began; retried once on a fresh connection when the server had
        dropped this one (SQLAlchemy then also marks every older pooled connection for
        replacement). Only for reads: a retry repeats them.
        """
        try:
            return self._outside_transaction(run)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            self.close()
            return self._outside_transaction(run)

    def _outside_transaction(self, run: Callable[[Connection], T]) -> T:
        """`run` on the connection, then its transaction ended. On PostgreSQL in
        autocommit (decision HB2): each statement is its own snapshot as in a READ
        COMMITTED transaction, without the ``BEGIN`` and ``ROLLBACK`` round trips; the
        connection's isolation is back to its default before anything else runs on it."""
        connection = self.connection()
        if connection.in_transaction():
            result = run(connection)
            connection.rollback()
            return result
        try:
            with statements_alone(connection):
                return run(connection)
        finally:
            connection.rollback()  # SQLAlchemy's transaction only: none is open here


@contextmanager
def statements_alone(connection: Connection) -> Iterator[Connection]:
    """The block's statements on `connection`, which has no transaction open, each one a
    snapshot of its own; the caller then ends the transaction SQLAlchemy began for them
    (nothing is open on the server: that sends nothing).

    On PostgreSQL psycopg's ``autocommit`` is set on the driver's connection for the
    block (an attribute: no I/O), so psycopg sends no ``BEGIN`` before the first
    statement and the ``ROLLBACK`` after it has nothing to send (decisions HB2, HN1).
    It is set on the driver rather than through SQLAlchemy's ``isolation_level``
    execution option, whose set and reset ran SQLAlchemy's connection-characteristics
    machinery twice a read (decision HU2); the connection is back to its default
    before anything else runs on it, and the pool finds it as SQLAlchemy left it.
    SQLite's driver runs a ``SELECT`` outside a transaction anyway: unchanged there.
    """
    raw: Any = connection.connection.dbapi_connection
    driver = raw if connection.dialect.name == "postgresql" else None
    if driver is not None:
        driver.autocommit = True
    try:
        yield connection
    finally:
        if driver is not None and not driver.closed:
            driver.autocommit = False  # no transaction is open: an attribute, no I/O


@contextmanager
def reads_alone(session: Session) -> Iterator[Session]:
    """`session` for a block of reads, each statement a snapshot of its own: when the
    session has no transaction open, its connection runs them `statements_alone` (on
    PostgreSQL no ``BEGIN`` and no ``ROLLBACK`` round trip) and the session's
    transaction is ended after the block (nothing is open on the server). For reads only,
    whose caller relies on no snapshot shared between them (decision IR1); inside an
    open transaction they simply run in it."""
    if session.in_transaction():
        yield session
        return
    try:
        with statements_alone(session.connection()):
            yield session
    finally:
        session.rollback()


_HELD: ContextVar[RequestConnection | None] = ContextVar("calsync_request_connection", default=None)


@contextmanager
def holding(held: RequestConnection) -> Iterator[RequestConnection]:
    """Make `held` the current request's connection until the block ends (a context
    variable: worker threads the request starts through ``run_in_threadpool`` see it)."""
    token = _HELD.set(held)
    try:
        yield held
    finally:
        _HELD.reset(token)


def in_request() -> bool:
    """Whether the caller runs for an HTTP request of the API (inside
    `calsync.web.connections.RequestConnectionMiddleware`): an interactive write."""
    return _HELD.get() is not None


_PUSHED_KEY: Final = "calsync.read_model.pushed"


def note_pushed(session: Session, single: StoredEvent) -> None:
    """This transaction stored Google's answer to the push of `single`, a live single
    (`single` as its row reads now), and changed nothing else of it: its listed item is
    the same, only its document differs, and the read model's upkeep replaces that
    document before the commit rather than asking for a run after it (decision IG2)."""
    session.info[_PUSHED_KEY] = single


def pushed_single(session: Session) -> StoredEvent | None:
    """The single `note_pushed` noted in this transaction, if any (taken: asked once)."""
    found: StoredEvent | None = session.info.pop(_PUSHED_KEY, None)
    return found


def held_connection(engine: Engine) -> RequestConnection | None:
    """The connection the current request holds for `engine`, if any."""
    held = _HELD.get()
    return held if held is not None and held.engine is engine else None


class RequestSessions(sessionmaker[Session]):
    """A session factory whose sessions run on the current request's connection while one
    is held and permitted (`RequestConnection`), else on a connection of their own.

    A session begins and ends its own transaction on the held connection. One made
    while another is still open on it (nested use) gets a connection of its own rather
    than joining a transaction it would not own.
    """

    def __call__(self, **local_kw: Any) -> Session:
        engine = self.kw.get("bind")
        held = held_connection(engine) if isinstance(engine, Engine) else None
        usable = held is not None and (not held.checked_out or held.idle())
        if held is not None and usable and held.permitted and "bind" not in local_kw:
            local_kw["bind"] = held.connection()
        return super().__call__(**local_kw)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with factory.begin() as session:
        yield session
