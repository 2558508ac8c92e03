"""PostgreSQL's CPU statement by statement: each statement's backend CPU, read from the
serving backend's ``/proc/<pid>/schedstat`` (nanoseconds on a CPU) just before the
statement is sent and just after its result is back, and the rest of the backend's CPU
between statements (the commit's work and its WAL flush, mostly) charged to the next
statement or to the end. The database server must run on this host (issue 21, IM).

`per_statement(engine)` hooks an engine for a block; `StatementCpu.report` prints the
statements by their shape (the SQL with its literals as sent: bound parameters are not
in it), their count a unit and their mean backend CPU, largest first.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

BETWEEN = "(between statements: COMMIT, BEGIN, idle work)"


def backend_ns(pid: int) -> int:
    """The backend's CPU so far in ns (its one thread's schedstat)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (FileNotFoundError, ProcessLookupError):
        return 0


def shape(sql: str) -> str:
    """A statement's shape: whitespace folded, `IN (...)` lists and numbers elided."""
    folded = " ".join(sql.split())
    folded = re.sub(r"\(\s*%\(\w+\)s(?:\s*,\s*%\(\w+\)s)+\s*\)", "(...)", folded)
    return re.sub(r"\b\d+\b", "N", folded)[:150]


@dataclass
class StatementCpu:
    """Backend ns by statement shape, and the count of each."""

    spent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    count: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    last: dict[int, int] = field(default_factory=dict)  # backend pid -> ns at last reading

    def add(self, other: StatementCpu) -> None:
        """Add `other`'s figures to these."""
        for sql, ns in other.spent.items():
            self.spent[sql] += ns
            self.count[sql] += other.count[sql]

    def report(self, units: int, label: str, top: int = 25) -> str:
        total = sum(self.spent.values())
        lines = [
            f"PostgreSQL backend CPU by statement, {label}: {total / units / 1e6:.3f} ms a unit"
        ]
        for sql, ns in sorted(self.spent.items(), key=lambda item: -item[1])[:top]:
            lines.append(
                f"  {ns / units / 1e3:8.1f} us  x{self.count[sql] / units:5.2f}"
                f"  {ns / max(self.count[sql], 1) / 1e3:7.1f} us each  {sql}"
            )
        return "\n".join(lines)


def _pid(conn: Any) -> int:
    return int(conn.connection.dbapi_connection.info.backend_pid)


@contextmanager
def per_statement(engine: sa.Engine) -> Iterator[StatementCpu]:
    """Record each statement's backend CPU on `engine` for the block."""
    found = StatementCpu()
    pending: dict[int, tuple[str, int]] = {}

    def before(conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        pid = _pid(conn)
        now = backend_ns(pid)
        if pid in found.last:
            found.spent[BETWEEN] += now - found.last[pid]
            found.count[BETWEEN] += 1
        pending[pid] = (shape(sql), now)

    def after(conn: Any, _cursor: Any, *_args: Any) -> None:
        pid = _pid(conn)
        now = backend_ns(pid)
        sql, started = pending.pop(pid, (BETWEEN, now))
        found.spent[sql] += now - started
        found.count[sql] += 1
        found.last[pid] = now

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    try:
        yield found
    finally:
        for pid, last in found.last.items():
            found.spent[BETWEEN] += backend_ns(pid) - last
        sa.event.remove(engine, "before_cursor_execute", before)
        sa.event.remove(engine, "after_cursor_execute", after)
