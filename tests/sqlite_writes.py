"""Who waits for SQLite's write lock, how long, and who held it meanwhile.

`WriteLockLog.attach(engine)` records, for every transaction of a SQLite engine that
writes: the time its first write statement took (the wait for the database's one write
lock, plus the statement's own run, which is small beside a wait) - ``BEGIN IMMEDIATE``
counts as the first write -, how long it then held the lock (to its ``COMMIT`` or
``ROLLBACK``), the thread and the calsync code that wrote (`caller`), and every
"database is locked" error. Used by ``tests.perf.embedded_writes`` (the figures) and by
``tests/integration/sync/test_embedded_write_turns.py`` (while a write waits, no other
thread takes the lock more than once or twice).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

_WRITES = ("insert", "update", "delete", "replace", "begin immediate")


def caller() -> str:
    """The innermost calsync function outside the store and the innermost store
    function on the current stack, as ``use.case:function / store.module:function``."""
    frame: Any = sys._getframe(2)
    store = use = ""
    while frame is not None and not (store and use):
        module = frame.f_globals.get("__name__", "")
        if module.startswith("calsync.") and module not in ("calsync.store.db", "calsync.tracing"):
            name = f"{module.removeprefix('calsync.')}:{frame.f_code.co_name}"
            if module.startswith("calsync.store."):
                store = store or name
            else:
                use = use or name
        frame = frame.f_back
    return f"{use or '?'} / {store or '?'}"


@dataclass(frozen=True)
class Write:
    """One writing transaction: its first write's time (`waited`, seconds), then how
    long it held the write lock (`held`), who (`who`) on which thread, and when it got
    the lock and let it go (monotonic)."""

    who: str
    thread: str
    ident: int
    waited: float
    held: float
    acquired: float
    released: float


@dataclass
class WriteLockLog:
    """Every writing transaction of the engines it is attached to (thread-safe)."""

    writes: list[Write] = field(default_factory=list)
    locked_errors: list[str] = field(default_factory=list)
    _open: dict[int, tuple[str, float, float]] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, engine: Engine) -> None:
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)
        sa.event.listen(engine, "commit", self._end, retval=False)
        sa.event.listen(engine, "rollback", self._end, retval=False)
        sa.event.listen(engine, "handle_error", self._error)
        sa.event.listen(engine.pool, "reset", self._reset)

    def _reset(self, raw: Any, *_args: Any) -> None:
        self._close(raw)  # a connection given back with its transaction open

    def detach(self, engine: Engine) -> None:
        for name, fn in (
            ("before_cursor_execute", self._before),
            ("after_cursor_execute", self._after),
            ("commit", self._end),
            ("rollback", self._end),
            ("handle_error", self._error),
        ):
            sa.event.remove(engine, name, fn)
        sa.event.remove(engine.pool, "reset", self._reset)

    def _before(self, conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        raw = cursor.connection
        if raw.in_transaction or not statement.lstrip()[:15].lower().startswith(_WRITES):
            return
        conn.info["je_write_started"] = time.monotonic()

    def _after(self, conn: Any, cursor: Any, *_args: Any) -> None:
        started = conn.info.pop("je_write_started", None)
        raw = cursor.connection
        if started is None or not raw.in_transaction:
            if started is None and not raw.in_transaction and id(raw) in self._open:
                self._close(raw)  # a COMMIT sent as a statement
            return
        now = time.monotonic()
        entry = (caller(), started, now)
        with self._guard:
            self._open[id(raw)] = entry

    def _end(self, conn: Any) -> None:
        raw = conn.connection.dbapi_connection
        if raw is not None:
            self._close(raw)

    def _close(self, raw: Any) -> None:
        now = time.monotonic()
        with self._guard:
            entry = self._open.pop(id(raw), None)
            if entry is None:
                return
            who, started, acquired = entry
            thread = threading.current_thread()
            waited, held = acquired - started, now - acquired
            write = Write(who, thread.name, thread.ident or 0, waited, held, acquired, now)
            self.writes.append(write)

    def _error(self, context: Any) -> None:
        text = str(context.original_exception)
        if "database is locked" in text or "database table is locked" in text:
            with self._guard:
                self.locked_errors.append(f"{caller()}: {text}")
        context.connection and context.connection.info.pop("je_write_started", None)

    def holders_during(self, write: Write) -> list[Write]:
        """The writes that held the lock while `write` waited for it."""
        start = write.acquired - write.waited
        return [
            w
            for w in self.writes
            if w is not write and w.acquired < write.acquired and w.released > start
        ]

    def most_turns_of_one_thread(self, write: Write) -> int:
        """How many times one other thread took the lock, at most, while `write` waited
        (the line: once, or up to `MAX_OVERTAKES` more as a later comer, JG1; SQLite's busy
        handler: as often as it wrote)."""
        turns: dict[int, int] = {}
        for holder in self.holders_during(write):
            if holder.acquired > write.acquired - write.waited:  # took it during the wait
                turns[holder.ident] = turns.get(holder.ident, 0) + 1
        return max(turns.values(), default=0)

    def longest_hold(self) -> float:
        return max((w.held for w in self.writes), default=0.0)
