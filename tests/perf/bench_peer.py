"""calsync against gcal_sync on the same emulator data, in the same run: prints ratios.

Run: ``.venv/bin/python -m tests.perf.bench_peer [--small 1000] [--large 10000] [--runs 3]``

Needs PostgreSQL and Redis (as the tests do) and the ``perf`` extra (``gcal-sync``);
uses a scratch database ``calsync_bench_peer``. One emulator process
(``python -m calsync.emulator``) serves both libraries the same calendars:
- ``peer-small@example.com``: `--small` single events;
- ``peer-large@example.com``: `--large` single events plus 60 recurring series (daily,
  weekly, monthly; some with a time zone, some with COUNT or UNTIL) with a moved and a
  cancelled instance in some of them.

Rows (best of `--runs`, each side timed the same way around the same work):
- full sync: calsync ``pull_calendar`` with no sync token into PostgreSQL (the rows of the
  calendar deleted first) against gcal_sync ``CalendarEventSyncManager.run()`` into a fresh
  ``InMemoryCalendarStore``;
- incremental sync of 10 changes: 10 events patched on the emulator, then each side pulls
  with its own sync token (both see the same 10 changes);
- one-month listing with series expanded: calsync ``list_views`` (the function behind
  ``GET /events?expand=true``, paged to the end at the API's largest page) against
  gcal_sync ``store_service.async_get_timeline()`` + ``timeline.overlapping(...)``.

gcal_sync keeps its copy in memory; calsync writes to and reads from PostgreSQL. The
figures are printed side by side with the ratio gcal_sync / calsync (> 1: calsync ahead).
Nothing is asserted except that both sides saw the same number of events.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import os
import platform
import pstats
import shlex
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import sqlalchemy as sa
from gcal_sync.api import GoogleCalendarService
from gcal_sync.auth import AbstractAuth
from gcal_sync.sync import CalendarEventSyncManager

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.emulator.testing import EmulatorControl, build_calendar_service
from calsync.events.listing import list_views
from calsync.store.migrate import upgrade
from calsync.store.tables import Calendar, Event
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.pull import pull_calendar
from calsync.web.list_query import MAX_PAGE, parse_list_query
from tests.google_users import connect_google_user
from tests.perf.bench_emulator import free_port, seed, start_emulator
from tests.perf.bench_sync import environment

DATABASE = "calsync_bench_peer"
MONTH = ("2026-03-01", "2026-03-31")  # inclusive dates, UTC (the user's zone)


class TokenAuth(AbstractAuth):
    """gcal_sync's auth hook with a fixed emulator access token."""

    def __init__(self, session: aiohttp.ClientSession, host: str, token: str) -> None:
        super().__init__(session, host)
        self._token = token

    async def async_get_access_token(self) -> str:
        return self._token


@dataclasses.dataclass
class Side:
    """One user and calendar as both libraries see it."""

    email: str
    token: str
    user_id: uuid.UUID
    calendar_id: uuid.UUID


def connect(services: Services, control: EmulatorControl, email: str) -> Side:
    account, granted = connect_google_user(services, control, email)
    sync_calendar_list(services, account.id)
    with services.sessions() as session:
        calendar_id = session.scalars(
            sa.select(Calendar.id).where(
                Calendar.user_id == account.id, Calendar.provider_calendar_id == email
            )
        ).one()
    return Side(email, granted["access_token"], account.id, calendar_id)


def seed_series(google: Any, email: str, count: int) -> None:
    """`count` recurring series in March 2026 and around it, with some exceptions."""
    rules = [
        ("RRULE:FREQ=DAILY;COUNT=60", None),
        ("RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR", "Europe/Berlin"),
        ("RRULE:FREQ=MONTHLY;BYMONTHDAY=15;UNTIL=20271231T000000Z", None),
        ("RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU", "America/New_York"),
    ]
    for n in range(count):
        rule, zone = rules[n % len(rules)]
        start: dict[str, str] = {"dateTime": f"2026-02-{1 + n % 28:02d}T{8 + n % 9:02d}:00:00"}
        end: dict[str, str] = {"dateTime": f"2026-02-{1 + n % 28:02d}T{9 + n % 9:02d}:00:00"}
        start["timeZone"] = end["timeZone"] = zone or "UTC"
        body = {
            "id": f"series{n:05d}",
            "summary": f"Series {n}",
            "start": start,
            "end": end,
            "recurrence": [rule],
        }
        google.events().insert(calendarId=email, body=body).execute()
        if n % 5 == 0:
            instances = (
                google.events()
                .instances(
                    calendarId=email,
                    eventId=body["id"],
                    timeMin="2026-03-01T00:00:00Z",
                    timeMax="2026-04-01T00:00:00Z",
                )
                .execute()["items"]
            )
            if len(instances) >= 2:
                google.events().patch(
                    calendarId=email,
                    eventId=instances[0]["id"],
                    body={"summary": f"Series {n} (moved)"},
                ).execute()
                google.events().delete(calendarId=email, eventId=instances[1]["id"]).execute()


def best(timings: list[float]) -> float:
    return min(timings)


def calsync_full(services: Services, side: Side, runs: int) -> tuple[list[float], int]:
    timings, stored = [], 0
    for _ in range(runs):
        with services.sessions.begin() as session:
            session.execute(sa.delete(Event).where(Event.calendar_id == side.calendar_id))
            session.execute(
                sa.update(Calendar).where(Calendar.id == side.calendar_id).values(sync_token=None)
            )
        started = time.perf_counter()
        outcome = pull_calendar(services, side.calendar_id)
        timings.append(time.perf_counter() - started)
        assert outcome.full, outcome
        assert outcome.report is not None, outcome
        with services.sessions() as session:
            stored = (
                session.scalar(
                    sa.select(sa.func.count()).where(Event.calendar_id == side.calendar_id)
                )
                or 0
            )
    return timings, stored


async def timed(step: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await step()
    return time.perf_counter() - started


async def peer_full(
    http: aiohttp.ClientSession, host: str, side: Side, runs: int
) -> tuple[list[float], CalendarEventSyncManager, int]:
    timings: list[float] = []
    manager = None
    for _ in range(runs):
        manager = CalendarEventSyncManager(
            GoogleCalendarService(TokenAuth(http, host, side.token)), calendar_id=side.email
        )
        timings.append(await timed(manager.run))
    assert manager is not None
    data = await manager._store.async_load()  # count what it stored
    return timings, manager, len((data or {}).get("items", {}))


def patch_ten(google: Any, email: str, run: int) -> None:
    for n in range(10):
        google.events().patch(
            calendarId=email, eventId=f"bench{run * 10 + n:07d}", body={"summary": f"r{run}"}
        ).execute()


def calsync_listing(services: Services, side: Side) -> tuple[float, int]:
    started = time.perf_counter()
    params = {"start_date": MONTH[0], "end_date": MONTH[1], "expand": "true"}
    params["limit"] = str(MAX_PAGE)
    total = 0
    while True:
        query = parse_list_query(params, user_zone="UTC")
        with services.sessions() as session:
            page, cursor = list_views(session, side.user_id, query)
        total += len(page)
        if cursor is None:
            break
        params["cursor"] = cursor
    return time.perf_counter() - started, total


async def peer_listing(manager: CalendarEventSyncManager) -> tuple[float, int]:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    end = datetime(2026, 4, 1, tzinfo=UTC)
    started = time.perf_counter()
    timeline = await manager.store_service.async_get_timeline()
    items = list(timeline.overlapping(start, end))
    return time.perf_counter() - started, len(items)


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, {model}; Python {platform.python_version()} "
        f"({platform.python_implementation()}); {platform.system()} {platform.release()}; "
        f"load average {load}"
    )


def row(name: str, ours: float, theirs: float) -> str:
    ratio = theirs / ours if ours > 0 else float("inf")
    verdict = "calsync ahead" if ratio > 1 else "gcal_sync ahead"
    return f"{name:<44} {ours * 1000:>10.1f} {theirs * 1000:>12.1f} {ratio:>8.2f}x  {verdict}"


async def run(args: argparse.Namespace) -> None:
    emulator_port = free_port()
    emulator = start_emulator(emulator_port)
    base = f"http://127.0.0.1:{emulator_port}"
    host = f"{base}/calendar/v3"
    env = environment(base, free_port(), DATABASE)
    settings = dataclasses.replace(Settings.from_env(env), sync_min_interval_seconds=0.0)
    services = bootstrap(settings)
    upgrade(services.engine)
    lines: list[str] = []
    profile: cProfile.Profile | None = None
    try:
        with EmulatorControl(base) as control:
            small = connect(services, control, "peer-small@example.com")
            large = connect(services, control, "peer-large@example.com")
            seed(base, small.token, small.email, args.small)
            seed(base, large.token, large.email, args.large)
            google = build_calendar_service(base, large.token)
            seed_series(google, large.email, args.series)
            async with aiohttp.ClientSession() as http:
                sizes = (
                    (small, f"{args.small:,} events"),
                    (large, f"{args.large:,} events + {args.series} series"),
                )
                for side, label in sizes:
                    ours, stored = calsync_full(services, side, args.runs)
                    theirs, _, kept = await peer_full(http, host, side, args.runs)
                    print(f"  full sync {side.email}: calsync stored {stored}, gcal_sync {kept}")
                    lines.append(row(f"full sync, {label}", best(ours), best(theirs)))
                _, manager, _ = await peer_full(http, host, large, 1)
                pull_calendar(services, large.calendar_id)  # both now hold a fresh token
                google = build_calendar_service(base, large.token)  # the old one went idle
                profiler = cProfile.Profile() if args.profile else None
                ours_incr: list[float] = []
                theirs_incr: list[float] = []
                for n in range(args.incremental_runs):
                    patch_ten(google, large.email, n)
                    started = time.perf_counter()
                    if profiler is not None:
                        profiler.enable()
                    outcome = pull_calendar(services, large.calendar_id)
                    ours_incr.append(time.perf_counter() - started)
                    if profiler is not None:
                        profiler.disable()
                    assert outcome.report is not None, outcome
                    assert outcome.report.updated == 10, outcome.report
                    theirs_incr.append(await timed(manager.run))
                lines.append(
                    row(
                        "incremental sync of 10 changes (median)",
                        statistics.median(ours_incr),
                        statistics.median(theirs_incr),
                    )
                )
                ours_list, theirs_list = [], []
                counts = set()
                for _ in range(args.runs):
                    seconds, count = calsync_listing(services, large)
                    ours_list.append(seconds)
                    peer_seconds, peer_count = await peer_listing(manager)
                    theirs_list.append(peer_seconds)
                    counts.add((count, peer_count))
                profile = profiler
                print(f"  one-month listing items (calsync, gcal_sync): {sorted(counts)}")
                lines.append(
                    row("one-month listing, series expanded", best(ours_list), best(theirs_list))
                )
    finally:
        services.close()
        emulator.terminate()
        emulator.wait(10)
    print()
    print(f"machine: {machine()}")
    arguments = " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"command: .venv/bin/python -m tests.perf.bench_peer {arguments}".rstrip())
    print(
        f"{'row':<44} {'calsync ms':>10} {'gcal_sync ms':>12} {'ratio':>9}  "
        "(gcal_sync / calsync; best of runs unless noted)"
    )
    for line in lines:
        print(line)
    if profile is not None:
        print("\ncalsync's incremental pulls, by cumulative time:")
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--series", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--incremental-runs", type=int, default=10)
    parser.add_argument(
        "--profile", action="store_true", help="cProfile calsync's incremental pulls"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
