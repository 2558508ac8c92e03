"""What an incremental pull's floor is on this host: gcal_sync's and calsync's pulls of
the same 10 changes taken in turns, and what one round trip and its client work cost
alone (issue 19, decision JF3). Prints figures, asserts nothing.

Run: ``.venv/bin/python -m tests.perf.pull_floor [--events 10000] [--pulls 40]
[--database NAME] [--redis URL]``

The set-up is `tests/perf/pull_costs.py`'s (production mode, PostgreSQL, Redis, the read
model on, bench_months' calendar, one user); gcal_sync syncs the same calendar in full
first. Then, `--pulls` times: 10 events retitled at Google (`patch_ten`), calsync's pull
(the read model's upkeep after it, not measured), gcal_sync's ``run`` (its incremental
sync of the same 10 changes): wall and this thread's CPU of each. Then each primitive
alone, 500 times: a raw psycopg ``SELECT 1`` (the round trip's floor), the same through
SQLAlchemy's ``Connection.execute`` and through a ``Session`` (a cached statement, its
result fetched), a Redis ``PING``, and the emulator's listing request through httplib2.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import httplib2
import psycopg
import redis
import sqlalchemy as sa
from gcal_sync.api import GoogleCalendarService
from gcal_sync.sync import CalendarEventSyncManager

from calsync.bootstrap import bootstrap
from calsync.collector_pause import collector_paused
from calsync.config import Settings
from calsync.emulator.testing import build_calendar_service
from calsync.store.tables import Calendar
from calsync.sync.pull import pull_calendar
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_months import caught_up, patch_ten
from tests.perf.bench_peer import TokenAuth
from tests.perf.bench_sync import environment
from tests.perf.pull_costs import seeded_and_filled


def _say(name: str, measured: list[tuple[float, float]]) -> None:
    walls = sorted(w for w, _ in measured)
    print(
        f"  {name}: wall p50 {statistics.median(walls) * 1000:.3f} ms, p90 "
        f"{walls[int(0.9 * len(walls))] * 1000:.3f} ms, thread CPU mean "
        f"{statistics.mean(c for _, c in measured) * 1000:.3f} ms",
        flush=True,
    )


def _timed(step: Callable[[], Any]) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.thread_time()
    step()
    return time.perf_counter() - started, time.thread_time() - cpu


def pulls_side_by_side(services: Any, side: Any, base: str, pulls: int) -> None:
    """calsync's and gcal_sync's pulls of the same 10 changes, in turns."""
    google = build_calendar_service(base, side.token)
    loop = asyncio.new_event_loop()
    http = loop.run_until_complete(_client())
    manager = CalendarEventSyncManager(
        GoogleCalendarService(TokenAuth(http, f"{base}/calendar/v3", side.token)),
        calendar_id=side.email,
    )
    loop.run_until_complete(manager.run())  # its full sync
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    changed = itertools.count(100)
    try:
        for _ in range(pulls):
            patch_ten(google, side.email, next(changed))
            with collector_paused():
                ours.append(_timed(lambda: pull_calendar(services, side.calendar_id)))
            caught_up(services)
            with collector_paused():
                theirs.append(_timed(lambda: loop.run_until_complete(manager.run())))
    finally:
        loop.run_until_complete(http.close())
        loop.close()
    print(f"incremental pulls of 10 changes, {pulls} each, in turns:", flush=True)
    _say("calsync pull_calendar", ours)
    _say("gcal_sync CalendarEventSyncManager.run", theirs)


async def _client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


def primitives(services: Any, side: Any, base: str, redis_url: str, runs: int) -> None:
    """One round trip of each kind and its client work, alone, `runs` times each."""
    url = services.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    one = sa.select(sa.literal(1))
    row = sa.select(Calendar.sync_token).where(Calendar.id == side.calendar_id)
    with (
        psycopg.connect(url, autocommit=True) as raw,
        services.engine.connect() as connection,
        services.sessions() as session,
    ):
        ways: dict[str, Callable[[], Any]] = {
            "psycopg SELECT 1 (autocommit)": lambda: raw.execute("SELECT 1").fetchall(),
            "SQLAlchemy Connection.execute(select 1)": lambda: connection.execute(one).all(),
            "Session.execute(a calendar's sync token)": lambda: session.execute(row).all(),
        }
        client = redis.Redis.from_url(redis_url)
        ways["Redis PING"] = client.ping
        http = httplib2.Http()
        listing = f"{base}/calendar/v3/calendars/{side.email}/events?maxResults=1"
        headers = {"authorization": f"Bearer {side.token}"}
        ways["httplib2 GET of one listed event"] = lambda: http.request(listing, headers=headers)
        for way in ways.values():
            way()  # connections opened, statements cached
        print(f"primitives, {runs} each, in turns:", flush=True)
        found: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
        with collector_paused():
            for _ in range(runs):
                for name, way in ways.items():
                    found[name].append(_timed(way))
        for name, measured in found.items():
            _say(name, measured)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--pulls", type=int, default=40)
    parser.add_argument("--runs", type=int, default=500, help="of each primitive")
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--database", default="jb_pull_floor")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/2")
    args = parser.parse_args()
    emulator_port, api_port = free_port(), free_port()
    emulator = start_emulator(emulator_port)
    base = f"http://127.0.0.1:{emulator_port}"
    env = environment(base, api_port, args.database, args.redis) | {"CALSYNC_READ_MODEL": "true"}
    settings = dataclasses.replace(Settings.from_env(env), sync_min_interval_seconds=0.0)
    services = bootstrap(settings)
    try:
        side = seeded_and_filled(services, base, "floor@example.com", args.seed, args.events)
        pull_calendar(services, side.calendar_id)
        pulls_side_by_side(services, side, base, args.pulls)
        primitives(services, side, base, args.redis, args.runs)
    finally:
        services.close()
        emulator.terminate()
        emulator.wait(10)


if __name__ == "__main__":
    main()
