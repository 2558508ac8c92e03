"""Whole months listed the way clients read them, against gcal_sync: prints figures only.

Run: ``.venv/bin/python -m tests.perf.bench_months`` (29 minutes at full size on the 2-core
machine at load average 13-22); ``--quick`` for a small run (2-4 minutes). Needs PostgreSQL,
Redis (``--redis``, default database 4) and the ``perf`` extra (``gcal-sync``); uses a
scratch database (``--database``, default ``calsync_bench_months``), dropped and made anew.

Data (`generate`, fixed ``--seed``): per user a calendar of ``--events`` Google events
(10,000): about 7.5 % recurring series in four zones (Europe/Berlin, America/New_York,
Asia/Tokyo, Australia/Sydney; weekly, fortnightly, monthly, daily on weekdays, some
all-day; a third each with COUNT, UNTIL or no end; a quarter with EXDATEs), about 3.8 %
moved and 4 % cancelled instances of them, the rest timed and all-day singles spread
over 2026. It is seeded THROUGH THE EMULATOR as a Google client would: the real
google-api-python-client, ``events.insert`` in batches of 500, then ``events.patch``
and ``events.delete`` of instance ids. calsync then pulls it (`pull_calendar`).

Production mode: PostgreSQL, Redis, one API process (``calsync serve --workers 1``,
uvicorn, httptools, uvloop), one worker (``calsync worker``), the emulator in its own
process, every listing over HTTP with a real JWT. Figures:

- the read model's first fill (as the scheduler's first tick makes it; decisions X4),
  after the first pulls; every sync after it keeps the model;
- full sync of the first user's calendar (`pull_calendar` with no token, rows deleted
  first, with the cyclic collector paused as the worker's ``sync_calendar`` actor runs
  it, decisions S13 and HX1; best of ``--runs``), and gcal_sync's
  ``CalendarEventSyncManager.run()`` into a fresh in-memory store;
- incremental pull of 10 changes (10 ``events.patch`` at Google, then a pull, the
  collector paused as for the full sync), p50 of ``--incremental-runs``, both libraries;
- whole-month ``GET /events?expand=true``, every page (``limit=200``), for the 12
  distinct months of 2026: the first month from an API process that has never listed
  anything (cold process), the 11 others each for the first time (warm process, cold
  month), then all 12 again (warm); total per month and page p50/p99; for the cold
  process's month its pages and each process's CPU over it (`process_cpu.Meter`: API,
  worker, PostgreSQL's backends, this client, the host's rest; decision II);
  gcal_sync: ``async_get_timeline()`` + ``overlapping()`` for the same months (it
  re-parses every event per call), and the timeline built once and then queried;
- ``--users`` users (20) paging their own months at once through the one API process
  (each user starts on a different month and goes on to the next), for
  ``--concurrent-seconds``: pages a second, page p50/p99, the API process's RSS before
  and after, and each process's CPU over it (ms a page and cores: on a shared host the
  figure follows what the API, PostgreSQL and this client get of the two cores; IZ1);
- a 400-day expanded window (2026-01-01 to 2027-02-04), cold and warm, and its time
  per instance against a warm month's.

The client runs in this process on the same 2 cores as the server, PostgreSQL and the
emulator, as in the other benchmarks; the machine line says what else was running.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import httpx2 as httpx
import orjson
import sqlalchemy as sa
from dateutil.rrule import rrulestr
from gcal_sync.api import GoogleCalendarService
from gcal_sync.sync import CalendarEventSyncManager

from calsync.bootstrap import Services, bootstrap
from calsync.collector_pause import collector_paused
from calsync.config import Settings
from calsync.emulator.testing import EmulatorControl, build_calendar_service, new_batch
from calsync.events import read_model
from calsync.events.upkeep import catch_up
from calsync.store.migrate import upgrade
from calsync.store.tables import Calendar, Event
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.pull import pull_calendar
from calsync.web.auth.tokens import issue_token
from tests.google_users import connect_google_user
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_peer import Side, TokenAuth, connect
from tests.perf.bench_sync import environment
from tests.perf.process_cpu import Meter

DATABASE = "calsync_bench_months"
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney")
YEAR = 2026
MONTHS = [(date(YEAR, m, 1), date(YEAR + (m == 12), m % 12 + 1, 1)) for m in range(1, 13)]
WINDOW_400 = (date(YEAR, 1, 1), date(YEAR + 1, 2, 4))  # end_date inclusive: 400 days
PAGE = 200
BATCH = 500


# --- the generator ----------------------------------------------------------------------


@dataclasses.dataclass
class Generated:
    """What `generate` asks Google for: inserts, then instance patches and deletes."""

    inserts: list[dict[str, Any]]
    patches: list[tuple[str, dict[str, Any]]]
    deletes: list[str]
    series: int
    singles: int


def _rule(rng: random.Random, n: int, start: datetime, all_day: bool) -> tuple[str, str]:
    """An RRULE line and its kind. The start is always an occurrence of the rule (where
    it is not, RFC 5545 and dateutil disagree on whether COUNT counts it)."""
    kind = rng.choices(
        ["weekly", "fortnightly", "monthly", "weekdays", "weekly2"], weights=[45, 12, 25, 3, 15]
    )[0]
    days = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
    own = days[start.weekday()]
    if kind == "weekdays" and start.weekday() >= 5:
        kind = "weekly"
    body = {
        "weekly": "FREQ=WEEKLY",
        "fortnightly": "FREQ=WEEKLY;INTERVAL=2",
        "monthly": f"FREQ=MONTHLY;BYMONTHDAY={start.day}",
        "weekdays": "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR",
        "weekly2": "FREQ=WEEKLY;BYDAY="
        + ",".join(d for d in days if d == own or d == days[(start.weekday() + 2) % 7]),
    }[kind]
    end = n % 3
    if end == 0:
        body += f";COUNT={rng.randint(5, 60)}"
    elif end == 1:
        until = start + timedelta(days=rng.randint(60, 420))
        if all_day:
            body += f";UNTIL={until:%Y%m%d}"
        else:
            body += f";UNTIL={until.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return "RRULE:" + body, kind


def _occurrences(rule: str, start: datetime, exdates: set[datetime], limit: date) -> list[datetime]:
    """The series' starts before `limit` (at most 400), without the EXDATEs."""
    found: list[datetime] = []
    for moment in rrulestr(rule.removeprefix("RRULE:"), dtstart=start):
        if moment.date() >= limit or len(found) >= 400:
            break
        if moment not in exdates:
            found.append(moment)
    return found


def generate(seed: int, events: int) -> Generated:
    """A realistic calendar of `events` Google events (series, exceptions, singles)."""
    rng = random.Random(seed)
    n_series = round(events * 0.075)
    n_moved = round(events * 0.038)
    n_cancelled = round(events * 0.04)
    n_singles = events - n_series - n_moved - n_cancelled
    inserts: list[dict[str, Any]] = []
    candidates: list[tuple[str, datetime, bool, str, int]] = []  # id, start, all-day, zone, min
    for n in range(n_series):
        zone = ZONES[n % len(ZONES)]
        all_day = rng.random() < 0.10
        day = date(2025, 10, 1) + timedelta(days=rng.randint(0, 270))
        if all_day:
            start = datetime(day.year, day.month, day.day)
            minutes = 0
        else:
            start = datetime(day.year, day.month, day.day, rng.randint(7, 18), rng.choice((0, 30)))
            start = start.replace(tzinfo=ZoneInfo(zone))
            minutes = rng.choice((15, 30, 45, 60, 90))
        rule, _kind = _rule(rng, n, start, all_day)
        recurrence = [rule]
        exdates: set[datetime] = set()
        first = _occurrences(rule, start, set(), date(2027, 3, 1))
        if rng.random() < 0.25 and len(first) > 4:
            for moment in rng.sample(first[1:], min(len(first) - 1, rng.randint(1, 3))):
                exdates.add(moment)
                if all_day:
                    recurrence.append(f"EXDATE;VALUE=DATE:{moment:%Y%m%d}")
                else:
                    recurrence.append(f"EXDATE;TZID={zone}:{moment:%Y%m%dT%H%M%S}")
        event_id = f"r{n:05d}"
        body: dict[str, Any] = {"id": event_id, "summary": f"series {n}", "recurrence": recurrence}
        if all_day:
            body["start"] = {"date": start.date().isoformat()}
            body["end"] = {"date": (start.date() + timedelta(days=1)).isoformat()}
        else:
            body["start"] = {"dateTime": start.replace(tzinfo=None).isoformat(), "timeZone": zone}
            end = start + timedelta(minutes=minutes)
            body["end"] = {"dateTime": end.replace(tzinfo=None).isoformat(), "timeZone": zone}
        inserts.append(body)
        for moment in _occurrences(rule, start, exdates, date(2027, 1, 1)):
            if moment.year == YEAR:
                candidates.append((event_id, moment, all_day, zone, minutes))
    picked = rng.sample(candidates, min(len(candidates), n_moved + n_cancelled))
    patches: list[tuple[str, dict[str, Any]]] = []
    deletes: list[str] = []
    for k, (event_id, moment, all_day, zone, minutes) in enumerate(picked):
        if all_day:
            instance_id = f"{event_id}_{moment:%Y%m%d}"
        else:
            instance_id = f"{event_id}_{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        if k >= n_moved:
            deletes.append(instance_id)
            continue
        if all_day:
            moved = moment.date() + timedelta(days=rng.randint(1, 3))
            times = {
                "start": {"date": moved.isoformat()},
                "end": {"date": (moved + timedelta(days=1)).isoformat()},
            }
        else:
            moved_at = moment + timedelta(hours=rng.choice((-2, -1, 1, 2, 3, 24)))
            local = moved_at.replace(tzinfo=None)
            times = {
                "start": {"dateTime": local.isoformat(), "timeZone": zone},
                "end": {
                    "dateTime": (local + timedelta(minutes=minutes)).isoformat(),
                    "timeZone": zone,
                },
            }
        patches.append((instance_id, {"summary": f"moved {k}", **times}))
    for n in range(n_singles):
        zone = rng.choice(ZONES)
        day = date(YEAR, 1, 1) + timedelta(days=rng.randint(0, 364))
        body = {"id": f"s{n:06d}", "summary": f"single {n}"}
        if rng.random() < 0.15:
            body["start"] = {"date": day.isoformat()}
            body["end"] = {"date": (day + timedelta(days=rng.choice((1, 1, 1, 2, 3)))).isoformat()}
        else:
            start = datetime(
                day.year, day.month, day.day, rng.randint(6, 20), rng.choice((0, 15, 30, 45))
            )
            end = start + timedelta(minutes=rng.choice((15, 30, 60, 90, 120)))
            body["start"] = {"dateTime": start.isoformat(), "timeZone": zone}
            body["end"] = {"dateTime": end.isoformat(), "timeZone": zone}
        if rng.random() < 0.3:
            body["description"] = "agenda: " + " ".join(
                rng.choice(("plan", "review", "sync", "notes")) for _ in range(20)
            )
        inserts.append(body)
    return Generated(inserts, patches, deletes, n_series, n_singles)


def seed_through_google(base: str, token: str, email: str, calendar: Generated) -> float:
    """Send `calendar` to the emulator with google-api-python-client batches; seconds."""
    google = build_calendar_service(base, token)
    failures: list[str] = []

    def check(request_id: str, _response: Any, error: Exception | None) -> None:
        if error is not None:
            failures.append(f"{request_id}: {error}")

    started = time.perf_counter()
    calls: list[Any] = [google.events().insert(calendarId=email, body=b) for b in calendar.inserts]
    calls += [
        google.events().patch(calendarId=email, eventId=i, body=b) for i, b in calendar.patches
    ]
    calls += [google.events().delete(calendarId=email, eventId=i) for i in calendar.deletes]
    for first in range(0, len(calls), BATCH):
        batch = new_batch(base, check)
        for call in calls[first : first + BATCH]:
            batch.add(call)
        batch.execute(http=google._http)
    if failures:
        raise RuntimeError(f"{len(failures)} seeding calls failed, e.g. {failures[:3]}")
    return time.perf_counter() - started


# --- processes --------------------------------------------------------------------------


@contextmanager
def process(argv: list[str], env: dict[str, str], ready: Callable[[], bool]) -> Iterator[int]:
    """Run `argv` until the block ends; yields its pid once `ready()`."""
    child = subprocess.Popen(argv, env={**os.environ, **env})
    try:
        deadline = time.monotonic() + 120
        while not ready():
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"did not start ({child.poll()}): {shlex.join(argv)}")
            time.sleep(0.1)
        yield child.pid
    finally:
        child.terminate()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def api_up(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 500
        except httpx.TransportError:
            return False

    return check


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- listing over HTTP ------------------------------------------------------------------


@dataclasses.dataclass
class Listing:
    seconds: float
    pages: list[float]
    items: int


async def list_window(
    http: aiohttp.ClientSession, api: str, token: str, first: date, last: date
) -> Listing:
    """Every page of ``GET /events?expand=true`` from `first` to `last` (inclusive)."""
    params = {
        "start_date": first.isoformat(),
        "end_date": last.isoformat(),
        "expand": "true",
        "limit": str(PAGE),
    }
    headers = {"Authorization": f"Bearer {token}"}
    pages: list[float] = []
    items = 0
    started = time.perf_counter()
    while True:
        page_started = time.perf_counter()
        async with http.get(f"{api}/events", params=params, headers=headers) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(f"{response.status}: {body[:300]!r}")
        pages.append(time.perf_counter() - page_started)
        answer = orjson.loads(body)
        items += len(answer["events"])
        if not answer.get("next_cursor"):
            break
        params["cursor"] = answer["next_cursor"]
    return Listing(time.perf_counter() - started, pages, items)


def month_last(month: tuple[date, date]) -> date:
    return month[1] - timedelta(days=1)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


# --- gcal_sync --------------------------------------------------------------------------


async def timed(step: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await step()
    return time.perf_counter() - started


async def peer_month(
    manager: CalendarEventSyncManager, month: tuple[date, date]
) -> tuple[float, int]:
    start = datetime(month[0].year, month[0].month, 1, tzinfo=UTC)
    end = datetime(month[1].year, month[1].month, 1, tzinfo=UTC)
    started = time.perf_counter()
    timeline = await manager.store_service.async_get_timeline()
    items = list(timeline.overlapping(start, end))
    return time.perf_counter() - started, len(items)


# --- the run ----------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, {model}; Python {platform.python_version()}; "
        f"{platform.system()} {platform.release()}; load average {load}"
    )


def analyse(services: Services, enabled: bool = True) -> None:
    """``ANALYZE`` the tables, as autovacuum does in production soon after a bulk write
    (this host's PostgreSQL runs with autovacuum off: without it every plan is made
    without statistics; decision HJ1). Off with ``--no-analyze``, to measure that."""
    if not enabled or services.engine.dialect.name != "postgresql":
        return
    with services.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(sa.text("ANALYZE"))


def add_analyse_flag(parser: argparse.ArgumentParser, *, when: str) -> None:
    """The ``--no-analyse`` (``--no-analyze``) flag of the scripts that call `analyse`:
    ``args.analyse`` is False with it (their figures before decision IP1)."""
    parser.add_argument(
        "--no-analyse",
        "--no-analyze",
        dest="analyse",
        action="store_false",
        help=f"no ANALYZE {when} (the figures before decision IP1)",
    )


def patch_ten(google: Any, email: str, run: int) -> None:
    for n in range(10):
        google.events().patch(
            calendarId=email, eventId=f"s{run * 10 + n:06d}", body={"summary": f"changed {run}"}
        ).execute()


@dataclasses.dataclass(frozen=True)
class Upkept:
    """The upkeep after a write, in its two steps (decision HC2): the near part (after
    it the users' near windows are read from the model), wall and this process's CPU;
    then the rest (after it every window of the horizon is), wall."""

    near: float
    near_cpu: float
    rest: float


def caught_up(services: Services) -> Upkept:
    """The read model's upkeep after the write re-expanding what the last pull recorded
    (`calsync.events.upkeep.catch_up`, as its job runs it; decisions Z1, HC2)."""
    started, cpu = time.perf_counter(), time.process_time()
    done = catch_up(services.sessions, run_for=3600.0, far=False)
    assert not done.more, done
    assert not done.failed, done
    near, near_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    done = catch_up(services.sessions, run_for=3600.0)
    assert not done.more, done
    assert not done.failed, done
    return Upkept(near, near_cpu, time.perf_counter() - started)


def calsync_full(
    services: Services, side: Side, runs: int, upkeep: list[Upkept]
) -> tuple[list[float], int]:
    """Full syncs of `side`'s calendar (rows deleted first): their times, the rows stored;
    the upkeep's time after each is appended to `upkeep`."""
    timings, stored = [], 0
    for _ in range(runs):
        with services.sessions.begin() as session:
            session.execute(sa.delete(Event).where(Event.calendar_id == side.calendar_id))
            session.execute(
                sa.update(Calendar).where(Calendar.id == side.calendar_id).values(sync_token=None)
            )
        started = time.perf_counter()
        with collector_paused():  # as the worker's sync_calendar actor runs (S13, HX1)
            outcome = pull_calendar(services, side.calendar_id)
        timings.append(time.perf_counter() - started)
        assert outcome.full, outcome
        assert outcome.report is not None, outcome
        upkeep.append(caught_up(services))
        with services.sessions() as session:
            stored = (
                session.scalar(
                    sa.select(sa.func.count()).where(Event.calendar_id == side.calendar_id)
                )
                or 0
            )
    return timings, stored


async def run(args: argparse.Namespace) -> list[str]:
    out: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        out.append(line)

    emulator_port, api_port = free_port(), free_port()
    emulator = start_emulator(emulator_port)
    base = f"http://127.0.0.1:{emulator_port}"
    host = f"{base}/calendar/v3"
    api = f"http://127.0.0.1:{api_port}"
    env = environment(base, api_port, args.database) | {
        "CALSYNC_REDIS_URL": args.redis,
        "CALSYNC_API_RATE_LIMIT_PER_MINUTE": "10000000",
        # what is measured is the read model (on by default since decision Z6)
        "CALSYNC_READ_MODEL": "true",
    }
    settings = dataclasses.replace(Settings.from_env(env), sync_min_interval_seconds=0.0)
    services = bootstrap(settings)
    try:
        upgrade(services.engine, args.schema)
        sides: list[Side] = []
        with EmulatorControl(base) as control:
            main = connect(services, control, "months0@example.com")
            calendar = generate(args.seed, args.events)
            seconds = seed_through_google(base, main.token, main.email, calendar)
            print(
                f"  {len(calendar.inserts)} inserts ({calendar.series} series, "
                f"{calendar.singles} singles), {len(calendar.patches)} moved and "
                f"{len(calendar.deletes)} cancelled instances seeded in {seconds:.1f} s",
                flush=True,
            )
            sides.append(main)
            for k in range(1, args.users):
                # the others read the same calendar, shared with them at Google: each has
                # its own rows in calsync, pulled as for an own calendar
                email = f"months{k}@example.com"
                account, granted = connect_google_user(services, control, email)
                control.share(main.email, email, "reader")
                sync_calendar_list(services, account.id)
                with services.sessions() as session:
                    calendar_id = session.scalars(
                        sa.select(Calendar.id).where(
                            Calendar.user_id == account.id,
                            Calendar.provider_calendar_id == main.email,
                        )
                    ).one()
                sides.append(Side(email, granted["access_token"], account.id, calendar_id))
        started = time.perf_counter()
        for side in sides:
            outcome = pull_calendar(services, side.calendar_id)
            assert outcome.full, outcome
        print(f"  {len(sides)} first pulls in {time.perf_counter() - started:.1f} s", flush=True)
        analyse(services, args.analyze)
        generated = [calendar]
        main = sides[0]
        say(
            f"data: seed {args.seed}, one calendar of {args.events:,} Google events read by "
            f"{args.users} users "
            f"({generated[0].series} series in {len(ZONES)} zones, "
            f"{len(generated[0].patches)} moved and {len(generated[0].deletes)} cancelled "
            f"instances, {generated[0].singles} singles)"
        )

        # the read model: its first fill, as the scheduler's first tick makes it and the
        # upkeep's jobs complete it; from then on the upkeep after each pull keeps it
        started = time.perf_counter()
        read_model.fill(services.sessions, datetime.now(UTC))
        recorded = time.perf_counter() - started
        upkept = caught_up(services)  # what the upkeep's jobs do after it (decision Z5)
        analyse(services, args.analyze)
        say(
            f"read model: first fill of {len(sides)} users' rows in "
            f"{time.perf_counter() - started:.1f} s (the scheduler's transaction "
            f"{recorded * 1000:,.0f} ms, the upkeep after it: near part {upkept.near:.1f} s, "
            f"the rest {upkept.rest:.1f} s)"
        )

        # full and incremental sync, both libraries
        full_upkeep: list[Upkept] = []
        ours_full, stored = calsync_full(services, main, args.runs, full_upkeep)
        async with aiohttp.ClientSession() as peer_http:
            theirs_full: list[float] = []
            manager: CalendarEventSyncManager | None = None
            for _ in range(args.runs):
                manager = CalendarEventSyncManager(
                    GoogleCalendarService(TokenAuth(peer_http, host, main.token)),
                    calendar_id=main.email,
                )
                theirs_full.append(await timed(manager.run))
            assert manager is not None
            kept = len(((await manager._store.async_load()) or {}).get("items", {}))
            say(f"full sync: calsync stored {stored} rows, gcal_sync kept {kept} events")
            pull_calendar(services, main.calendar_id)
            google = build_calendar_service(base, main.token)
            ours_incr: list[float] = []
            theirs_incr: list[float] = []
            incr_upkeep: list[Upkept] = []
            for n in range(args.incremental_runs):
                patch_ten(google, main.email, n)
                started = time.perf_counter()
                with collector_paused():  # as the worker's sync_calendar actor runs (S13)
                    outcome = pull_calendar(services, main.calendar_id)
                ours_incr.append(time.perf_counter() - started)
                assert outcome.report is not None, outcome
                assert outcome.report.updated == 10, outcome.report
                incr_upkeep.append(caught_up(services))
                theirs_incr.append(await timed(manager.run))
            peer_months = [await peer_month(manager, m) for m in MONTHS]
            timeline_started = time.perf_counter()
            timeline = await manager.store_service.async_get_timeline()
            built = time.perf_counter() - timeline_started
            queried = []
            for month in MONTHS:
                started = time.perf_counter()
                list(
                    timeline.overlapping(
                        datetime(month[0].year, month[0].month, 1, tzinfo=UTC),
                        datetime(month[1].year, month[1].month, 1, tzinfo=UTC),
                    )
                )
                queried.append(time.perf_counter() - started)

        # the HTTP phase: one API process, one worker. This client's own heap (the seeded
        # calendar, gcal_sync's stores and timeline: ~300,000 objects) is frozen first: a
        # full collection of it cost 120-150 ms of this process's CPU in the middle of
        # some listing, a stall of the client's, not the server's (decision HZ3)
        gc.collect()
        gc.freeze()
        tokens = [
            issue_token(services.jwt, subject=str(s.user_id), email=s.email, role="user")
            for s in sides
        ]
        serve = [sys.executable, "-m", "calsync.cli", "serve", "--host", "127.0.0.1"]
        serve += ["--port", str(api_port), "--workers", "1", "--no-access-log"]
        worker = [sys.executable, "-m", "calsync.cli", "worker", "--processes", "1"]
        worker += ["--threads", "4", "--metrics-port", "0"]
        with (
            process(worker, env, lambda: True) as worker_pid,
            process(serve, env, api_up(api_port)) as pid,
        ):
            connector = aiohttp.TCPConnector(limit=100)
            meter = Meter({"api": pid, "worker": worker_pid}, services.engine, args.database)
            async with aiohttp.ClientSession(connector=connector) as http:
                first_listings = []
                for month in MONTHS:
                    before = meter.sample() if month is MONTHS[0] else None
                    first_listings.append(
                        await list_window(http, api, tokens[0], month[0], month_last(month))
                    )
                    if before is not None:
                        cold_cpu = Meter.breakdown(before, meter.sample())
                warm = []
                for month in MONTHS:
                    warm.append(
                        await list_window(http, api, tokens[0], month[0], month_last(month))
                    )
                print("  months listed cold and warm; the 400-day window next", flush=True)
                window_cold = await list_window(http, api, tokens[0], *WINDOW_400)
                window_warm = await list_window(http, api, tokens[0], *WINDOW_400)

                rss_before = rss_mib(pid)
                pages: list[float] = []
                done = 0
                stop = time.perf_counter() + args.concurrent_seconds

                async def user(k: int) -> None:
                    nonlocal done
                    n = k
                    while time.perf_counter() < stop:
                        month = MONTHS[n % 12]
                        listing = await list_window(
                            http, api, tokens[k], month[0], month_last(month)
                        )
                        pages.extend(listing.pages)
                        done += len(listing.pages)
                        n += 1

                print(f"  {args.users} users paging at once", flush=True)
                concurrent_before = meter.sample()
                started = time.perf_counter()
                await asyncio.gather(*(user(k) for k in range(args.users)))
                elapsed = time.perf_counter() - started
                concurrent_cpu = Meter.breakdown(concurrent_before, meter.sample())
                rss_after = rss_mib(pid)

        # report
        cold = first_listings[0]
        first_rest = first_listings[1:]
        first_pages = [p for listing in first_rest for p in listing.pages]
        warm_pages = [p for listing in warm for p in listing.pages]
        month_items = [listing.items for listing in warm]
        peer_counts = [count for _, count in peer_months]
        peer_seconds = [seconds for seconds, _ in peer_months]
        say(f"machine: {machine()}")
        say(f"command: .venv/bin/python -m tests.perf.bench_months {shlex.join(sys.argv[1:])}")
        say(
            f"instances per month (calsync, expanded): min {min(month_items)}, median "
            f"{statistics.median(month_items):.0f}, max {max(month_items)}; pages per month "
            f"{min(len(w.pages) for w in warm)}-{max(len(w.pages) for w in warm)}; gcal_sync "
            f"items per month: median {statistics.median(peer_counts):.0f}"
        )
        say("figure | calsync | gcal_sync")
        say(
            f"month, all pages, cold process (first month, never listed) | {ms(cold.seconds)} "
            f"({len(cold.pages)} pages, {cold.items} instances) | {ms(peer_seconds[0])} "
            "(timeline rebuilt per call)"
        )
        say(
            "cold month, its pages (wall) | "
            + ", ".join(f"{p * 1000:.1f}" for p in cold.pages)
            + " ms; CPU by process over it (10 ms ticks): "
            + ", ".join(f"{role.strip()} {v * 1000:.0f}" for role, v in cold_cpu.items())
            + " ms |"
        )
        say(
            f"month, all pages, first listing of each other month (median / max of 11) | "
            f"{ms(statistics.median(w.seconds for w in first_rest))} / "
            f"{ms(max(w.seconds for w in first_rest))} | "
            f"{ms(statistics.median(peer_seconds))} / {ms(max(peer_seconds))}"
        )
        say(
            f"month, all pages, warm (median / max of 12) | "
            f"{ms(statistics.median(w.seconds for w in warm))} / "
            f"{ms(max(w.seconds for w in warm))} | "
            f"timeline built once {ms(built)}, then {ms(statistics.median(queried))} per month"
        )
        say(
            f"page of 200, first listings: p50 / p99 / max | {ms(pct(first_pages, 0.5))} / "
            f"{ms(pct(first_pages, 0.99))} / {ms(max(first_pages))} |"
        )
        say(
            f"page of 200, warm: p50 / p99 / max | {ms(pct(warm_pages, 0.5))} / "
            f"{ms(pct(warm_pages, 0.99))} / {ms(max(warm_pages))} |"
        )
        say(
            f"{args.users} users paging their own months at once ({args.concurrent_seconds} s) | "
            f"{done / elapsed:,.1f} pages/s, page p50 {ms(pct(pages, 0.5))}, p99 "
            f"{ms(pct(pages, 0.99))}; API RSS {rss_before:.0f} -> {rss_after:.0f} MiB |"
        )
        say(
            f"{args.users} users at once: CPU by process, ms a page (cores) | "
            + ", ".join(
                f"{role.strip()} {v * 1000 / max(1, done):.2f} ({v / elapsed:.2f})"
                for role, v in concurrent_cpu.items()
                if not role.startswith("  ") and role != "wrk"
            )
            + " | (decision IZ1: the figure follows the CPU the pipeline gets)"
        )
        say(
            f"full sync of {args.events:,} events (best of {args.runs}) | {ms(min(ours_full))} | "
            f"{ms(min(theirs_full))} (ratio calsync/gcal_sync "
            f"{min(ours_full) / min(theirs_full):.2f})"
        )
        best = ours_full.index(min(ours_full))
        kept = full_upkeep[best]
        say(
            f"read model upkeep after that full sync (after its commit), near part (near "
            f"windows from the model after it) | {ms(kept.near)}, CPU {ms(kept.near_cpu)} (all: "
            f"{', '.join(ms(u.near) for u in full_upkeep)}); sync + near part "
            f"{ms(min(ours_full) + kept.near)} (ratio "
            f"{(min(ours_full) + kept.near) / min(theirs_full):.2f}) |"
        )
        say(
            f"the rest of that upkeep (every window from the model after it) | "
            f"{ms(kept.rest)} (all: {', '.join(ms(u.rest) for u in full_upkeep)}); sync + "
            f"whole upkeep {ms(min(ours_full) + kept.near + kept.rest)} (ratio "
            f"{(min(ours_full) + kept.near + kept.rest) / min(theirs_full):.2f}) |"
        )
        say(
            f"incremental pull of 10 changes (p50 of {args.incremental_runs}) | "
            f"{ms(statistics.median(ours_incr))} | {ms(statistics.median(theirs_incr))} "
            f"(ratio {statistics.median(ours_incr) / statistics.median(theirs_incr):.2f})"
        )
        nears = [u.near for u in incr_upkeep]
        rests = [u.rest for u in incr_upkeep]
        say(
            f"read model upkeep after that pull, near part / the rest (p50 / max) | "
            f"{ms(statistics.median(nears))} / {ms(max(nears))}; the rest "
            f"{ms(statistics.median(rests))} / {ms(max(rests))} |"
        )
        per_month = statistics.median(w.seconds / max(1, w.items) for w in warm)
        say(
            f"400-day window {WINDOW_400[0]}..{WINDOW_400[1]}: {window_cold.items} instances, "
            f"{len(window_cold.pages)} pages | cold {ms(window_cold.seconds)}, warm "
            f"{ms(window_warm.seconds)} "
            f"({window_warm.seconds / max(1, window_warm.items) / per_month:.2f}x "
            "a warm month's time per instance) |"
        )
        say(
            f"month listing ratio calsync/gcal_sync (cold process month / its month) | "
            f"{cold.seconds / peer_seconds[0]:.2f} |"
        )
        return out
    finally:
        services.close()
        emulator.terminate()
        emulator.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (~2 minutes)")
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--incremental-runs", type=int, default=10)
    parser.add_argument("--concurrent-seconds", type=float, default=20.0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/4")
    parser.add_argument(
        "--database", default=DATABASE, help="the scratch database (dropped and made anew)"
    )
    parser.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="no ANALYZE after seeding and the first fill (what autovacuum would do)",
    )
    parser.add_argument(
        "--schema", default="head", help="migrate to this revision (e.g. 0017, to compare)"
    )
    args = parser.parse_args()
    if args.quick:
        args.events, args.users, args.runs = 2_000, 4, 1
        args.incremental_runs, args.concurrent_seconds = 5, 5.0
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
