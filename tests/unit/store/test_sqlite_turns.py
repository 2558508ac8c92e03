"""SQLite's writers of one process take turns first come, first served (decision JE1):
the line's order, its hand-over at commit, and where it steps aside."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from calsync.store import sqlite_turns
from calsync.store.db import make_engine
from calsync.store.sqlite_turns import TurnTakingConnection, WriterLine, _Waiter, writes


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("INSERT INTO t VALUES (1)", True),
        ("  update t SET x = 1", True),
        ("DELETE FROM t", True),
        ("REPLACE INTO t VALUES (1)", True),
        ("BEGIN IMMEDIATE", True),
        ("CREATE INDEX ix ON t (x)", True),
        ("DROP TABLE t", True),
        ("WITH c AS (SELECT 1) INSERT INTO t SELECT * FROM c", True),
        ("SELECT * FROM t", False),
        ("BEGIN", False),
        ("WITH c AS (SELECT 1) SELECT * FROM c", False),
        ("PRAGMA foreign_keys=ON", False),
        ("SELECT updated_at FROM t", False),
    ],
)
def test_writes_names_what_takes_the_write_lock(statement: str, expected: bool) -> None:
    assert writes(statement) is expected


def test_with_no_overtakes_waiters_are_served_in_the_order_they_came() -> None:
    line = WriterLine(max_overtakes=0)
    holder = object()
    assert line.take(holder, 1.0)
    served: list[int] = []
    waiters = []
    for n in range(5):
        waiter = threading.Thread(target=lambda n=n: served.append(n) if line.take(n, 5) else None)
        waiter.start()
        waiters.append(waiter)
        while len(line._waiting) <= n:  # each in line before the next comes
            threading.Event().wait(0.001)
    line.give_back(holder)
    for n in range(5):
        waiters[n].join(timeout=5)
        line.give_back(n)
    assert served == [0, 1, 2, 3, 4]
    assert line.holder is None


def _waiting_for(line: WriterLine, connection: object) -> tuple[threading.Thread, list[bool]]:
    """A thread whose `connection` waits in `line` (returned once it is in it)."""
    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(line.take(connection, 5)))
    thread.start()
    while not any(w.connection is connection for w in line._waiting):
        threading.Event().wait(0.001)
    return thread, got


def test_the_latest_waiter_is_handed_the_turn_until_the_oldest_is_passed_enough() -> None:
    line = WriterLine(max_overtakes=2, max_wait=60.0)
    assert line.take("first", 1.0)
    waiters = [_Waiter(name, 0, line._passes) for name in ("a", "b", "c")]
    line._waiting.extend(waiters)
    served = []
    for _ in range(3):
        holder = line.holder
        line.give_back(holder)
        served.append(line.holder)
        line._waiting.append(_Waiter(f"came in {holder}'s turn", 0, line._passes))
    # c, then the one that came meanwhile; then a has been passed twice: its turn
    assert served == ["c", "came in first's turn", "a"]
    assert [w.event.is_set() for w in waiters] == [True, False, True]


def test_a_waiter_older_than_the_bound_is_handed_the_turn() -> None:
    line = WriterLine(max_overtakes=100, max_wait=0.0)
    assert line.take("first", 1.0)
    thread, got = _waiting_for(line, "waiter")
    line.give_back("first")
    assert line.holder == "waiter"  # before its thread even ran
    assert line.take("newcomer", 0.01) is False
    thread.join(timeout=5)
    assert got == [True]


def test_a_turn_not_given_in_time_is_not_taken_and_leaves_the_line() -> None:
    line = WriterLine()
    assert line.take("first", 1.0)
    assert line.take("second", 0.01) is False
    assert not line._waiting
    line.give_back("first")
    assert line.holder is None


def test_only_the_holder_gives_the_turn_back() -> None:
    line = WriterLine()
    assert line.take("first", 1.0)
    line.give_back("someone else")
    assert line.holder == "first"


def _connections(tmp_path: Path) -> tuple[TurnTakingConnection, TurnTakingConnection]:
    path = str(tmp_path / "turns.db")
    made = []
    for _ in range(2):
        connection = sqlite3.connect(path, factory=TurnTakingConnection, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        sqlite_turns.join_line(path, 5.0)(connection, None)
        made.append(connection)
    made[0].execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    return made[0], made[1]


def test_a_transaction_holds_the_turn_from_its_first_write_to_its_end(tmp_path: Path) -> None:
    first, second = _connections(tmp_path)
    line = first.line
    assert line is not None
    assert line is second.line
    cursor = first.cursor()
    cursor.execute("SELECT * FROM t")
    assert line.holder is None  # a read outside a transaction takes no turn
    cursor.execute("INSERT INTO t VALUES (1)")
    assert line.holder is first
    # a writer of another thread waits for the commit, then writes
    done = threading.Event()

    def write() -> None:
        second.cursor().execute("INSERT INTO t VALUES (2)")
        done.set()
        second.commit()

    other = threading.Thread(target=write)
    other.start()
    assert not done.wait(0.05)
    first.commit()
    other.join(timeout=5)
    assert done.is_set()
    assert line.holder is None
    cursor.execute("BEGIN IMMEDIATE")
    assert line.holder is first
    first.rollback()
    assert line.holder is None


def test_a_threads_second_connection_does_not_wait_behind_its_first(tmp_path: Path) -> None:
    first, second = _connections(tmp_path)
    first.cursor().execute("INSERT INTO t VALUES (1)")
    second.execute("PRAGMA busy_timeout=10")
    # SQLite decides, as without the line: its lock is taken, so the write is refused
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        second.cursor().execute("INSERT INTO t VALUES (2)")
    assert first.line is not None
    assert first.line.holder is first
    first.commit()


def test_a_sqlite_file_engine_takes_turns_and_an_in_memory_one_does_not(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'e.db'}")
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert isinstance(raw, TurnTakingConnection)
        assert raw.line is not None
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        connection.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert raw.line.holder is raw
        connection.commit()
        assert raw.line.holder is None
    engine.dispose()
    memory = make_engine("sqlite://")  # each connection its own database: no line
    with memory.connect() as connection:
        assert not isinstance(connection.connection.dbapi_connection, TurnTakingConnection)
    memory.dispose()


def test_a_turn_left_by_a_connection_outside_any_transaction_is_handed_on(
    tmp_path: Path,
) -> None:
    first, second = _connections(tmp_path)
    line = first.line
    assert line is not None
    # a turn taken on another thread and never given back, with no transaction open
    taker = threading.Thread(target=line.take, args=(first, 1.0))
    taker.start()
    taker.join()
    assert line.holder is first
    second.timeout = 0.01
    second.cursor().execute("INSERT INTO t VALUES (1)")  # SQLite lets it write
    second.commit()
    assert line.holder is None  # and the stale turn is gone for the next writers
