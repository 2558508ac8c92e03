"""What the worker's push of one API create costs: its CPU in the worker's process, the
PostgreSQL backends' CPU it causes, its statements. Prints figures only (issue 21, IB).

Run: ``.venv/bin/python -m tests.perf.push_costs [--users 10] [--batches 6]
[--per-batch 40] [--redis redis://127.0.0.1:6379/7] [--database calsync_push_costs]
[--show]``

One process, production mode: a scratch database (dropped first), the emulator as Google
in its own process, `--users` users connected as `bench_api_load` connects them. Each
batch creates `--per-batch` events through the API's ASGI app (the load's create: 30
minutes tomorrow, a random user), then pushes each with the ``push_outbox`` job's use
case (`calsync.sync.write_back.push_outbox`, in this thread, under the job's priority),
timed with `time.process_time`; the PostgreSQL backends of the database are read from
``/proc`` around the pushes (the API's creates are not in that figure). ``--show``
prints one push's statements. Every push must end ``synced``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis
import sqlalchemy as sa

import calsync
from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.emulator.testing import EmulatorControl
from calsync.providers.budget import Priority, spending
from calsync.store.migrate import upgrade
from calsync.sync import write_back
from calsync.web.app import create_app
from tests.perf.bench_api_load import populate
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_sync import environment
from tests.perf.cpu_per_route import call
from tests.perf.process_cpu import backends, tree_cpu


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


def backend_cpu(engine: sa.Engine, database: str) -> float:
    return sum(tree_cpu(pid, {}) for pid in backends(engine, database))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--per-batch", type=int, default=40)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--database", default="calsync_push_costs")
    parser.add_argument("--show", action="store_true", help="print one push's statements")
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
        services = bootstrap(Settings.from_env(env))
        upgrade(services.engine)
        tokens = populate(services, EmulatorControl(emulator), emulator, args.users, 20)
        app = create_app(services)
        statements: list[str] = []
        sa.event.listen(
            services.engine,
            "before_cursor_execute",
            lambda _c, _cur, sql, *_a: statements.append(" ".join(sql.split())[:140]),
        )
        cpu = pg = 0.0
        sent = pushes = 0
        profiler = cProfile.Profile(time.process_time)
        loop = asyncio.new_event_loop()  # one loop: the app's async Redis client is bound to it
        for batch in range(args.batches + 1):  # batch 0 warms up, unmeasured
            made = loop.run_until_complete(
                creates(app, tokens, args.per_batch, batch * args.per_batch)
            )
            statements.clear()
            pg_before, started = backend_cpu(services.engine, args.database), time.process_time()
            if args.profile and batch:
                profiler.enable()
            for event_id in made:
                with spending(Priority.WRITE):
                    result = write_back.push_outbox(services, services.providers, event_id)
                assert result.status is write_back.PushStatus.SYNCED, result
            spent = time.process_time() - started
            profiler.disable()
            pg_spent = backend_cpu(services.engine, args.database) - pg_before
            if batch:
                cpu, pg, sent, pushes = (
                    cpu + spent,
                    pg + pg_spent,
                    sent + len(statements),
                    pushes + len(made),
                )
            if args.show and batch == 1:
                print(f"one push's statements ({len(statements) / len(made):.1f} a push):")
                for sql in statements[: len(statements) // len(made)]:
                    print("  " + sql)
        if args.profile:
            profiler.dump_stats(args.profile)
        print(f"push of one create, {pushes} pushes; {calsync.__file__}")
        print(f"  worker CPU      {cpu / pushes * 1000:.3f} ms")
        print(f"  PostgreSQL CPU  {pg / pushes * 1000:.3f} ms (backends of {args.database})")
        print(f"  statements      {sent / pushes:.2f}")
        print(f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
        services.close()
    finally:
        emulator_process.terminate()
        emulator_process.wait()


if __name__ == "__main__":
    main()
