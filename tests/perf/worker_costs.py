"""What the worker's process spends on one API create, end to end, by thread and by part:
the push job as a Dramatiq message through the worker's machinery, and optionally its
echo. Prints figures only (issue 21, decisions IW).

Run: ``.venv/bin/python -m tests.perf.worker_costs [--users 5] [--rounds 3]
[--per-round 40] [--gap-ms 60] [--threads 4] [--echo] [--redis redis://127.0.0.1:6379/12]
[--database iw_worker_costs] [--no-analyse]``

Production mode, one process: a scratch database (dropped first), the emulator as Google
in its own process, `--users` users connected as `bench_api_load` connects them, the read
model filled, the database analysed. The main thread plays the API: it creates events
through the API's ASGI app (whose commit sends the ``push_outbox`` message to the
RedisBroker), one every `--gap-ms` (the spacing of issue 21's creates as one worker process
sees them), and with ``--echo`` sends each pushed event's echo as the webhook intake does
(`kicks.note_change`, then ``sync_calendar``) once the push is done. A Dramatiq ``Worker``
of `--threads` threads in this process (the CLI's worker timeout, calsync's middleware,
the collector pause switched on as in ``calsync worker``) runs the messages. Counted as the
worker's: the CPU of Dramatiq's threads (consumers, worker threads, Dramatiq's own) over
each round, from the first create to the last message processed; the main thread and the
ASGI app's threads are the API's and are left out. By part (thread CPU of wrappers, in the
worker's threads only): the actors' bodies, each middleware signal Dramatiq emits, the
consumers' `__next__` (fetches, decode; sleeps cost no CPU) and acks, and the broker's
Lua ``dispatch`` script calls by command (their client CPU and count).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import dramatiq
import redis
import sqlalchemy as sa
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

import calsync
from calsync import collector_pause
from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.emulator.testing import EmulatorControl
from calsync.events import read_model, upkeep
from calsync.providers import quota
from calsync.store import event_changes, instance_upkeep, outbox, sync_logs
from calsync.store.migrate import upgrade
from calsync.store.tables import Event
from calsync.sync import access_tokens, kicks, write_back, write_back_call
from calsync.web.app import create_app
from tests.perf.bench_api_load import populate
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_months import add_analyse_flag, analyse
from tests.perf.bench_sync import environment
from tests.perf.push_costs import creates

PARTS: dict[str, float] = defaultdict(float)
CALLS: Counter[str] = Counter()
MEASURING = threading.Event()


def _worker_thread() -> bool:
    return type(threading.current_thread()).__module__.startswith("dramatiq")


def timed(owner: Any, name: str, label: Callable[..., str] | str) -> None:
    """Wrap `owner.name` so that its thread CPU in Dramatiq's threads adds to a part."""
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not MEASURING.is_set() or not _worker_thread():
            return original(*args, **kwargs)
        started = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            key = label if isinstance(label, str) else label(*args, **kwargs)
            PARTS[key] += time.thread_time() - started
            CALLS[key] += 1

    setattr(owner, name, wrapper)


class Done(Middleware):
    """Counts processed messages by actor; the main thread waits on it."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.changed = threading.Condition()

    def after_process_message(self, broker: Any, message: Any, **_: Any) -> None:
        with self.changed:
            self.counts[message.actor_name] += 1
            self.changed.notify_all()

    def after_skip_message(self, broker: Any, message: Any) -> None:
        self.after_process_message(broker, message)

    def wait(self, actor: str, count: int, timeout: float = 60) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: self.counts[actor] >= count, timeout):
                raise AssertionError(f"{actor}: {self.counts[actor]} of {count} processed")


def dramatiq_cpu() -> dict[str, float]:
    """CPU seconds so far of each live Dramatiq thread, by kind (class and queue)."""
    found: dict[str, float] = defaultdict(float)
    for thread in threading.enumerate():
        if thread.ident is None or not type(thread).__module__.startswith("dramatiq"):
            continue
        try:
            used = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except OSError:
            continue
        queue = getattr(thread, "queue_name", "")
        found[f"{type(thread).__name__} {queue}".strip()] += used
    return found


def instrument(services: Any) -> None:
    broker = services.broker
    for owner, name, label in (
        (outbox, "claim_event", "lease taken"),
        (write_back, "read_stored", "event read"),
        (outbox, "count_attempt", "attempt counted"),
        (write_back_call.Write, "send", "Google call (token, quota, HTTP)"),
        (access_tokens.AccessTokens, "for_user", "  access token read"),
        (quota.QuotaLimiter, "acquire", "  quota and budget (Redis)"),
        (write_back._WriteBack, "_succeeded", "success's transaction (all)"),
        (event_changes, "record_pushed", "  record_pushed"),
        (outbox, "close", "  outbox closed"),
        (sync_logs, "record", "  sync log"),
        (instance_upkeep, "claim", "  records claimed"),
        (instance_upkeep, "replace_document", "  document replaced"),
        (outbox, "release_event", "lease released"),
    ):
        timed(owner, name, f"  push: {label}")
    timed(services.jobs.push_outbox, "fn", "actor push_outbox (the push)")
    timed(services.jobs.sync_calendar, "fn", "actor sync_calendar (the echo)")
    for when in ("emit_before", "emit_after"):
        timed(broker, when, lambda signal, *_a, _w=when, **_k: f"middleware {_w[5:]}_{signal}")
    for middleware in broker.middleware:
        for hook in ("before_process_message", "after_process_message"):
            if hook in type(middleware).__dict__:
                timed(middleware, hook, f"  {type(middleware).__name__}.{hook}")
    consumer = broker.consumer_class
    timed(consumer, "__next__", "consumer __next__ (polls, fetch, decode)")
    timed(consumer, "ack", "consumer ack")
    script = broker.scripts["dispatch"]

    class Counted:
        def __call__(self, args: list[Any], keys: list[Any]) -> Any:
            if MEASURING.is_set() and _worker_thread():
                started = time.thread_time()
                try:
                    return script(args=args, keys=keys)
                finally:
                    PARTS[f"  redis dispatch {args[0]}"] += time.thread_time() - started
                    CALLS[f"  redis dispatch {args[0]}"] += 1
            return script(args=args, keys=keys)

    broker.scripts["dispatch"] = Counted()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-round", type=int, default=40)
    parser.add_argument("--gap-ms", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--echo", action="store_true", help="each push's echo pull too")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--database", default="iw_worker_costs")
    add_analyse_flag(parser, when="after seeding")
    args = parser.parse_args()
    port = free_port()
    emulator = f"http://127.0.0.1:{port}"
    emulator_process = start_emulator(port)
    try:
        env = environment(emulator, 9, args.database) | {
            "CALSYNC_REDIS_URL": args.redis,
            "CALSYNC_API_RATE_LIMIT_PER_MINUTE": "100000000",
            "CALSYNC_SYNC_MIN_INTERVAL_SECONDS": "0",
        }
        redis.Redis.from_url(args.redis).flushdb()
        services = bootstrap(Settings.from_env(env))
        assert isinstance(services.broker, RedisBroker)
        upgrade(services.engine)
        tokens = populate(services, EmulatorControl(emulator), emulator, args.users, 20)
        read_model.fill(services.sessions, datetime.now(UTC))
        while upkeep.catch_up(services.sessions).more:
            pass
        analyse(services, args.analyse)
        collector_pause.activate(services.broker)
        done = Done()
        services.broker.add_middleware(done)
        instrument(services)
        app = create_app(services)
        loop = asyncio.new_event_loop()
        worker = dramatiq.Worker(services.broker, worker_threads=args.threads)
        worker.start()
        per_create: list[float] = []
        by_thread: dict[str, float] = defaultdict(float)
        parts_from: dict[str, float] = {}
        calls_from: Counter[str] = Counter()
        made_total = 0
        try:
            for round_ in range(args.rounds + 1):  # round 0 warms up
                if round_ == 1:
                    parts_from, calls_from = dict(PARTS), Counter(CALLS)
                before = dramatiq_cpu()
                MEASURING.set()
                pushes = done.counts["push_outbox"]
                echoes = done.counts["sync_calendar"]
                next_at = time.monotonic()
                for n in range(args.per_round):
                    made = loop.run_until_complete(creates(app, tokens, 1, made_total + n))
                    if args.echo:
                        done.wait("push_outbox", pushes + n + 1)
                        with services.sessions.begin() as session:
                            calendar = session.scalar(
                                sa.select(Event.calendar_id).where(Event.id == made[0])
                            )
                            assert calendar is not None
                            claim = kicks.note_change(session, calendar, services.clock())
                        if claim is not None:
                            services.jobs.sync_calendar.send(str(calendar))
                            echoes += 1
                    next_at += args.gap_ms / 1000
                    time.sleep(max(0.0, next_at - time.monotonic()))
                made_total += args.per_round
                done.wait("push_outbox", pushes + args.per_round)
                done.wait("sync_calendar", echoes)
                MEASURING.clear()
                after = dramatiq_cpu()
                used = {k: v - before.get(k, 0.0) for k, v in after.items()}
                if round_:
                    per_create.append(sum(used.values()) / args.per_round)
                    for kind, value in used.items():
                        by_thread[kind] += value
        finally:
            worker.stop()
        creates_measured = args.rounds * args.per_round
        print(
            f"worker CPU of one API create ({'with' if args.echo else 'no'} echo), "
            f"{args.rounds} rounds of {args.per_round}, one every {args.gap_ms:.0f} ms"
        )
        print(f"  code: {calsync.__file__}")
        rounds = " / ".join(f"{v * 1000:.2f}" for v in per_create)
        print(
            f"  Dramatiq's threads, ms a create: {rounds} (median "
            f"{statistics.median(per_create) * 1000:.2f})"
        )
        print("  by thread (ms a create):")
        for kind, value in sorted(by_thread.items(), key=lambda kv: -kv[1]):
            if value / creates_measured >= 5e-6:
                print(f"    {kind:44} {value / creates_measured * 1000:.3f}")
        print("  by part (thread CPU ms a create; calls a create):")
        for label in sorted(PARTS):
            value = PARTS[label] - parts_from.get(label, 0.0)
            calls = CALLS[label] - calls_from.get(label, 0)
            if calls:
                print(
                    f"    {label:52} {value / creates_measured * 1000:.3f}"
                    f"  ({calls / creates_measured:.2f})"
                )
        print(f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
        services.close()
    finally:
        emulator_process.terminate()
        emulator_process.wait()


if __name__ == "__main__":
    main()
