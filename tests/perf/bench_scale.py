"""Scale: the scheduler's sweeps over 10,000 users, and a worker's memory over a long run.

Run: ``.venv/bin/python -m tests.perf.bench_scale [--users 10000] [--minutes 3]``

Needs PostgreSQL and Redis (as the tests do); uses a scratch database
``calsync_bench_scale`` (``--database``, dropped) and Redis database 7 (``--redis``,
flushed). Synthetic rows are
written with COPY: `--users` users with tokens and preferences, 3 calendars each (last
synced over the past 10 minutes, 1% stale beyond the safety-net interval, 0.5% dirty), a
channel per calendar plus one per calendar list (expiries spread over the channel TTL, so
about 1/7 are within the renewal margin of a day), `--events` events per calendar (10% weekly
series, every one with reminder overrides, spread over 60 days), and one pending reminder
delivery per event (a hundred due now). Figures, each the median of `--runs` (and
the plan PostgreSQL chose, from ``EXPLAIN ANALYZE``):

- channel renewal sweep: `renew_channels` with a provider that refuses every renewal
  (so nothing changes between runs, and no Google call is timed): the query and loop;
- safety-net sweep: `scheduler.due_calendars` (`kicks.claim_due`), its claims undone
  after each run;
- reminder scan: the due-delivery claim of `notify.deliveries` (the query each
  ``send_due_notices`` round runs per notice) and `refresh_reminders` (the planner that
  extends every upcoming event's reminders to the 48-hour horizon).

Then a worker's memory: ``calsync worker --processes 1 --threads 4`` against the in-process
emulator, fed sync and push jobs of 20 connected users (remote changes pulled, local
writes pushed) for `--minutes`; its resident set size is sampled every 5 s and the
first (after a warm-up minute's first tenth), last and highest samples are printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import redis
import sqlalchemy as sa
from starlette.testclient import TestClient

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.emulator.server import EmulatorServer
from calsync.emulator.testing import EmulatorControl
from calsync.notify import deliveries
from calsync.notify.reminders import refresh_reminders
from calsync.providers.errors import ProviderError
from calsync.scheduler import due_calendars
from calsync.store.migrate import upgrade
from calsync.store.tables import Calendar, Event
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.channels import renew_channels
from calsync.web.app import create_app
from calsync.web.auth.tokens import issue_token
from tests.google_users import connect_google_user
from tests.perf.bench_emulator import batch_body
from tests.perf.bench_peer import machine
from tests.perf.bench_sync import environment
from tests.perf.copying import (
    CALENDAR_COLUMNS,
    OAUTH_TOKEN_COLUMNS,
    USER_COLUMNS,
    WATCH_CHANNEL_COLUMNS,
    copy_rows,
)

DATABASE = "calsync_bench_scale"


def populate(engine: sa.Engine, users: int, per_calendar: int, now: datetime) -> dict[str, int]:
    rng = random.Random(9)
    user_ids = [uuid.uuid4() for _ in range(users)]
    calendars = [(uuid.uuid4(), u, n) for u in user_ids for n in range(3)]
    counts: dict[str, int] = {}
    counts["users"] = copy_rows(
        engine,
        "users",
        USER_COLUMNS,
        (
            (
                u,
                f"user{i}@example.com",
                "user",
                "active" if i % 100 else "needs_reauth",
                "Europe/Berlin",
                now,
                now,
            )
            for i, u in enumerate(user_ids)
        ),
    )
    counts["oauth_tokens"] = copy_rows(
        engine,
        "oauth_tokens",
        OAUTH_TOKEN_COLUMNS,
        (
            (
                uuid.uuid4(),
                u,
                "google",
                os.urandom(120),
                os.urandom(120),
                "https://www.googleapis.com/auth/calendar",
                now + timedelta(minutes=30),
                "valid",
                now,
                now,
            )
            for u in user_ids
        ),
    )
    counts["notification_preferences"] = copy_rows(
        engine,
        "notification_preferences",
        ("user_id", "reminder_minutes", "channels", "change_notices", "updated_at"),
        ((u, "[10]", '["email"]', True, now) for u in user_ids),
    )

    def calendar_rows() -> Iterator[tuple[Any, ...]]:
        for index, (c, u, n) in enumerate(calendars):
            stale = index % 100 == 0
            synced = now - (timedelta(hours=2) if stale else timedelta(seconds=rng.randrange(600)))
            yield (
                c,
                u,
                "google",
                f"cal{n}-{c.hex[:8]}@group.calendar.google.com"
                if n
                else f"user-{u.hex[:8]}@example.com",
                f"Calendar {n}",
                "Europe/Berlin",
                "owner",
                n == 0,
                True,
                synced,
                "ok",
                index % 200 == 7,
                False,
                f"tok-{c.hex}",
                now,
                now,
            )

    counts["calendars"] = copy_rows(
        engine,
        "calendars",
        CALENDAR_COLUMNS,
        calendar_rows(),
    )

    def channel_rows() -> Iterator[tuple[Any, ...]]:
        week = 7 * 24 * 3600
        for c, u, _ in calendars:
            expires = now + timedelta(seconds=rng.randrange(60, week))
            yield (uuid.uuid4(), u, c, "events", f"res-{c.hex[:12]}", expires, "active", now, now)
        for u in user_ids:
            expires = now + timedelta(seconds=rng.randrange(60, week))
            yield (
                uuid.uuid4(),
                u,
                None,
                "calendar_list",
                f"res-{u.hex[:12]}",
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
    events: list[tuple[uuid.UUID, uuid.UUID, datetime]] = []

    def event_rows() -> Iterator[tuple[Any, ...]]:
        reminders = '{"use_default": false, "overrides": [[10, "popup"], [60, "email"]]}'
        for c, u, _ in calendars:
            for k in range(per_calendar):
                e = uuid.uuid4()
                start = (now + timedelta(minutes=rng.randrange(-7 * 1440, 60 * 1440))).replace(
                    second=0, microsecond=0
                )
                recurring = k % 10 == 0
                events.append((e, u, start))
                yield (
                    e,
                    c,
                    u,
                    f"g{e.hex}",
                    f"Event {k}",
                    start,
                    start + timedelta(hours=1),
                    "Europe/Berlin",
                    False,
                    recurring,
                    "RRULE:FREQ=WEEKLY;COUNT=20" if recurring else None,
                    start + timedelta(weeks=20) if recurring else None,
                    "confirmed",
                    0,
                    reminders,
                    "{}",
                    "synced",
                    1,
                    now,
                    now,
                )

    counts["events"] = copy_rows(
        engine,
        "events",
        (
            "id",
            "calendar_id",
            "user_id",
            "google_event_id",
            "title",
            "start_time",
            "end_time",
            "timezone",
            "all_day",
            "is_recurring",
            "recurrence_rule",
            "recurrence_end",
            "status",
            "sequence",
            "reminders",
            "metadata",
            "sync_state",
            "version",
            "created_at",
            "updated_at",
        ),
        event_rows(),
    )

    def delivery_rows() -> Iterator[tuple[Any, ...]]:
        for n, (e, u, start) in enumerate(events):
            due = now - timedelta(seconds=n % 60) if n < 100 else start - timedelta(minutes=10)
            if due <= now and n >= 100:
                due = now + timedelta(days=30 + n % 30)
            yield (
                uuid.uuid4(),
                u,
                e,
                "reminder",
                "email",
                start,
                10,
                f"reminder:{e}:{start.isoformat()}:10:email",
                "pending",
                due,
                0,
                now,
                now,
            )

    counts["notification_deliveries"] = copy_rows(
        engine,
        "notification_deliveries",
        (
            "id",
            "user_id",
            "event_id",
            "kind",
            "channel",
            "occurrence_start",
            "lead_minutes",
            "dedupe_key",
            "status",
            "due_at",
            "attempts",
            "created_at",
            "updated_at",
        ),
        delivery_rows(),
    )
    with engine.begin() as connection:
        connection.execute(sa.text("ANALYZE"))
    return counts


# --- timing and plans -----------------------------------------------------------------


@contextmanager
def captured(engine: sa.Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements (and parameters) the engine sends while the block runs."""
    seen: list[tuple[str, Any]] = []

    def listener(_c: Any, _cur: Any, statement: str, parameters: Any, _x: Any, _m: Any) -> None:
        seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


def plan_of(engine: sa.Engine, statement: str, parameters: Any) -> str:
    """The top plan lines of `statement` from EXPLAIN ANALYZE, rolled back."""
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            lines = [
                r[0]
                for r in connection.exec_driver_sql(
                    "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + statement,
                    parameters,
                )
            ]
        finally:
            transaction.rollback()
    scans = [
        line.strip().removeprefix("->").strip()
        for line in lines
        if "Scan" in line or "Execution Time" in line
    ]
    return "; ".join(scans[:6])


def timed(
    runs: int, step: Callable[[], object], undo: Callable[[], None] | None = None
) -> tuple[float, object]:
    timings: list[float] = []
    result: object = None
    for _ in range(runs):
        started = time.perf_counter()
        result = step()
        timings.append(time.perf_counter() - started)
        if undo is not None:
            undo()
    return statistics.median(timings), result


class RefusingProvider:
    """A provider whose channel calls all fail: renewals are attempted, none happen."""

    def watch_events(self, *_a: Any, **_k: Any) -> Any:
        raise ProviderError("bench: refused")

    def watch_calendar_list(self, *_a: Any, **_k: Any) -> Any:
        raise ProviderError("bench: refused")


class RefusingProviders:
    def for_user(self, _user_id: uuid.UUID) -> RefusingProvider:
        return RefusingProvider()

    def close(self) -> None:
        return None


def sweeps(
    services: Services, now: datetime, runs: int, lines: list[str], *, refresh: bool
) -> None:
    engine = services.engine
    real = services.providers
    services.providers = RefusingProviders()  # type: ignore[assignment]
    quiet = logging.getLogger("calsync.sync.channels")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # one warning per refused renewal otherwise
    try:

        def unclaim() -> None:  # each run claims (and fails) the same renewals again
            with engine.begin() as connection:
                connection.execute(sa.text("UPDATE watch_channels SET renewal_claimed_at = NULL"))

        with captured(engine) as seen:
            seconds, report = timed(runs, lambda: renew_channels(services), unclaim)
        query = next(
            s for s in seen if "watch_channels" in s[0] and s[0].lstrip().startswith("SELECT")
        )
        lines.append(
            f"channel renewal sweep: {seconds * 1000:.1f} ms median "
            f"({report.failed} channels due, all refused: query + loop)"  # type: ignore[attr-defined]
        )
        lines.append(f"  plan: {plan_of(engine, *query)}")
    finally:
        services.providers = real
        quiet.setLevel(level)

    def undo_claims() -> None:
        with engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE calendars SET sync_queued_at = NULL WHERE sync_queued_at = :now"),
                {"now": now},
            )

    with captured(engine) as seen:
        seconds, claimed = timed(runs, lambda: due_calendars(services, now), undo_claims)
    query = next(
        s for s in seen if s[0].lstrip().startswith("UPDATE calendars") and "RETURNING" in s[0]
    )
    lines.append(
        f"safety-net sweep (claim_due): {seconds * 1000:.1f} ms median "
        f"({len(claimed)} calendars claimed of the stale and dirty ones)"  # type: ignore[arg-type]
    )
    lines.append(f"  plan: {plan_of(engine, *query)}")

    def claim_one() -> object:
        with services.sessions() as session:
            found = deliveries._claim(session, now)
            session.rollback()
            return found

    with captured(engine) as seen:
        seconds, found = timed(runs, claim_one)
    query = next(s for s in seen if "notification_deliveries" in s[0])
    lines.append(
        f"reminder scan, due-notice claim: {seconds * 1000:.2f} ms median "
        f"(found one: {found is not None})"
    )
    lines.append(f"  plan: {plan_of(engine, *query)}")
    if not refresh:
        return
    started = time.perf_counter()
    replanned = refresh_reminders(services.sessions, now=now)
    lines.append(
        f"reminder scan, refresh_reminders (48 h horizon): {time.perf_counter() - started:.1f} s "
        f"for {replanned:,} upcoming events and series (one run)"
    )


# --- a worker's memory ----------------------------------------------------------------


def tree_rss_kib(root: int) -> int:
    """Resident set size of `root` and its descendants, from /proc (KiB)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        pending += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def insert_remote(control: EmulatorControl, url: str, email: str, first: int, count: int) -> None:
    token = control.issue_tokens(email)["access_token"]
    content_type, body = batch_body(token, email, first, count)
    answer = httpx.post(
        f"{url}/batch/calendar/v3", content=body, headers={"Content-Type": content_type}, timeout=60
    )
    answer.raise_for_status()


def worker_memory(
    services: Services, env: dict[str, str], emulator: str, minutes: float, lines: list[str]
) -> None:
    users = []
    with EmulatorControl(emulator) as control:
        for n in range(20):
            account, _ = connect_google_user(services, control, f"mem{n}@example.com")
            sync_calendar_list(services, account.id)
            with services.sessions() as session:
                calendar_id = session.scalars(
                    sa.select(Calendar.id).where(Calendar.user_id == account.id)
                ).one()
            users.append((account, calendar_id))
        worker = subprocess.Popen(
            [sys.executable, "-m", "calsync.cli", "worker", "--processes", "1", "--threads", "4"],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = TestClient(create_app(services))
        client.__enter__()  # one event loop for every request (the app's Redis client)
        samples: list[tuple[float, int]] = []
        started = time.monotonic()
        jobs = 0
        try:
            headers = {
                a.id: {
                    "Authorization": "Bearer "
                    + issue_token(
                        services.jwt,
                        subject=str(a.id),
                        email=a.email,
                        role="user",
                        now=services.clock(),
                    )
                }
                for a, _ in users
            }
            round_no = 0
            next_sample = started
            while time.monotonic() - started < minutes * 60:
                for a, calendar_id in users:
                    insert_remote(control, emulator, a.email, 1_000_000 + round_no * 10, 5)
                    services.jobs.sync_calendar.send(str(calendar_id))
                    answer = client.post(
                        "/events",
                        json={
                            "title": f"r{round_no}",
                            "start_time": "2031-03-04T10:00:00Z",
                            "end_time": "2031-03-04T11:00:00Z",
                        },
                        headers=headers[a.id],
                    )
                    assert answer.status_code == 201, answer.text
                    jobs += 2
                round_no += 1
                if time.monotonic() >= next_sample:
                    samples.append((time.monotonic() - started, tree_rss_kib(worker.pid)))
                    next_sample += 5
                time.sleep(0.5)
        finally:
            worker.terminate()
            worker.wait(30)
            client.__exit__(None, None, None)
    with services.sessions() as session:
        ids = [a.id for a, _ in users]
        pulled = session.scalar(
            sa.select(sa.func.count())
            .select_from(Event)
            .where(Event.user_id.in_(ids), Event.google_event_id.like("bench%"))
        )
        synced = session.scalar(
            sa.select(sa.func.count())
            .select_from(Event)
            .where(Event.user_id.in_(ids), Event.title.like("r%"), Event.sync_state == "synced")
        )
    lines.append(
        f"  the worker pulled {pulled:,} of {round_no * 100:,} remote inserts and pushed "
        f"{synced:,} of {round_no * 20:,} local writes (the rest still queued at the end)"
    )
    warm = [s for s in samples if s[0] >= min(60.0, minutes * 6)] or samples
    first, last = warm[0], warm[-1]
    highest = max(s[1] for s in warm)
    lines.append(
        f"worker memory over {minutes:g} min, {round_no} rounds, ~{jobs} jobs "
        f"(20 users: 5 remote changes + 1 local write each per round): RSS "
        f"{first[1] / 1024:.0f} MiB at {first[0]:.0f} s, {last[1] / 1024:.0f} MiB at "
        f"{last[0]:.0f} s, highest {highest / 1024:.0f} MiB"
    )
    lines.append("  samples (s, MiB): " + ", ".join(f"{t:.0f}:{r / 1024:.0f}" for t, r in samples))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=3, help="events per calendar")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    parser.add_argument(
        "--skip-refresh", action="store_true", help="leave out refresh_reminders (slow)"
    )
    parser.add_argument("--database", default=DATABASE, help="scratch database (dropped)")
    args = parser.parse_args()
    lines: list[str] = []
    redis.Redis.from_url(args.redis).flushdb()
    with EmulatorServer() as emulator:
        env = environment(emulator.url, 0, args.database) | {"CALSYNC_REDIS_URL": args.redis}
        settings = dataclasses.replace(Settings.from_env(env), sync_min_interval_seconds=0.0)
        services = bootstrap(settings)
        try:
            upgrade(services.engine)
            now = datetime.now(UTC).replace(microsecond=0)
            started = time.perf_counter()
            counts = populate(services.engine, args.users, args.events, now)
            lines.append(
                f"populated in {time.perf_counter() - started:.1f} s: "
                + ", ".join(f"{n:,} {t}" for t, n in counts.items())
            )
            sweeps(services, now, args.runs, lines, refresh=not args.skip_refresh)
            if args.minutes > 0:
                worker_memory(services, env, emulator.url, args.minutes, lines)
        finally:
            services.close()
    print(f"machine: {machine()}")
    print(
        "command: .venv/bin/python -m tests.perf.bench_scale "
        f"--users {args.users} --events {args.events} --runs {args.runs} "
        f"--minutes {args.minutes:g}"
    )
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
