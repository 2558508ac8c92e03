"""Where an incremental pull of 10 changes WAITS: its wall clock split, printed, nothing
asserted (issue 19, decision IO1).

Run: ``.venv/bin/python -m tests.perf.pull_wall [--events 10000] [--pulls 40]
[--database NAME] [--redis URL]``

The set-up is `tests/perf/pull_costs.py`'s (production mode, PostgreSQL, Redis, the read
model on, bench_months' calendar, one user); the pulls are its incremental ones
(`patch_ten`, the read model's upkeep run after each, not measured). Each pull's wall
time is split by what the pulling thread waited on, from wrappers around the sends:
- PostgreSQL: each statement psycopg sends (``Cursor.execute``, ``BEGIN``/``COMMIT`` by
  ``Connection._exec_command``), wall from send to result, by statement shape, with the
  serving backend's CPU for it (`tests.perf.statement_cpu`);
- Redis: each command or pipeline (``send_packed_command`` to ``read_response``);
- Google: each HTTP request of the emulator (``httplib2.Http.request``);
- the rest: this thread's own Python work (and its waits for the CPU under load).
It also prints the thread's CPU, so that "wall minus waits" can be read against it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httplib2
import psycopg
import redis.connection
import sqlalchemy as sa

from calsync.bootstrap import bootstrap
from calsync.collector_pause import collector_paused
from calsync.config import Settings
from calsync.emulator.testing import build_calendar_service
from calsync.events import upkeep
from calsync.store import instance_upkeep, sync_logs
from calsync.store.tables import Event
from calsync.sync import reconcile
from calsync.sync.pull import pull_calendar
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_months import caught_up, patch_ten
from tests.perf.bench_sync import environment
from tests.perf.pull_costs import move_ten, seeded_and_filled
from tests.perf.statement_cpu import StatementCpu, per_statement, shape


@dataclasses.dataclass
class Waits:
    """Wall seconds waited by kind (and PostgreSQL by statement shape), and counts."""

    wall: dict[str, float] = dataclasses.field(default_factory=lambda: defaultdict(float))
    count: dict[str, int] = dataclasses.field(default_factory=lambda: defaultdict(int))
    on: bool = False
    sent: list[tuple[Any, Any]] = dataclasses.field(default_factory=list)
    keep: bool = False

    def add(self, key: str, seconds: float) -> None:
        if self.on:
            self.wall[key] += seconds
            self.count[key] += 1


@contextlib.contextmanager
def waits_timed(waits: Waits) -> Iterator[None]:
    """Wrap psycopg's, redis-py's and httplib2's sends for the block (this process)."""
    execute = psycopg.Cursor.execute
    command = psycopg.Connection._exec_command
    send = redis.connection.AbstractConnection.send_packed_command
    read = redis.connection.AbstractConnection.read_response
    request = httplib2.Http.request
    commit = psycopg.Connection.commit
    redis_started: dict[int, float] = {}

    def timed_execute(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        if waits.keep and waits.on:
            waits.sent.append((query, args[0] if args else kwargs.get("params")))
        try:
            return execute(cursor, query, *args, **kwargs)
        finally:
            text = query if isinstance(query, str) else str(query)
            waits.add("pg: " + shape(text)[:90], time.perf_counter() - started)

    def timed_command(connection: Any, cmd: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return command(connection, cmd, *args, **kwargs)
        finally:
            name = cmd.decode() if isinstance(cmd, bytes) else str(cmd)
            waits.add("pg: " + name.split()[0], time.perf_counter() - started)

    def timed_commit(connection: Any) -> None:
        started = time.perf_counter()
        try:
            commit(connection)
        finally:
            waits.add("pg: COMMIT (Connection.commit)", time.perf_counter() - started)

    def timed_send(connection: Any, packed: Any, check_health: bool = True) -> None:
        redis_started[id(connection)] = time.perf_counter()
        send(connection, packed, check_health)  # type: ignore[no-untyped-call]

    def timed_read(connection: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return read(connection, *args, **kwargs)
        finally:
            started = redis_started.pop(id(connection), None)
            if started is not None:
                waits.add("redis", time.perf_counter() - started)

    def timed_request(http: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return request(http, *args, **kwargs)
        finally:
            waits.add("google (emulator HTTP)", time.perf_counter() - started)

    patches = [
        (psycopg.Cursor, "execute", timed_execute),
        (psycopg.Connection, "_exec_command", timed_command),
        (redis.connection.AbstractConnection, "send_packed_command", timed_send),
        (redis.connection.AbstractConnection, "read_response", timed_read),
        (httplib2.Http, "request", timed_request),
        (psycopg.Connection, "commit", timed_commit),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, wrapper in patches:
        setattr(owner, name, wrapper)
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--pulls", type=int, default=40)
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--database", default="io_pull_wall")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--explain", action="store_true", help="then EXPLAIN ANALYZE one pull's")
    parser.add_argument(
        "--plain", action="store_true", help="no wrappers: wall p50 and thread CPU only"
    )
    parser.add_argument(
        "--log-part",
        type=int,
        default=0,
        help="then the log row and the records' count alone, N times each way, 3 rounds",
    )
    parser.add_argument(
        "--ab", type=int, default=0, help="then N pulls each: as before IO2 and now, interleaved"
    )
    parser.add_argument(
        "--is-ab",
        type=int,
        default=0,
        help="then N upcoming pulls each (move_ten), as before IS1 and now, 3 rounds",
    )
    args = parser.parse_args()
    emulator_port, api_port = free_port(), free_port()
    emulator = start_emulator(emulator_port)
    base = f"http://127.0.0.1:{emulator_port}"
    env = environment(base, api_port, args.database, args.redis) | {"CALSYNC_READ_MODEL": "true"}
    settings = dataclasses.replace(Settings.from_env(env), sync_min_interval_seconds=0.0)
    services = bootstrap(settings)
    try:
        side = seeded_and_filled(services, base, "wall@example.com", args.seed, args.events)
        pull_calendar(services, side.calendar_id)
        google = build_calendar_service(base, side.token)
        waits = Waits()
        walls: list[float] = []
        cpus: list[float] = []
        changed = itertools.count(100)
        if args.plain:
            plain(services, google, side, args.pulls, changed)
        if args.ab:
            as_before_and_now(services, google, side, args.ab, changed)
        if args.log_part:
            log_part(services, side, args.log_part)
        if args.is_ab:
            as_before_is1_and_now(services, google, side, args.is_ab, changed)
        if args.plain or args.ab or args.log_part or args.is_ab:
            return
        backend = StatementCpu()
        with waits_timed(waits):
            for _ in range(args.pulls):
                patch_ten(google, side.email, next(changed))
                with collector_paused(), per_statement(services.engine) as found:
                    waits.on = True
                    started = time.perf_counter()
                    cpu = time.thread_time()
                    outcome = pull_calendar(services, side.calendar_id)
                    cpus.append(time.thread_time() - cpu)
                    walls.append(time.perf_counter() - started)
                    waits.on = False
                backend.add(found)
                assert outcome.report is not None, outcome
                assert outcome.report.updated == 10, outcome
                caught_up(services)
        report(waits, walls, cpus, args.pulls)
        print(backend.report(args.pulls, "a pull"))
        prepared(services)
        if args.explain:
            explain_one(services, google, side, waits)
    finally:
        services.close()
        emulator.terminate()
        emulator.wait(10)


def _pulled(services: Any, calendar_id: Any) -> tuple[float, float]:
    """One pull: (wall, this thread's CPU) in seconds; the read model's upkeep after it."""
    with collector_paused():
        started, cpu = time.perf_counter(), time.thread_time()
        outcome = pull_calendar(services, calendar_id)
        measured = (time.perf_counter() - started, time.thread_time() - cpu)
    assert outcome.report is not None, outcome
    assert outcome.report.updated == 10, outcome
    caught_up(services)
    return measured


def plain(services: Any, google: Any, side: Any, pulls: int, changed: Any) -> None:
    """`pulls` pulls of 10 changes, nothing wrapped: wall p50 and mean thread CPU."""
    walls, cpus = [], []
    for _ in range(pulls):
        patch_ten(google, side.email, next(changed))
        wall, cpu = _pulled(services, side.calendar_id)
        walls.append(wall)
        cpus.append(cpu)
    print(
        f"plain: {pulls} pulls of 10 changes: wall p50 {statistics.median(walls) * 1000:.2f} "
        f"ms, p90 {sorted(walls)[int(0.9 * pulls)] * 1000:.2f} ms, thread CPU mean "
        f"{statistics.mean(cpus) * 1000:.2f} ms",
        flush=True,
    )


def as_before_and_now(services: Any, google: Any, side: Any, pulls: int, changed: Any) -> None:
    """Pulls as before decision IO2 (the log row and the records' count two statements)
    and now, taking turns: wall p50 and mean thread CPU of each way."""
    uncounted = upkeep.records_uncounted
    ways: dict[str, Any] = {"as before IO2": lambda _session: False, "now": uncounted}
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    try:
        for _ in range(pulls):
            for name, way in ways.items():
                upkeep.records_uncounted = way
                patch_ten(google, side.email, next(changed))
                found[name].append(_pulled(services, side.calendar_id))
    finally:
        upkeep.records_uncounted = uncounted
    for name, measured in found.items():
        print(
            f"  {name}: wall p50 {statistics.median(w for w, _ in measured) * 1000:.2f} ms, "
            f"thread CPU mean {statistics.mean(c for _, c in measured) * 1000:.2f} ms",
            flush=True,
        )


def as_before_is1_and_now(services: Any, google: Any, side: Any, pulls: int, changed: Any) -> None:
    """Pulls of 10 changes moved into the next days (reminders planned), as before
    decision IS1 (the raw ``UPDATE`` returns nothing; `reschedule_many` reads the rows)
    and now (the rows from its ``RETURNING``), taking turns, three rounds: wall p50 and
    mean thread CPU of each way."""
    written = reconcile.update_events

    def as_before(session: Any, rows: Any, **_: Any) -> dict[Any, Any]:
        return written(session, rows)

    ways: dict[str, Any] = {"as before IS1 (re-read)": as_before, "now (RETURNING)": written}
    try:
        for name, way in ways.items():
            reconcile.update_events = way
            counted = _statements_counted(services, google, side, changed)
            print(f"  {name}: statements a pull {counted}", flush=True)
        for round_ in range(3):
            found: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
            for _ in range(pulls):
                for name, way in ways.items():
                    reconcile.update_events = way
                    move_ten(google, side.email, next(changed))
                    found[name].append(_pulled(services, side.calendar_id))
            print(f"  round {round_ + 1}:", flush=True)
            for name, measured in found.items():
                print(
                    f"    {name}: wall p50 {statistics.median(w for w, _ in measured) * 1000:.2f}"
                    f" ms, thread CPU mean {statistics.mean(c for _, c in measured) * 1000:.2f}"
                    " ms",
                    flush=True,
                )
    finally:
        reconcile.update_events = written


def _statements_counted(services: Any, google: Any, side: Any, changed: Any) -> str:
    """Statements psycopg sent (``Cursor.execute``; ``BEGIN``/``COMMIT`` apart) in each
    of 5 upcoming pulls (`move_ten`), the upkeep after each not counted (JF2)."""
    sent = [0]
    execute = psycopg.Cursor.execute

    def counted(cursor: Any, *args: Any, **kwargs: Any) -> Any:
        sent[0] += 1
        return execute(cursor, *args, **kwargs)

    found = []
    for _ in range(5):
        move_ten(google, side.email, next(changed))
        sent[0] = 0
        psycopg.Cursor.execute = counted  # type: ignore[method-assign,assignment]
        try:
            with collector_paused():
                pull_calendar(services, side.calendar_id)
        finally:
            psycopg.Cursor.execute = execute  # type: ignore[method-assign]
        found.append(sent[0])
        caught_up(services)
    return " ".join(str(n) for n in found)


def log_part(services: Any, side: Any, runs: int) -> None:
    """The part IO2 changes, alone: in a transaction that has written an event row (the
    model's trigger records it), the sync log row and the count of the records - two
    statements (as before IO2) or one (now) -, then rolled back; `runs` times each way,
    taking turns, three rounds: median wall and mean thread CPU of the part."""
    ways = {"as before IO2 (INSERT, then the count)": False, "now (one statement)": True}
    for round_ in range(3):
        found: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
        for _ in range(runs):
            for name, together in ways.items():
                found[name].append(_log_and_count(services, side, together=together))
        print(f"  round {round_ + 1}:", flush=True)
        for name, measured in found.items():
            print(
                f"    {name}: wall p50 {statistics.median(w for w, _ in measured) * 1000:.3f}"
                f" ms, thread CPU mean {statistics.mean(c for _, c in measured) * 1000:.3f} ms",
                flush=True,
            )


def _log_and_count(services: Any, side: Any, *, together: bool) -> tuple[float, float]:
    """One transaction: an event row retitled, then the timed part, then rolled back."""
    session = services.sessions()
    try:
        session.begin()
        session.execute(
            sa.update(Event)
            .where(Event.calendar_id == side.calendar_id, Event.google_event_id == "s000001")
            .values(title="retitled")
        )
        started, cpu = time.perf_counter(), time.thread_time()
        values: dict[str, Any] = {
            "user_id": side.user_id,
            "calendar_id": side.calendar_id,
            "kind": sync_logs.LogKind.PULL,
            "status": sync_logs.LogStatus.OK,
            "at": datetime.now(UTC),
            "pulled": 10,
            "changed": 10,
            "details": {"inserted": 0, "updated": 10, "deleted": 0},
        }
        if together:
            counted = sync_logs.record(session, **values, count_records=upkeep.records_uncounted)
            assert counted == 1, counted
        else:
            sync_logs.record(session, **values)
            assert instance_upkeep.recorded_here(session, up_to=1) == 1
        measured = (time.perf_counter() - started, time.thread_time() - cpu)
        session.info.clear()
        session.rollback()
        return measured
    finally:
        session.close()


def prepared(services: Any) -> None:
    """The prepared statements of a pooled connection: custom plans against generic."""
    with services.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT generic_plans, custom_plans, statement FROM pg_prepared_statements"
        ).all()
    print("prepared statements of a pooled connection (generic, custom plans):")
    for generic, custom, statement in rows:
        print(f"  {generic:4d} {custom:4d}  {shape(statement)[:100]}")


def explain_one(services: Any, google: Any, side: Any, waits: Waits) -> None:
    """One more pull, its statements then run again under ``EXPLAIN ANALYZE`` (each in a
    transaction rolled back; the calendar's lease is no longer held then)."""
    patch_ten(google, side.email, 99)
    with waits_timed(waits):
        waits.on = waits.keep = True
        pull_calendar(services, side.calendar_id)
        waits.on = waits.keep = False
    raw = services.engine.raw_connection()
    try:
        for query, params in waits.sent:
            text = query if isinstance(query, str) else query.as_string(raw.driver_connection)
            cursor = raw.cursor()
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + text, params)
            print("----", shape(text)[:120])
            print("\n".join(row[0] for row in cursor.fetchall()))
            raw.rollback()
    finally:
        raw.close()


def report(waits: Waits, walls: list[float], cpus: list[float], pulls: int) -> None:
    mean_wall = statistics.mean(walls) * 1000
    print(
        f"incremental pull of 10 changes, {pulls} pulls: wall p50 "
        f"{statistics.median(walls) * 1000:.2f} ms, mean {mean_wall:.2f} ms; "
        f"the thread's CPU mean {statistics.mean(cpus) * 1000:.2f} ms; "
        f"thread {threading.get_ident()}",
        flush=True,
    )
    waited = 0.0
    kinds: dict[str, float] = defaultdict(float)
    for key, seconds in waits.wall.items():
        kinds["pg" if key.startswith("pg: ") else key] += seconds
    for kind, seconds in sorted(kinds.items(), key=lambda item: -item[1]):
        waited += seconds
        print(f"  {kind}: {seconds / pulls * 1000:.2f} ms a pull (mean)")
    print(f"  the rest (the thread's own work): {mean_wall - waited / pulls * 1000:.2f} ms")
    print("  PostgreSQL by statement (wall from send to result, mean a pull, count a pull):")
    for key, seconds in sorted(waits.wall.items(), key=lambda item: -item[1]):
        if key.startswith("pg: "):
            print(
                f"    {seconds / pulls * 1000:6.3f} ms  x{waits.count[key] / pulls:4.2f}  {key[4:]}"
            )


if __name__ == "__main__":
    main()
