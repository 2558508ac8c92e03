"""Where a full sync's wall time goes, against gcal_sync listing the same calendar.

Run: ``.venv/bin/python -m tests.perf.full_sync_costs [--events 10000] [--rounds 5]
[--database NAME] [--redis URL] [--timeline]``

One user's `bench_months` calendar (its generator, seeded through
google-api-python-client), PostgreSQL, Redis, the read model on and filled, the tables
analysed (as `bench_months` does). Then, `--rounds` times, taking turns: calsync's full
sync (`pull_calendar` with no sync token, the calendar's rows deleted first, as
`bench_months` does; then the read model's near upkeep after it, timed apart) and
gcal_sync's ``CalendarEventSyncManager.run()`` into a fresh in-memory store, each
against the same emulator process. Printed per round: wall time, this process's CPU,
the PostgreSQL backends' and the emulator's CPU (from ``/proc``); the process's peak
RSS at the end. ``--timeline`` also prints, for each calsync sync, when each step began
and ended, relative to the pull's start (each listing page's request, its mapping, the
reconcile, the ``COPY``, the reminders, the commit), to see what overlaps what.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import resource
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import sqlalchemy as sa
from gcal_sync.api import GoogleCalendarService
from gcal_sync.sync import CalendarEventSyncManager

from calsync.bootstrap import Services, bootstrap
from calsync.collector_pause import collector_paused
from calsync.config import Settings
from calsync.providers.google import event_listing
from calsync.store import pull_leases
from calsync.store.tables import Calendar, Event
from calsync.sync import pull, reconcile
from calsync.sync.pull import pull_calendar
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_months import caught_up
from tests.perf.bench_peer import TokenAuth
from tests.perf.bench_sync import environment
from tests.perf.pull_costs import proc_cpu, seeded_and_filled


@dataclasses.dataclass
class Timeline:
    """Steps of one sync: (name, thread, start, end), relative to `origin`."""

    origin: float = 0.0
    steps: list[tuple[str, str, float, float, float]] = dataclasses.field(default_factory=list)

    def show(self) -> None:
        for name, thread, start, end, cpu in sorted(self.steps, key=lambda s: s[2]):
            print(
                f"    {(start - self.origin) * 1000:8.1f} -> {(end - self.origin) * 1000:8.1f} ms "
                f"({(end - start) * 1000:7.1f}, thread CPU {cpu * 1000:6.1f}) {name} [{thread}]",
                flush=True,
            )


TIMELINE = Timeline()


def timed_step(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func`, recording each call's start and end in `TIMELINE`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            TIMELINE.steps.append(
                (
                    name,
                    threading.current_thread().name,
                    start,
                    time.perf_counter(),
                    time.thread_time() - cpu,
                )
            )

    return wrapper


def instrument() -> None:
    """Wrap the full sync's steps (module attributes, as their callers look them up)."""
    steps: list[tuple[Any, str, str]] = [
        (event_listing.EventListing, "_changes_answer", "page request"),
        (event_listing, "mapped_events", "page mapping"),
        (pull, "_list_everything_changed", "listing"),
        (pull, "_store", "store transaction (with commit)"),
        (pull, "apply_changes", "apply_changes"),
        (pull, "_record_run", "_record_run"),
        (pull_leases, "finish_pull", "finish_pull"),
        (reconcile, "_existing_rows", "_existing_rows"),
        (reconcile, "_guarded", "_guarded"),
        (reconcile, "plan", "plan"),
        (reconcile, "_steps_applied", "_steps_applied"),
        (reconcile, "events_changed", "events_changed"),
        (reconcile, "insert_events", "insert_events (COPY)"),
        (reconcile, "insert_attendees", "insert_attendees"),
        (reconcile, "reminder_candidates", "reminder_candidates"),
        (reconcile, "reschedule_many", "reschedule_many"),
        (psycopg.Copy, "finish", "COPY finish (PostgreSQL's tail)"),
    ]
    for owner, name, label in steps:
        setattr(owner, name, timed_step(label, getattr(owner, name)))


@dataclasses.dataclass
class Sample:
    wall: float
    cpu: float
    pg_cpu: float
    emulator_cpu: float
    #: this process's peak resident memory during the call (VmHWM, reset before it)
    peak_rss: float


def backends(services: Services, database: str) -> list[int]:
    with services.engine.connect() as connection:
        return list(
            connection.scalars(
                sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": database}
            ).all()
        )


@contextmanager
def measured(
    into: list[Sample], services: Services, database: str, emulator_pid: int
) -> Iterator[None]:
    pids = backends(services, database)
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to now
    pg, emu = sum(proc_cpu(p) for p in pids), proc_cpu(emulator_pid)
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    # a backend started during the call is not counted; the pool keeps its connections
    into.append(
        Sample(
            wall,
            cpu,
            sum(proc_cpu(p) for p in pids) - pg,
            proc_cpu(emulator_pid) - emu,
            peak_rss(),
        )
    )


def peak_rss() -> float:
    """This process's peak resident memory since the last reset, in MiB / 1,000 (`show`
    scales every field by 1,000, seconds to milliseconds)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024 / 1000
    return 0.0


def show(name: str, samples: list[Sample]) -> None:
    def cells(key: str) -> str:
        values = [getattr(s, key) * 1000 for s in samples]
        return f"median {statistics.median(values):,.0f} ({', '.join(f'{v:,.0f}' for v in values)})"

    print(
        f"  {name}: wall {cells('wall')} ms; CPU this process {cells('cpu')}, "
        f"PostgreSQL {cells('pg_cpu')}, emulator {cells('emulator_cpu')} ms; "
        f"peak RSS {cells('peak_rss')} MiB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--database", default="calsync_full_sync_costs")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/4")
    parser.add_argument("--timeline", action="store_true")
    parser.add_argument(
        "--ways",
        default="paused",
        help="comma-separated ways of calsync's pull, taken in turn round by round: "
        "'paused' (as the worker runs it: the cyclic collector paused, decisions S13 and "
        "N4), 'collector-on' (the collector running, as bench_months measured before HX1)",
    )
    args = parser.parse_args()
    emulator_port = free_port()
    emulator = start_emulator(emulator_port)
    base = f"http://127.0.0.1:{emulator_port}"
    env = environment(base, free_port(), args.database, args.redis) | {"CALSYNC_READ_MODEL": "true"}
    settings = dataclasses.replace(Settings.from_env(env), sync_min_interval_seconds=0.0)
    services = bootstrap(settings)
    try:
        side = seeded_and_filled(services, base, "fullsync@example.com", args.seed, args.events)
        if args.timeline:
            instrument()
        ways = args.ways.split(",")
        ours: dict[str, list[Sample]] = {way: [] for way in ways}
        near: list[Sample] = []
        theirs: list[Sample] = []
        for round_ in range(args.rounds):
            with services.sessions.begin() as session:
                session.execute(sa.delete(Event).where(Event.calendar_id == side.calendar_id))
                session.execute(
                    sa.update(Calendar)
                    .where(Calendar.id == side.calendar_id)
                    .values(sync_token=None)
                )
            caught_up(services)  # the deletes' records, not measured
            TIMELINE.steps.clear()
            way = ways[round_ % len(ways)]
            with measured(ours[way], services, args.database, emulator.pid), pulled_as(way):
                TIMELINE.origin = time.perf_counter()
                outcome = pull_calendar(services, side.calendar_id)
            assert outcome.full, outcome
            assert outcome.report is not None, outcome
            assert outcome.report.inserted == outcome.report.pulled, outcome.report
            if args.timeline:
                print(f"  round {round_ + 1}, calsync's full sync:", flush=True)
                TIMELINE.show()
            with measured(near, services, args.database, emulator.pid):
                caught_up_near(services)
            caught_up(services)  # the rest, not measured
            kept = asyncio.run(
                gcal_sync_run(
                    base,
                    side.token,
                    side.email,
                    lambda: measured(theirs, services, args.database, emulator.pid),
                )
            )
            print(
                f"  round {round_ + 1}: calsync ({way}) "
                f"{ours[way][-1].wall * 1000:,.0f} ms "
                f"(+ near upkeep {near[-1].wall * 1000:,.0f} ms), gcal_sync "
                f"{theirs[-1].wall * 1000:,.0f} ms ({kept} events)",
                flush=True,
            )
        print(f"full sync of {args.events:,} events, {args.rounds} rounds taking turns:")
        for way, samples in ours.items():
            if samples:
                show(f"calsync full sync (to its commit), {way}", samples)
        show("calsync near upkeep after it", near)
        show("gcal_sync full sync", theirs)
        for way, samples in ours.items():
            if samples:
                ratio = statistics.median(s.wall for s in samples) / statistics.median(
                    s.wall for s in theirs
                )
                print(f"  ratio of medians calsync ({way}) / gcal_sync: {ratio:.2f}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  this process's peak RSS {peak:,.0f} MiB (both libraries, seeding included)")
    finally:
        services.close()
        emulator.terminate()
        emulator.wait(10)


@contextmanager
def pulled_as(way: str) -> Iterator[None]:
    """The conditions of one way of `--ways`."""
    if way == "collector-on":
        yield
        return
    assert way == "paused", way
    with collector_paused():
        yield


def caught_up_near(services: Services) -> None:
    from calsync.events.upkeep import catch_up

    done = catch_up(services.sessions, run_for=3600.0, far=False)
    assert not done.more, done
    assert not done.failed, done


async def gcal_sync_run(base: str, token: str, email: str, measure: Callable[[], Any]) -> int:
    """gcal_sync's full sync into a fresh store, only ``run()`` measured (as bench_months
    times it: the HTTP session made before)."""
    async with aiohttp.ClientSession() as http:
        manager = CalendarEventSyncManager(
            GoogleCalendarService(TokenAuth(http, f"{base}/calendar/v3", token)),
            calendar_id=email,
        )
        with measure():
            await manager.run()
        return len(((await manager._store.async_load()) or {}).get("items", {}))


if __name__ == "__main__":
    main()
