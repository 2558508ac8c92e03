"""Sweeps at scale: a renewal sweep of 20,000 channels fanned out in batch jobs, and the
spread of 10,000 calendars' safety-net polls. Prints figures, asserts nothing.

Run: ``.venv/bin/python -m tests.perf.bench_sweeps [--users 10000] [--threads 16]``

Needs PostgreSQL and Redis. Uses a scratch database ``calsync_bench_sweeps`` (dropped and
created) and the Redis database ``--redis`` (default 6, flushed). Google is the emulator
in its own process, with one account per user (the pushes it would send are dropped).
The store is populated directly (COPY): `--users` active users with their tokens, one
calendar each (all last synced at the same moment), and two channels each (the calendar's
and the calendar list's), every one expiring within the renewal margin: the worst case,
a fleet that signed in on one day. Then:

1. the sequential renewal (one job renewing channel after channel, as before decision
   Q1), timed on `--sample` channels: milliseconds per channel, and what 20,000 take;
2. the fanned-out sweep as deployed: the scheduler's renewal task every
   ``RENEW_EVERY`` (real time) claims up to ``RENEW_PER_TICK`` channels and queues batch
   jobs of ``RENEW_BATCH``, which `--threads` Dramatiq worker threads (one process, on
   Redis) run through calsync's Google quota limiter (``--project-per-minute``, Google's
   default project quota per minute). Prints the sweep's wall time, the jobs, their
   longest and median durations against the time limit, and what was left;
3. the safety-net polls of the calendars: how many fall due per 30-second sweep over
   one interval (the old rule: every calendar 900 s after its last sync; the new one:
   at its slot), and the duration of one sweep's claim (`kicks.claim_due`);
4. an idle day within the daily Google budget (decisions Y1-Y6), in simulated time
   (the services' clock; Google's is real, so the channels renewed in step 2 are live):
   ``--idle-hours`` before a quota day's start as a warm-up (every calendar is pulled
   once, then polled at its adaptive slot), then as many hours of the quota day itself,
   in 30-s scheduler ticks: the sweeps claim the due polls and audits (within the
   budget's room) and ``--threads`` threads run the jobs' functions against the
   emulator, every request counted in the real Redis budget. Prints the spend by
   priority, the day's forecasts (extrapolated, scheduled), the schedule of a whole idle
   day, and idle polling plus renewals as a share of ``GOOGLE_DAILY_BUDGET``.
"""

from __future__ import annotations

import argparse
import collections
import logging
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import sqlalchemy as sa

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.emulator.testing import EmulatorControl
from calsync.jobs import fan_out_renewals
from calsync.providers.budget import Priority, next_quota_day
from calsync.runtime import worker_threads
from calsync.scheduler import RENEW_EVERY, SWEEP_EVERY, due_audits, due_pulls
from calsync.store.migrate import upgrade
from calsync.store.tables import WatchChannel
from calsync.sync import channels, kicks, polling
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_intake import load, machine
from tests.perf.bench_sync import environment
from tests.perf.copying import (
    CALENDAR_COLUMNS,
    OAUTH_TOKEN_COLUMNS,
    USER_COLUMNS,
    WATCH_CHANNEL_COLUMNS,
    copy_rows,
)

DATABASE = "calsync_bench_sweeps"


def google_accounts(control: EmulatorControl, users: int) -> list[tuple[str, str, str]]:
    """`users` emulator accounts: (email, access token, refresh token)."""

    def create(n: int) -> tuple[str, str, str]:
        email = f"user{n}@example.com"
        made = control.create_user(email)
        return email, made["access_token"], made["refresh_token"]

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(create, range(users)))


def populate(
    services: Services, accounts: list[tuple[str, str, str]], now: datetime
) -> dict[str, int]:
    engine, box = services.engine, services.secrets
    margin = services.settings.channel_renew_before_seconds
    users = [(uuid.uuid4(), email, access, refresh) for email, access, refresh in accounts]
    calendars = {u: uuid.uuid4() for u, *_ in users}
    tail = (now, "ok", False, False, "token", now, now)
    counts = {
        "users": copy_rows(
            engine,
            "users",
            USER_COLUMNS,
            ((u, email, "user", "active", "UTC", now, now) for u, email, *_ in users),
        ),
        "oauth_tokens": copy_rows(
            engine,
            "oauth_tokens",
            OAUTH_TOKEN_COLUMNS,
            (
                (
                    uuid.uuid4(),
                    u,
                    "google",
                    box.encrypt(access),
                    box.encrypt(refresh),
                    "https://www.googleapis.com/auth/calendar",
                    now + timedelta(minutes=50),
                    "valid",
                    now,
                    now,
                )
                for u, _, access, refresh in users
            ),
        ),
        "calendars": copy_rows(
            engine,
            "calendars",
            CALENDAR_COLUMNS,
            (
                (calendars[u], u, "google", email, email, "UTC", "owner", True, True, *tail)
                for u, email, *_ in users
            ),
        ),
    }

    def channel_rows() -> Iterator[tuple[Any, ...]]:
        for n, (u, *_) in enumerate(users):
            for calendar in (calendars[u], None):
                expires = now + timedelta(seconds=60 + (n * 7919) % (margin - 120))
                yield (
                    uuid.uuid4(),
                    u,
                    calendar,
                    "events" if calendar else "calendar_list",
                    f"old-{n}-{calendar is None}",
                    expires,
                    "active",
                    now,
                    now,
                )

    counts["watch_channels"] = copy_rows(
        engine,
        "watch_channels",
        WATCH_CHANNEL_COLUMNS,
        channel_rows(),
    )
    with engine.begin() as connection:
        connection.execute(sa.text("ANALYZE"))
    return counts


def due_channels(services: Services) -> int:
    margin = timedelta(seconds=services.settings.channel_renew_before_seconds)
    with services.sessions() as session:
        return int(
            session.scalar(
                sa.select(sa.func.count()).where(
                    WatchChannel.status == "active",
                    WatchChannel.expires_at < services.clock() + margin,
                )
            )
            or 0
        )


def sequential(services: Services, sample: int) -> float:
    """Seconds per channel of renewing `sample` channels one after another."""
    margin = timedelta(seconds=services.settings.channel_renew_before_seconds)
    with services.sessions.begin() as session:
        ids = channels.claim_renewals(session, now=services.clock(), margin=margin, limit=sample)
    started = time.perf_counter()
    report = channels.renew_claimed(services, ids)
    seconds = time.perf_counter() - started
    print(
        f"1. sequential renewal of {len(ids)} channels: {seconds:.1f} s, "
        f"{seconds / len(ids) * 1000:.1f} ms per channel "
        f"({report.renewed} renewed, {report.failed} failed); 20,000 channels would take "
        f"{seconds / len(ids) * 20_000 / 60:.1f} min in one job (Dramatiq's default limit: 10)"
    )
    return seconds / len(ids)


class JobTimes:
    """Wraps `channels.renew_claimed` to record each batch job's duration and outcome."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self.renewed = self.failed = self.given_back = 0
        self._lock = threading.Lock()
        self._real = channels.renew_claimed

    def __call__(self, services: Services, ids: Any, **options: Any) -> channels.RenewReport:
        started = time.perf_counter()
        report = self._real(services, ids, **options)
        with self._lock:
            self.durations.append(time.perf_counter() - started)
            self.renewed += report.renewed
            self.failed += report.failed
            self.given_back += len(ids) - report.renewed - report.failed
        return report


def fanned_out(services: Services, threads: int, timeout: float) -> None:
    times = JobTimes()
    channels.renew_claimed = times  # type: ignore[assignment]
    ticks: list[int] = []
    started = time.perf_counter()
    try:
        with worker_threads(services, threads=threads):
            while True:
                ticks.append(fan_out_renewals(services, services.jobs))
                deadline = time.perf_counter() + RENEW_EVERY.total_seconds()
                while time.perf_counter() < deadline:
                    if due_channels(services) == 0:
                        break
                    time.sleep(1)
                if due_channels(services) == 0 or time.perf_counter() - started > timeout:
                    break
            wall = time.perf_counter() - started
    finally:
        channels.renew_claimed = times._real
    limit = channels.RENEW_TIME_LIMIT.total_seconds()
    print(
        f"2. fanned-out sweep with {threads} worker threads: {wall:.0f} s wall "
        f"({wall / 60:.1f} min) for {times.renewed + times.failed} channels; "
        f"{len(ticks)} scheduler ticks claimed {ticks}; "
        f"{len(times.durations)} batch jobs of up to {channels.RENEW_BATCH}, longest "
        f"{max(times.durations):.1f} s, median {statistics.median(times.durations):.1f} s "
        f"(budget {channels.RENEW_JOB_BUDGET.total_seconds():.0f} s, time limit {limit:.0f} s; "
        f"over the limit: {sum(d > limit for d in times.durations)}); "
        f"renewed {times.renewed}, failed {times.failed}, given back {times.given_back}; "
        f"still due afterwards: {due_channels(services)}"
    )


def polls(services: Services, now: datetime) -> None:
    interval = timedelta(seconds=services.settings.safety_net_interval_seconds)
    with services.sessions() as session:
        rows = session.execute(sa.text("SELECT id FROM calendars")).all()
    per_tick: collections.Counter[int] = collections.Counter()
    for (calendar_id,) in rows:
        slot = kicks.poll_slot(calendar_id, now, interval)
        per_tick[int((slot - now) / SWEEP_EVERY - 1e-9)] += 1
    ticks = int(interval / SWEEP_EVERY)
    counts = [per_tick.get(t, 0) for t in range(ticks)]
    print(
        f"3. safety-net polls of {len(rows)} calendars synced together, per 30-s sweep over "
        f"one interval: before, all {len(rows)} at one sweep; now min {min(counts)}, "
        f"max {max(counts)}, mean {statistics.mean(counts):.0f} over {ticks} sweeps"
    )
    later = now + SWEEP_EVERY  # a steady tick: the calendars whose slot came in 30 s

    def claim(session: Any) -> list[uuid.UUID]:
        return kicks.claim_due(
            session, now=later, poll_every=interval, slot_lost_before=later - timedelta(hours=1)
        )

    placing = []  # after an upgrade: the first sweeps give every calendar its slot
    while True:
        with services.sessions() as session:
            unplaced = session.scalar(
                sa.text("SELECT count(*) FROM calendars WHERE next_poll_at IS NULL")
            )
            if not unplaced:
                break
            begun = time.perf_counter()
            claim(session)
            placing.append(time.perf_counter() - begun)
            session.execute(sa.text("UPDATE calendars SET sync_queued_at = NULL"))
            session.commit()
    timings = []
    for _ in range(5):
        with services.sessions() as session:
            begun = time.perf_counter()
            claimed = claim(session)
            timings.append(time.perf_counter() - begun)
            session.rollback()
    print(
        f"   one sweep's claim_due, 30 s after they synced: median "
        f"{statistics.median(timings) * 1000:.1f} ms ({len(claimed)} calendars due); "
        f"placing {len(rows)} calendars without a slot (after the upgrade) took "
        f"{len(placing)} sweeps of {', '.join(f'{t * 1000:.0f}' for t in placing)} ms"
    )


class SimClock:
    """The services' clock: real time until `at` is set, then that simulated instant."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def __call__(self) -> datetime:
        return self.at or datetime.now(UTC)


def run_all(pool: ThreadPoolExecutor, calls: list[Any]) -> None:
    for future in [pool.submit(call) for call in calls]:
        future.result()


def simulate(
    services: Services, clock: SimClock, pool: ThreadPoolExecutor, start: datetime, ticks: int
) -> tuple[int, int, float]:
    """Run the scheduler's poll and audit sweeps every 30 simulated seconds from `start`,
    `ticks` times, each tick's jobs run by `pool` as the workers would; returns (polls,
    audits, wall seconds)."""
    jobs = services.jobs
    pulls = audits = 0
    began = time.perf_counter()
    for tick in range(ticks):
        now = start + tick * SWEEP_EVERY
        clock.at = now
        due = due_pulls(services, now)
        audited = due_audits(services, now) if tick % 2 == 0 else []  # every minute
        calls = [
            lambda d=d: jobs.sync_calendar.fn(
                str(d.calendar_id), "notification" if d.dirty else "poll"
            )
            for d in due
        ]
        calls += [lambda c=c: jobs.audit_calendar.fn(str(c)) for c in audited]
        run_all(pool, calls)
        pulls, audits = pulls + len(due), audits + len(audited)
    return pulls, audits, time.perf_counter() - began


def idle_day(services: Services, clock: SimClock, threads: int, hours: float) -> None:
    settings = services.settings
    day = next_quota_day(datetime.now(UTC))  # a quota day's start: midnight Pacific
    ticks = int(timedelta(hours=hours) / SWEEP_EVERY)
    with ThreadPoolExecutor(threads) as pool:
        # Warm-up, the `hours` before the day (counted in the day before's budget): every
        # calendar is due (the populated rows were never pulled), pulled once (a full
        # listing), and from then on polled at its adaptive slot.
        warm = simulate(services, clock, pool, day - timedelta(hours=hours), ticks)
        with services.sessions() as session:
            live = session.scalar(
                sa.text(
                    "SELECT count(*) FROM calendars c WHERE EXISTS (SELECT 1 FROM "
                    "watch_channels w WHERE w.calendar_id = c.id AND w.status = 'active' "
                    "AND w.expires_at > :day)"
                ),
                {"day": day},
            )
            per_day = polling.scheduled_spend(session, settings, day, 86_400)
        print(
            f"4. warm-up, {hours:g} simulated hours before the quota day: {warm[0]} polls, "
            f"{warm[1]} audits, {warm[2]:.0f} s wall; {live} calendars have a live channel "
            f"(polled every {settings.poll_with_channel_seconds} s, the others every "
            f"{settings.safety_net_interval_seconds} s)"
        )
        # The first `hours` of an idle quota day
        pulls, audits, wall = simulate(services, clock, pool, day, ticks)
    report = polling.budget_report(services, day + timedelta(hours=hours))
    budget = settings.google_daily_budget
    spent = report["total"]
    # Renewals: each channel once per its lifetime, two calls (watch, stop), as step 2
    # measured; spread over the days of a channel's TTL
    with services.sessions() as session:
        channel_count = session.scalar(
            sa.text("SELECT count(*) FROM watch_channels WHERE status = 'active'")
        )
        size = session.scalar(sa.text("SELECT pg_database_size(current_database())"))
    renewals_per_day = round((channel_count or 0) * 2 * 86_400 / settings.channel_ttl_seconds)
    idle_per_day = round(spent * 24 / hours) + renewals_per_day
    print(
        f"   the first {hours:g} simulated hours of the quota day ({ticks} ticks, {wall:.0f} s "
        f"wall): {pulls} polls and {audits} audits run, {spent} Google requests "
        f"({report['spent']})"
    )
    print(
        f"   forecast for the day at that point: extrapolated {report['forecast_extrapolated']}"
        f", scheduled {report['forecast_scheduled']} ({report['scheduled']}); the schedule "
        f"of a whole idle day: {per_day.total} (polls {per_day.polls}, audits "
        f"{per_day.audits}, renewals due {per_day.renewals})"
    )
    print(
        f"   idle polling plus renewals: {spent} x 24 / {hours:g} + {renewals_per_day} renewal "
        f"calls a day ({channel_count} channels, two calls each per "
        f"{settings.channel_ttl_seconds} s) = {idle_per_day} a day, "
        f"{idle_per_day / budget:.1%} of the daily budget of {budget}; the polls' ceiling: "
        f"{report['ceilings'][Priority.POLL.value]}; database size {(size or 0) / 2**20:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--project-per-minute", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--polls-only", action="store_true", help="skip the renewals")
    parser.add_argument("--idle-hours", type=float, default=4.0)
    parser.add_argument("--no-budget", action="store_true", help="skip step 4")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print(f"machine: {machine()}; load average {load()}")
    redis.Redis.from_url(args.redis).flushdb()
    emulator_port, api_port = free_port(), free_port()
    emulator = start_emulator(emulator_port)
    base = f"http://127.0.0.1:{emulator_port}"
    env = environment(base, api_port, DATABASE) | {
        "CALSYNC_REDIS_URL": args.redis,
        "CALSYNC_GOOGLE_PROJECT_REQUESTS_PER_MINUTE": str(args.project_per_minute),
    }
    clock = SimClock()
    services = bootstrap(Settings.from_env(env), clock=clock)
    try:
        upgrade(services.engine)
        with EmulatorControl(base) as control:
            control.add_fault(kind="drop_push", count=None)
            began = time.perf_counter()
            accounts = google_accounts(control, args.users)
            now = datetime.now(UTC)
            counts = populate(services, accounts, now)
            print(f"populated in {time.perf_counter() - began:.0f} s: {counts}")
            if not args.polls_only:
                sequential(services, args.sample)
                control.clear_requests()
                fanned_out(services, args.threads, args.timeout)
                print(f"   Google requests during the sweep: {len(control.requests())}")
            polls(services, now)
            if not args.no_budget:
                idle_day(services, clock, args.threads, args.idle_hours)
    finally:
        services.close()
        emulator.terminate()
        emulator.wait(10)


if __name__ == "__main__":
    main()
