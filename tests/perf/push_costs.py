"""What the worker's push of one API create costs: its CPU in the worker's process, the
PostgreSQL backends' CPU it causes, its statements. Prints figures only (issue 21, IB).

Run: ``.venv/bin/python -m tests.perf.push_costs [--users 10] [--batches 6]
[--per-batch 40] [--redis redis://127.0.0.1:6379/7] [--database calsync_push_costs]
[--no-read-model] [--jobs-after-batch] [--echo] [--show] [--no-analyse]``

One process, production mode: a scratch database (dropped first), the emulator as Google
in its own process, `--users` users connected as `bench_api_load` connects them, and
the read model filled as there (IB2's figures were taken with it off: `--no-read-model`),
the database analysed as autovacuum would (decision IP1; ``--no-analyse``: not). Each
batch creates `--per-batch` events through the API's ASGI app (the load's create: 30
minutes tomorrow, a random user), then pushes each with the ``push_outbox`` job's use
case (`calsync.sync.write_back.push_outbox`, in this thread, under the job's priority),
timed with `time.process_time`, then runs the ``refresh_read_model`` jobs that push
kicked (the actor's body, from an in-memory broker: what a worker would run for it, but
for Dramatiq's own handling of the message), timed apart and with it; the PostgreSQL
backends of the database are read from ``/proc`` around the pushes and their jobs (the
API's creates are not in that figure). ``--show`` prints one push's statements, those
of its jobs after a ``--`` line. Every push must end ``synced``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis
import sqlalchemy as sa
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker

import calsync
from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.emulator.testing import EmulatorControl
from calsync.events import read_model, upkeep
from calsync.providers.budget import Priority, spending
from calsync.store.migrate import upgrade
from calsync.store.tables import Event
from calsync.sync import pull, write_back
from calsync.web.app import create_app
from tests.perf.bench_api_load import populate
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_months import add_analyse_flag, analyse
from tests.perf.bench_sync import environment
from tests.perf.cpu_per_route import call
from tests.perf.process_cpu import backends, tree_cpu
from tests.perf.statement_cpu import StatementCpu, backend_ns, per_statement


def create_body(rng_hour: int) -> bytes:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start += timedelta(days=1, hours=rng_hour)
    end = start + timedelta(minutes=30)
    return orjson.dumps(
        {"title": "push-costs", "start_time": start.isoformat(), "end_time": end.isoformat()}
    )


async def creates(app: Any, tokens: list[str], count: int, first: int) -> list[uuid.UUID]:
    made = []
    for n in range(first, first + count):
        status, body = await call(
            app, "POST", "/events", token=tokens[n % len(tokens)], body=create_body(n % 12)
        )
        assert status == 201, body[:300]
        made.append(uuid.UUID(orjson.loads(body)["id"]))
    return made


def kicked_jobs(broker: StubBroker) -> int:
    """Take every message queued so far; the number of ``refresh_read_model`` ones."""
    found = 0
    for queue in broker.queues.values():
        while not queue.empty():
            found += Message.decode(queue.get_nowait()).actor_name == "refresh_read_model"
    return found


def backend_cpu(engine: sa.Engine, database: str) -> float:
    return sum(tree_cpu(pid, {}) for pid in backends(engine, database))


def wal_writer_cpu(engine: sa.Engine) -> float:
    """The server's WAL writer's CPU so far (seconds; it flushes what commits that did
    not wait left unflushed, and serves every database of the server)."""
    with engine.connect() as connection:
        pids = connection.scalars(
            sa.text("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'")
        ).all()
    return sum(backend_ns(pid) for pid in pids) / 1e9


@contextmanager
def _untimed(_engine: sa.Engine) -> Iterator[StatementCpu | None]:
    yield None


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--per-batch", type=int, default=40)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--database", default="calsync_push_costs")
    parser.add_argument(
        "--no-read-model", action="store_true", help="leave the read model off (IB's figures)"
    )
    parser.add_argument(
        "--jobs-after-batch",
        action="store_true",
        help="run the jobs the pushes kicked after each batch (a worker behind: the first"
        " run takes the batch's records), not after each push",
    )
    parser.add_argument(
        "--echo",
        action="store_true",
        help="after each push, pull its calendar (the echo's pull; not in the push's figures)",
    )
    parser.add_argument("--show", action="store_true", help="print one push's statements")
    add_analyse_flag(parser, when="after seeding")
    parser.add_argument(
        "--statements",
        action="store_true",
        help="print the pushes' PostgreSQL CPU by statement (tests.perf.statement_cpu)",
    )
    parser.add_argument("--profile", help="cProfile the measured pushes into this file")
    args = parser.parse_args()
    port = free_port()
    emulator = f"http://127.0.0.1:{port}"
    emulator_process = start_emulator(port)
    try:
        env = environment(emulator, 9, args.database) | {
            "CALSYNC_REDIS_URL": args.redis,
            "CALSYNC_API_RATE_LIMIT_PER_MINUTE": "100000000",
        }
        redis.Redis.from_url(args.redis).flushdb()
        broker = StubBroker()
        services = bootstrap(Settings.from_env(env), broker=broker)
        upgrade(services.engine)
        tokens = populate(services, EmulatorControl(emulator), emulator, args.users, 20)
        if not args.no_read_model:  # as bench_api_load: the scheduler's first tick
            read_model.fill(services.sessions, datetime.now(UTC))
            while upkeep.catch_up(services.sessions).more:
                pass
        analyse(services, args.analyse)  # as autovacuum would (decisions IM3, IP1)
        app = create_app(services)
        statements: list[str] = []
        sa.event.listen(
            services.engine,
            "before_cursor_execute",
            lambda _c, _cur, sql, *_a: statements.append(" ".join(sql.split())[:140]),
        )
        by_sql = StatementCpu()
        # The per-statement hooks read /proc twice a statement in this thread: only when
        # asked, so that the worker's figure holds the push alone (IR4).
        timed_statements = per_statement if args.statements else _untimed
        cpu = pg = job_cpu = echo_cpu = wal = 0.0
        echo_sent = 0
        sent = pushes = jobs = 0
        profiler = cProfile.Profile(time.process_time)
        loop = asyncio.new_event_loop()  # one loop: the app's async Redis client is bound to it
        for batch in range(args.batches + 1):  # batch 0 warms up, unmeasured
            made = loop.run_until_complete(
                creates(app, tokens, args.per_batch, batch * args.per_batch)
            )
            kicked_jobs(broker)  # the creates' push jobs and kicks: not measured
            with services.sessions() as session:
                calendar_of = dict(
                    session.execute(
                        sa.select(Event.id, Event.calendar_id).where(Event.id.in_(made))
                    ).all()
                )
            statements.clear()
            wal_before = wal_writer_cpu(services.engine)
            pg_before, started = backend_cpu(services.engine, args.database), time.process_time()
            if args.profile and batch:
                profiler.enable()
            ran = 0
            in_jobs = 0.0
            shown: tuple[list[str], list[str]] = ([], [])
            echo_time = 0.0
            for n, event_id in enumerate(made):
                with spending(Priority.WRITE), timed_statements(services.engine) as by_statement:
                    result = write_back.push_outbox(services, services.providers, event_id)
                if by_statement is not None and batch:
                    by_sql.add(by_statement)
                assert result.status is write_back.PushStatus.SYNCED, result
                pushed_sql = len(statements)
                job_started = time.process_time()
                for _ in range(0 if args.jobs_after_batch else kicked_jobs(broker)):
                    services.jobs.refresh_read_model.fn()
                    ran += 1
                in_jobs += time.process_time() - job_started
                if args.show and batch == 1 and n == 0:
                    shown = (statements[:pushed_sql], statements[pushed_sql:])
                if args.echo:
                    echo_started, echo_sql = time.process_time(), len(statements)
                    with spending(Priority.NOTIFICATION):
                        pull.pull_calendar(services, calendar_of[event_id])
                    for _ in range(kicked_jobs(broker)):
                        services.jobs.refresh_read_model.fn()
                    echo_cpu += time.process_time() - echo_started
                    echo_sent += len(statements) - echo_sql
                    if args.show and batch == 1 and n == 0:
                        print("one echo pull's statements:")
                        print("\n".join("  " + sql for sql in statements[echo_sql:]))
                    del statements[echo_sql:]
                    echo_time += time.process_time() - echo_started
            if args.jobs_after_batch:  # a worker behind: the batch's kicks run after it
                job_started = time.process_time()
                for _ in range(kicked_jobs(broker)):
                    services.jobs.refresh_read_model.fn()
                    ran += 1
                in_jobs += time.process_time() - job_started
            spent = time.process_time() - started - echo_time
            profiler.disable()
            pg_spent = backend_cpu(services.engine, args.database) - pg_before
            wal_spent = wal_writer_cpu(services.engine) - wal_before
            if batch:
                cpu, pg, sent, pushes = (
                    cpu + spent,
                    pg + pg_spent,
                    sent + len(statements),
                    pushes + len(made),
                )
                job_cpu, jobs = job_cpu + in_jobs, jobs + ran
                wal += wal_spent
            if args.show and batch == 1:
                print(f"one push's statements ({len(statements) / len(made):.1f} a push):")
                print("\n".join("  " + sql for sql in shown[0]))
                print("its jobs' statements:")
                print("\n".join("  " + sql for sql in shown[1]))
        if args.profile:
            profiler.dump_stats(args.profile)
        print(f"push of one create, {pushes} pushes; {calsync.__file__}")
        print(f"  worker CPU      {cpu / pushes * 1000:.3f} ms (push and its jobs)")
        print(f"    of it, jobs   {job_cpu / pushes * 1000:.3f} ms ({jobs / pushes:.2f} a push)")
        print(f"  PostgreSQL CPU  {pg / pushes * 1000:.3f} ms (backends of {args.database})")
        print(f"  WAL writer CPU  {wal / pushes * 1000:.3f} ms (the server's, every database)")
        print(f"  statements      {sent / pushes:.2f} (push and its jobs)")
        if args.echo:
            print(f"  echo pull CPU   {echo_cpu / pushes * 1000:.3f} ms (one pull after each push)")
            print(f"    statements    {echo_sent / pushes:.2f} (PostgreSQL's CPU: in the above)")
        if args.statements:
            print(by_sql.report(pushes, "a push (the push alone, not its jobs)"))
        print(f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
        services.close()
    finally:
        emulator_process.terminate()
        emulator_process.wait()


if __name__ == "__main__":
    main()
