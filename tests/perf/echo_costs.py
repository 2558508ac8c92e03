"""What the echo pull costs the worker, end to end: the pull after calsync's own push,
as a Dramatiq message through the worker's machinery, and its parts. Prints figures only
(issue 21, decisions IK).

Run: ``.venv/bin/python -m tests.perf.echo_costs [--users 5] [--rounds 3] [--per-round 30]
[--redis redis://127.0.0.1:6379/9] [--database ik_echo_costs] [--show]``

Production mode, one process: a scratch database (dropped first), the emulator as Google
in its own process, `--users` users connected as `bench_api_load` connects them, the read
model filled. Each round creates `--per-round` events through the API's ASGI app and
pushes each (``push_outbox``'s use case, unmeasured); then, taking turns per event, the
echo of that push - a pull of its calendar whose sync-token listing holds only the row
just pushed, with the etag the push stored - runs either
- ``direct``: `calsync.sync.pull.pull_calendar` called in this thread, as
  ``push_costs --echo`` does, timed with ``time.process_time``; or
- ``actor``: the webhook's kick (`kicks.note_change` in its own transaction, as the
  intake does, then the ``sync_calendar`` message sent to the RedisBroker), processed by
  a Dramatiq ``Worker`` of one thread with calsync's middleware (job observer: tracing,
  metrics, log context; the collector pause switched on as in ``calsync worker``;
  Dramatiq's own retries, time limit, etc.): the process's CPU from the send to the
  message's end (the main thread waits on an event, the worker's consumer thread fetches
  and acks), less the kick's transaction.
It prints per echo: CPU (median and mean of each round, both ways), statements, and the
parts of the direct pulls (thread CPU of the lease, the listing with its access-token
read and quota, the pull epoch, the storing transaction and within it the end of the
pull, `apply_changes`, the sync log and the commit's upkeep).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import dramatiq
import dramatiq.worker
import redis
import sqlalchemy as sa
from dramatiq.middleware import Middleware

import calsync
from calsync import collector_pause, job_observer
from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.emulator.testing import EmulatorControl
from calsync.events import read_model, upkeep
from calsync.providers import quota
from calsync.providers.budget import Priority, spending
from calsync.store import pull_leases
from calsync.store.events import WRITTEN_KEY
from calsync.store.migrate import upgrade
from calsync.store.tables import Event
from calsync.sync import access_tokens as access_tokens_module
from calsync.sync import kicks, pending_pulls, pull, write_back
from calsync.web.app import create_app
from tests.perf.bench_api_load import populate
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_sync import environment
from tests.perf.push_costs import creates

PARTS: dict[str, float] = defaultdict(float)
MEASURING = threading.Event()  # parts count only while an echo is measured
BEFORE_IK2 = threading.Event()  # the next direct pull runs as before decision IK2


def timed_part(owner: Any, name: str, label: str) -> None:
    """Wrap `owner.name` so that its thread CPU adds to ``PARTS[label]``."""
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            if MEASURING.is_set():
                PARTS[label] += time.thread_time() - started

    setattr(owner, name, wrapper)


class Done(Middleware):
    """Sets `event` after each processed message (the main thread waits on it)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def after_process_message(self, broker: Any, message: Any, **_: Any) -> None:
        self.event.set()

    def after_skip_message(self, broker: Any, message: Any) -> None:
        self.event.set()


def synced(services: Any, made: list[Any]) -> None:
    """Wait until every event of `made` is ``synced`` (pushed here or by the worker)."""
    for _ in range(600):
        with services.sessions() as session:
            left = session.scalar(
                sa.select(sa.func.count())
                .select_from(Event)
                .where(Event.id.in_(made), Event.sync_state != "synced")
            )
        if not left:
            return
        time.sleep(0.1)
    raise AssertionError(f"{left} events not pushed")


def pushed(services: Any, app: Any, tokens: list[str], count: int, round_: int) -> dict[Any, Any]:
    """`count` events created through the API and pushed: each one's calendar by id."""
    made = asyncio.get_event_loop().run_until_complete(creates(app, tokens, count, round_ * count))
    with services.sessions() as session:
        calendar_of = dict(
            session.execute(sa.select(Event.id, Event.calendar_id).where(Event.id.in_(made))).all()
        )
    for event_id in made:  # the worker may have pushed it already
        with spending(Priority.WRITE):
            write_back.push_outbox(services, services.providers, event_id)
    synced(services, made)
    time.sleep(0.2)  # the pushes' own kicks (read model) are processed
    return {event_id: calendar_of[event_id] for event_id in made}


def thread_cpu() -> dict[str, float]:
    """Each live thread's CPU seconds so far, by kind (class and queue)."""
    found: dict[str, float] = defaultdict(float)
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            clock = time.pthread_getcpuclockid(thread.ident)
            used = time.clock_gettime(clock)
        except OSError:
            continue
        kind = type(thread).__name__
        queue = getattr(getattr(thread, "consumer", None), "queue_name", "")
        found[f"{kind} {queue}".strip()] += used
    return found


def _before_ik2(original: Callable[..., Any]) -> Callable[..., Any]:
    """`finish_pull` as before IK2: its UPDATE flags the transaction as one that may have
    written events, so the commit reads the records (``recorded_here``)."""

    @functools.wraps(original)
    def finish(session: Any, *args: Any, **kwargs: Any) -> Any:
        if BEFORE_IK2.is_set():
            session.info[WRITTEN_KEY] = True
        return original(session, *args, **kwargs)

    return finish


class Echo:
    """Runs one echo a way and keeps the figures."""

    def __init__(self, services: Any, statements: list[str], done: Done) -> None:
        self.services, self.statements, self.done = services, statements, done
        self.cpu: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.sent: dict[str, list[int]] = defaultdict(list)
        self.threads: dict[str, float] = defaultdict(float)
        self.parts_from: dict[str, float] | None = None
        self.count = 0

    def run(self, way: str, calendar: Any) -> tuple[float, dict[str, float]]:
        """One echo pull of `calendar`: its CPU and its threads' CPU (the actor's)."""
        self.statements.clear()
        if way == "actor":
            with self.services.sessions.begin() as session:  # the intake's kick
                claim = kicks.note_change(session, calendar, self.services.clock())
            self.statements.clear()
            self.done.event.clear()
            before = thread_cpu()
            MEASURING.set()
            started = time.process_time()
            if claim is not None:
                self.services.jobs.sync_calendar.send(str(calendar))
            self.done.event.wait(30)
            spent = time.process_time() - started
            MEASURING.clear()
            after = thread_cpu()
            return spent, {k: v - before.get(k, 0.0) for k, v in after.items()}
        if way == "before IK2":
            BEFORE_IK2.set()
        MEASURING.set()
        started = time.process_time()
        with spending(Priority.NOTIFICATION):
            pull.pull_calendar(self.services, calendar)
        spent = time.process_time() - started
        MEASURING.clear()
        BEFORE_IK2.clear()
        return spent, {}

    def note(self, way: str, round_: int, spent: float, threads: dict[str, float]) -> None:
        if self.parts_from is None:
            self.parts_from = dict(PARTS)
        self.cpu[way][round_].append(spent)
        self.sent[way].append(len(self.statements))
        for kind, used in threads.items():
            self.threads[kind] += used
        self.count += 1

    def report(self, args: Any) -> None:
        print(f"echo pull, {args.rounds} rounds of {args.per_round} (ways alternating per event)")
        print(f"  code: {calsync.__file__}")
        for way, rounds in self.cpu.items():
            medians = " / ".join(f"{statistics.median(r) * 1000:.2f}" for r in rounds.values())
            means = " / ".join(f"{statistics.fmean(r) * 1000:.2f}" for r in rounds.values())
            print(f"  {way:10} CPU ms, medians {medians}; means {means}")
            print(f"             statements {statistics.fmean(self.sent[way]):.2f}")
        actors = sum(len(r) for r in self.cpu.get("actor", {}).values())
        if actors:
            print("  the actor's echoes by thread (CPU ms an echo):")
            for kind, used in sorted(self.threads.items(), key=lambda kv: -kv[1]):
                if used / actors >= 5e-6:
                    print(f"    {kind:40} {used / actors * 1000:.3f}")
        print("  parts of the pulls, all ways (thread CPU, ms a pull):")
        for label, value in PARTS.items():
            used = (value - (self.parts_from or {}).get(label, 0.0)) / max(self.count, 1)
            print(f"    {label:40} {used * 1000:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-round", type=int, default=30)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--database", default="ik_echo_costs")
    parser.add_argument("--show", action="store_true", help="print one echo's statements")
    parser.add_argument(
        "--ab",
        action="store_true",
        help="direct pulls only, taking turns: now, and as before IK2 (the records read)",
    )
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
        upgrade(services.engine)
        tokens = populate(services, EmulatorControl(emulator), emulator, args.users, 20)
        read_model.fill(services.sessions, datetime.now(UTC))
        while upkeep.catch_up(services.sessions).more:
            pass
        collector_pause.activate(services.broker)
        done = Done()
        services.broker.add_middleware(done)
        app = create_app(services)
        asyncio.set_event_loop(asyncio.new_event_loop())
        statements: list[str] = []
        sa.event.listen(
            services.engine,
            "before_cursor_execute",
            lambda _c, _cur, sql, *_a: statements.append(" ".join(sql.split())[:120]),
        )
        # the job's check before its lease: `has_room` where the tree has it (decisions IN)
        check = "has_room" if hasattr(services.budget, "has_room") else "room"
        for owner, name, label in (
            (pull_leases, "start_pull", "lease"),
            (access_tokens_module.AccessTokens, "for_user", "access token read"),
            (pending_pulls, "pull_starting", "pull epoch (Redis)"),
            (pull, "_list_everything_changed", "listing (token, quota, HTTP, parse)"),
            (pull, "_store", "storing transaction (all)"),
            (pull_leases, "finish_pull", "  end of the pull (UPDATE)"),
            (pull, "apply_changes", "  apply_changes"),
            (pull, "_record_run", "  sync log"),
            (upkeep, "refresh_written", "  before_commit upkeep"),
            (quota.QuotaLimiter, "acquire", "  quota and budget (Redis)"),
            (type(services.budget), check, "actor: budget check (Redis)"),
            (services.jobs.sync_calendar, "fn", "actor: its body (the pull in it)"),
            (job_observer.JobObserver, "before_process_message", "actor: observer before"),
            (job_observer.JobObserver, "after_process_message", "actor: observer after"),
            (type(services.broker), "enqueue", "actor: enqueue (the kick's send)"),
        ):
            timed_part(owner, name, label)
        if hasattr(pull_leases, "UNRECORDED"):  # a tree with IK2: its "before" can be run
            pull_leases.finish_pull = _before_ik2(pull_leases.finish_pull)
        worker = dramatiq.Worker(services.broker, worker_threads=1)  # the CLI's timeout
        worker.start()
        ways = ("now", "before IK2") if args.ab else ("direct", "actor")
        echo = Echo(services, statements, done)
        try:
            for round_ in range(args.rounds + 1):  # round 0 warms up
                made = pushed(services, app, tokens, args.per_round, round_)
                for n, calendar in enumerate(made.values()):
                    way = ways[(n + round_) % 2]
                    spent, threads = echo.run(way, calendar)
                    time.sleep(0.05)  # the kicked upkeep, if any, runs outside the figure
                    if round_:
                        echo.note(way, round_, spent, threads)
                    if args.show and round_ == 1 and n < 2:
                        print(f"one echo's statements ({way}):")
                        print("\n".join("  " + sql for sql in statements))
        finally:
            worker.stop()
        echo.report(args)
        print(f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
        services.close()
    finally:
        emulator_process.terminate()
        emulator_process.wait()


if __name__ == "__main__":
    main()
