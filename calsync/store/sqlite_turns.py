"""SQLite's writers take turns within a process (decisions JE1-JE2, JG1).

SQLite lets one connection write at a time. A connection that finds the write lock
taken sleeps in SQLite's busy handler and tries again: 1, 2, 5, 10 ... then 100 ms
sleeps, until ``busy_timeout``. The lock is free the moment its holder commits, but a
sleeper learns it only when it wakes, and a writer that arrives meanwhile takes it first:
under a steady stream of short writes, one waiter lost its turn to 257 of them and waited
4.1 s while no transaction held the lock longer than 0.27 s (``tests.perf.embedded_writes``,
docs/benchmarks.md). An API request of the embedded default hung for seconds; a worker's
could end in "database is locked".

So the connections of one process queue for the lock in a line (`WriterLine`) before
their transaction's first write, and the one that commits hands the turn straight to a
waiter: no waiter sleeps past a free lock. The turn goes to the latest waiter (with a
queue standing, most writers then wait little, where first come, first served made
every writer wait for the whole queue, JG1), but the longest waiter is passed over at
most `MAX_OVERTAKES` times and for at most `MAX_WAIT`: then the turn is its. SQLite's
own lock and busy handler stay underneath, for other processes (a ``calsync`` command
beside ``calsync dev``) and for the cases the line steps aside:

- a thread whose other connection holds the turn (a nested session that writes while
  its outer one is open) does not queue behind itself; SQLite decides, as before;
- a turn not given within the busy timeout is not waited for any longer (a writer that
  holds the turn while it waits for the waiter's own thread): SQLite decides, as before.

PostgreSQL is untouched: its row locks queue writers in the server.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections import deque
from typing import Any, Final

#: How long a SQLite writer waits for the write lock (SQLite's busy timeout, set on each
#: connection) and for its turn in this process's line, in milliseconds.
BUSY_TIMEOUT_MS: Final = 10_000

#: How often the longest waiter may be passed over by later comers, and how long it
#: waits at most before nobody may pass it (`WriterLine`, decision JG1).
MAX_OVERTAKES: int = 8
MAX_WAIT: float = 0.25

#: What begins a write on SQLite: a data-modifying statement, a schema change (the
#: migrations'), or ``BEGIN IMMEDIATE`` / ``EXCLUSIVE`` (a plain ``BEGIN`` takes no lock
#: until the transaction's first write).
_WRITE: Final = re.compile(
    r"\s*(insert|update|delete|replace|create|drop|alter|begin\s+(immediate|exclusive))\b",
    re.I,
)
_WITH: Final = re.compile(r"\s*with\b", re.I)
_MODIFIES: Final = re.compile(r"\b(insert|update|delete|replace)\b", re.I)


def writes(statement: str) -> bool:
    """Whether `statement` takes SQLite's write lock (a ``WITH`` whose text names a
    data-modifying verb counts: better a needless turn than a missed one)."""
    if _WRITE.match(statement):
        return True
    return bool(_WITH.match(statement) and _MODIFIES.search(statement))


class _Waiter:
    __slots__ = ("connection", "event", "passes_seen", "since", "thread")

    def __init__(self, connection: object, thread: int, passes: int) -> None:
        self.connection, self.thread, self.passes_seen = connection, thread, passes
        self.since = time.monotonic()
        self.event = threading.Event()


class WriterLine:
    """A turn to write, held by one connection at a time.

    `take` takes a free turn or waits for it (up to `timeout` seconds; `False` when not
    given). `give_back` hands the turn straight to a waiter: the latest to come, unless
    the longest waiter has been passed over `max_overtakes` times or has waited
    `max_wait` seconds - then to that one. So while a writer waits, the writers that came
    after it take the turn at most `max_overtakes` times in all, and each writer that
    came before it once. ``max_overtakes=0``: first come, first served (JE2)."""

    def __init__(self, max_overtakes: int | None = None, max_wait: float | None = None) -> None:
        self.max_overtakes = MAX_OVERTAKES if max_overtakes is None else max_overtakes
        self.max_wait = MAX_WAIT if max_wait is None else max_wait
        self._guard = threading.Lock()
        self._waiting: deque[_Waiter] = deque()
        self._passes = 0  # turns handed to a later comer while an earlier one waited
        self.holder: object | None = None
        self.holder_thread: int | None = None

    def take(self, connection: object, timeout: float) -> bool:
        me = threading.get_ident()
        with self._guard:
            if self.holder is None:
                self.holder, self.holder_thread = connection, me
                return True
            waiter = _Waiter(connection, me, self._passes)
            self._waiting.append(waiter)
        if waiter.event.wait(timeout):
            return True
        with self._guard:
            if waiter.event.is_set():  # handed over between the timeout and the guard
                return True
            self._waiting.remove(waiter)
            return False

    def give_back(self, connection: object) -> None:
        with self._guard:
            if self.holder is not connection:
                return
            if not self._waiting:
                self.holder = self.holder_thread = None
                return
            oldest = self._waiting[0]
            if (
                self._passes - oldest.passes_seen < self.max_overtakes
                and time.monotonic() - oldest.since < self.max_wait
            ):
                self._passes += len(self._waiting) > 1
                waiter = self._waiting.pop()
            else:
                waiter = self._waiting.popleft()
            self.holder, self.holder_thread = waiter.connection, waiter.thread
            waiter.event.set()


_LINES: dict[str, WriterLine] = {}
_LINES_GUARD: Final = threading.Lock()


def line_for(path: str) -> WriterLine:
    """The one line of this process for the database file `path`."""
    with _LINES_GUARD:
        return _LINES.setdefault(path, WriterLine())


def _free_if_stale(line: WriterLine) -> None:
    """Hand on the turn of a holder with no transaction open: it holds no lock of
    SQLite's (a turn no commit, rollback or close gave back would otherwise cost every
    later writer the whole timeout)."""
    holder = line.holder
    try:
        stale = holder is not None and not getattr(holder, "in_transaction", True)
    except sqlite3.ProgrammingError:  # closed
        stale = True
    if stale:
        line.give_back(holder)


class TurnTakingConnection(sqlite3.Connection):
    """A sqlite3 connection whose writes wait their turn in `line` (none: as sqlite3's),
    for at most `timeout` seconds (the busy timeout). Its cursors are `TurnTakingCursor`;
    its turn ends with its transaction (commit, rollback, close, or a statement after
    which no transaction is open)."""

    line: WriterLine | None = None
    timeout: float = 10.0

    def cursor(self, factory: Any = None) -> Any:  # always ours: `factory` is ignored
        return super().cursor(TurnTakingCursor)

    def take_turn(self, statement: str) -> None:
        line = self.line
        if line is None or line.holder is self or not writes(statement):
            return
        if line.holder_thread == threading.get_ident():
            return  # this thread's other connection holds the turn: SQLite decides
        if not line.take(self, self.timeout):
            _free_if_stale(line)  # SQLite decides this statement; the next ones queue

    def end_turn_unless_open(self) -> None:
        line = self.line
        if line is not None and line.holder is self and not self.in_transaction:
            line.give_back(self)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_turn_unless_open()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_turn_unless_open()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.line is not None:
                self.line.give_back(self)


class TurnTakingCursor(sqlite3.Cursor):
    """A cursor whose statements take their connection's turn to write first."""

    connection: TurnTakingConnection

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        self.connection.take_turn(sql)
        try:
            return super().execute(sql, parameters)
        finally:
            self.connection.end_turn_unless_open()

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any:
        self.connection.take_turn(sql)
        try:
            return super().executemany(sql, seq_of_parameters)
        finally:
            self.connection.end_turn_unless_open()


def join_line(path: str, busy_timeout: float) -> Any:
    """A ``connect`` listener that puts each new connection to the file `path` in the
    process's line for it, waiting at most `busy_timeout` seconds for a turn."""
    line = line_for(path)

    def joined(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, TurnTakingConnection):
            dbapi_connection.line = line
            dbapi_connection.timeout = busy_timeout

    return joined
