"""SQLite's writers take turns in order within a process (decisions JE1-JE2, JG1).

SQLite lets one connection write at a time. A connection that finds the write lock
taken sleeps in SQLite's busy handler and tries again: 1, 2, 5, 10 ... then 100 ms
sleeps, until ``busy_timeout``. The lock is free the moment its holder commits, but a
sleeper learns it only when it wakes, and a writer that arrives meanwhile takes it first:
under a steady stream of short writes, one waiter lost its turn to 257 of them and waited
4.1 s while no transaction held the lock longer than 0.27 s (``tests.perf.embedded_writes``,
docs/benchmarks.md). An API request of the embedded default hung for seconds; a worker's
could end in "database is locked".

So the connections of one process queue for the lock in a line (`WriterLine`) before
their transaction's first write. The one that commits frees the turn and wakes the
longest waiter at once: no waiter sleeps past a free lock. A writer that comes while the
turn is free may take it before the woken waiter (it needs no thread switch: handing the
turn over outright queued every writer behind each waiter's wake-up, JG1), but only
`MAX_OVERTAKES` times in all while a writer waits, and not once the longest waiter has
waited `MAX_WAIT`: then the turn is handed to it. SQLite's own lock and busy handler
stay underneath, for other processes (a ``calsync`` command beside ``calsync dev``) and
for the cases the line steps aside:

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

#: How often newcomers may take a free turn before the longest waiter, and how long it
#: waits at most before nobody may (`WriterLine`, decision JG1).
MAX_OVERTAKES: int = 2
MAX_WAIT: float = 0.05
NEWEST_FIRST: bool = False

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
    __slots__ = ("barges_seen", "connection", "event", "handed", "since", "thread")

    def __init__(self, connection: object, thread: int, barges: int) -> None:
        self.connection, self.thread, self.barges_seen = connection, thread, barges
        self.since = time.monotonic()
        self.event = threading.Event()
        self.handed = False


class WriterLine:
    """A turn to write, held by one connection at a time; waiters are served first come,
    first served, and a newcomer may take a free turn before them only within a bound.

    `take` waits its turn (up to `timeout` seconds; `False` when not given). `give_back`
    frees the turn and wakes the longest waiter, which takes it if it is still free: a
    writer that comes meanwhile may take it first (barging: the common case needs no
    thread switch). Once the longest waiter has been passed `max_overtakes` times or has
    waited `max_wait` seconds, nobody passes it: `give_back` hands it the turn outright.
    So while a writer waits, newcomers take the turn at most `max_overtakes` times in all,
    and each writer already waiting once. ``max_overtakes=0``: a strict hand-over (JE2)."""

    def __init__(
        self,
        max_overtakes: int | None = None,
        max_wait: float | None = None,
        newest_first: bool | None = None,
    ) -> None:
        self.max_overtakes = MAX_OVERTAKES if max_overtakes is None else max_overtakes
        self.max_wait = MAX_WAIT if max_wait is None else max_wait
        self.newest_first = NEWEST_FIRST if newest_first is None else newest_first
        self._guard = threading.Lock()
        self._waiting: deque[_Waiter] = deque()
        self._barges = 0  # how many times a newcomer took the turn while others waited
        self.holder: object | None = None
        self.holder_thread: int | None = None

    def _may_pass(self, head: _Waiter) -> bool:
        return (
            self._barges - head.barges_seen < self.max_overtakes
            and time.monotonic() - head.since < self.max_wait
        )

    def take(self, connection: object, timeout: float) -> bool:
        me = threading.get_ident()
        with self._guard:
            if self.holder is None and (not self._waiting or self._may_pass(self._waiting[0])):
                self._barges += bool(self._waiting)
                self.holder, self.holder_thread = connection, me
                return True
            waiter = _Waiter(connection, me, self._barges)
            self._waiting.append(waiter)
        deadline = waiter.since + timeout
        while True:
            waiter.event.wait(max(0.0, deadline - time.monotonic()))
            with self._guard:
                if waiter.handed:
                    return True
                if self.holder is None and self._waiting[0] is waiter:
                    self._waiting.popleft()
                    self.holder, self.holder_thread = connection, me
                    return True
                if time.monotonic() >= deadline:
                    self._waiting.remove(waiter)
                    if self.holder is None and self._waiting:
                        self._waiting[0].event.set()  # it may have been woken for us
                    return False
                waiter.event.clear()  # woken, but a newcomer took the turn: wait again

    def give_back(self, connection: object) -> None:
        with self._guard:
            if self.holder is not connection:
                return
            self.holder = self.holder_thread = None
            if not self._waiting:
                return
            head = self._waiting[0]
            if not self._may_pass(head):  # passed enough: the turn is its, outright
                self._hand(self._waiting.popleft())
            elif self.newest_first:  # the latest comer's turn, outright
                self._barges += len(self._waiting) > 1
                self._hand(self._waiting.pop())
            else:
                head.event.set()

    def _hand(self, waiter: _Waiter) -> None:
        self.holder, self.holder_thread, waiter.handed = waiter.connection, waiter.thread, True
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
