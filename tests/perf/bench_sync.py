"""Benchmark the sync engine: prints figures, asserts nothing.

Run: ``.venv/bin/python -m tests.perf.bench_sync [--events 10000]``
(``--read-model`` fills the read model first, as the scheduler would: nothing here
runs it, so it is off otherwise; ``--redis URL``;
``--pulls-only`` skips the change-to-visible figure; ``--profile DIR`` writes
cProfile stats of the pulls there; ``--database NAME`` picks the scratch database.)

Needs PostgreSQL and Redis (as the tests do); uses a scratch database ``calsync_bench``.
The emulator runs in its own process, so that the client does not share its interpreter
lock. Figures:
- full sync of an N-event calendar into PostgreSQL (`pull_calendar`, no sync token);
- incremental sync of 10 changes (`pull_calendar` with the token), p50 of 20 runs, after
  the events table is vacuumed and analysed (`settle`), as autovacuum would do shortly
  after the full syncs' bulk loads in production (it is off on the test server: without
  statistics the planner reads all N rows of the calendar to find the 10 changed ones);
- change-to-visible latency through a real push: insert on Google as another client →
  emulator push → webhook → worker pull → row in PostgreSQL; p50 of 20.

The notification intake rate has its own script: ``tests/perf/bench_intake.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet

from calsync.bootstrap import Services, bootstrap
from calsync.collector_pause import collector_paused
from calsync.config import Settings
from calsync.emulator.testing import EmulatorControl, build_calendar_service
from calsync.events import read_model
from calsync.runtime import worker_threads
from calsync.store.migrate import upgrade
from calsync.store.tables import Calendar, Event
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.channels import ensure_channels
from calsync.sync.pull import pull_calendar
from calsync.threaded_server import ThreadedServer
from calsync.web.app import create_app
from tests.google_users import connect_google_user
from tests.perf.bench_emulator import free_port, seed, start_emulator

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE = "calsync_bench"
REDIS = "redis://127.0.0.1:6379/14"


def fresh_database(name: str = DATABASE) -> str:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def environment(
    emulator: str, api_port: int, database: str = DATABASE, redis: str = REDIS
) -> dict[str, str]:
    return {
        "CALSYNC_DATABASE_URL": fresh_database(database),
        "CALSYNC_REDIS_URL": redis,
        "CALSYNC_PUBLIC_URL": f"http://127.0.0.1:{api_port}",
        "CALSYNC_JWT_SECRET": uuid.uuid4().hex * 2,
        "CALSYNC_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "CALSYNC_GOOGLE_CLIENT_ID": "calsync-dev",
        "CALSYNC_GOOGLE_CLIENT_SECRET": "calsync-dev-secret",
        "CALSYNC_GOOGLE_API_BASE": emulator,
        "CALSYNC_GOOGLE_OAUTH_BASE": emulator,
        "CALSYNC_LOG_LEVEL": "WARNING",
        # Every request of a benchmark comes from this one address.
        "CALSYNC_ADDRESS_RATE_LIMIT_PER_MINUTE": "1000000",
    }


def connect_user(services: Services, control: EmulatorControl, email: str) -> uuid.UUID:
    account, _ = connect_google_user(services, control, email)
    sync_calendar_list(services, account.id)
    return account.id


def calendar_id_of(services: Services, user_id: uuid.UUID) -> uuid.UUID:
    with services.sessions() as session:
        return session.scalars(sa.select(Calendar.id).where(Calendar.user_id == user_id)).one()


class Timer:
    """Wall and process CPU time of the measured calls, optionally under cProfile."""

    def __init__(self, profile: cProfile.Profile | None = None) -> None:
        self.profile = profile
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __enter__(self) -> Timer:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        if self.profile is not None:
            self.profile.enable()
        return self

    def __exit__(self, *_: object) -> None:
        if self.profile is not None:
            self.profile.disable()
        self.wall.append(time.perf_counter() - self._wall)
        self.cpu.append(time.process_time() - self._cpu)


def full_sync(services: Services, calendar_id: uuid.UUID, runs: int, timer: Timer) -> list[float]:
    for _ in range(runs):
        with services.sessions.begin() as session:
            session.execute(sa.delete(Event).where(Event.calendar_id == calendar_id))
            session.execute(
                sa.update(Calendar).where(Calendar.id == calendar_id).values(sync_token=None)
            )
        with timer, collector_paused():  # as the worker process runs pulls
            outcome = pull_calendar(services, calendar_id)
        assert outcome.report is not None
        assert outcome.full
    return timer.wall


def settle(services: Services) -> None:
    """What autovacuum would soon do after the full syncs' bulk loads: planner statistics
    and the visibility map (as ``tests/perf/bench_events.py`` does)."""
    with services.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE"))


def incremental(
    services: Services,
    calendar_id: uuid.UUID,
    google: object,
    email: str,
    runs: int,
    timer: Timer,
) -> list[float]:
    for run in range(runs):
        for n in range(10):
            google.events().patch(  # type: ignore[attr-defined]
                calendarId=email, eventId=f"bench{run * 10 + n:07d}", body={"summary": f"r{run}"}
            ).execute()
        with timer, collector_paused():  # as the worker process runs pulls
            outcome = pull_calendar(services, calendar_id)
        assert outcome.report is not None
        assert outcome.report.updated == 10, outcome.report
    return timer.wall


def change_to_visible(
    services: Services,
    env: dict[str, str],
    user_id: uuid.UUID,
    google: object,
    email: str,
    samples: int,
) -> list[float]:
    port = int(env["CALSYNC_PUBLIC_URL"].rsplit(":", 1)[1])
    server = ThreadedServer(create_app(services), port=port, name="calsync-api")
    timings = []
    with server, worker_threads(services, threads=4):
        ensure_channels(services, user_id)
        time.sleep(0.5)
        for n in range(samples):
            event_id = f"visible{n:05d}{uuid.uuid4().hex[:8]}"
            started = time.perf_counter()
            google.events().insert(  # type: ignore[attr-defined]
                calendarId=email,
                body={
                    "id": event_id,
                    "summary": "visible?",
                    "start": {"dateTime": "2026-12-01T09:00:00Z"},
                    "end": {"dateTime": "2026-12-01T10:00:00Z"},
                },
            ).execute()
            while True:
                with services.sessions() as session:
                    if session.scalar(sa.select(Event.id).where(Event.google_event_id == event_id)):
                        break
                time.sleep(0.001)
            timings.append(time.perf_counter() - started)
            time.sleep(0.05)
    return timings


def ms(values: list[float], quantile: float = 0.5) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--pulls-only", action="store_true", help="skip the latency figure")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the pulls here")
    parser.add_argument("--database", default=DATABASE, help="scratch database (dropped)")
    parser.add_argument("--redis", default=REDIS, help="Redis URL (a database of your own)")
    parser.add_argument(
        "--read-model", action="store_true", help="fill the read model first (else off)"
    )
    args = parser.parse_args()
    emulator_port, api_port = free_port(), free_port()
    emulator = start_emulator(emulator_port)
    base = f"http://127.0.0.1:{emulator_port}"
    env = environment(base, api_port, args.database, args.redis)
    settings = dataclasses.replace(Settings.from_env(env), sync_min_interval_seconds=0.0)
    services = bootstrap(settings)
    upgrade(services.engine)
    if args.read_model:
        read_model.fill(services.sessions, datetime.now(UTC))
    try:
        with EmulatorControl(base) as control:
            email = "bench@example.com"
            user_id = connect_user(services, control, email)
            token = control.issue_tokens(email)["access_token"]
            seed(base, token, email, args.events)
            google = build_calendar_service(base, token)
            calendar_id = calendar_id_of(services, user_id)
            profiles = (cProfile.Profile(), cProfile.Profile()) if args.profile else (None, None)
            timer = Timer(profiles[0])
            full = full_sync(services, calendar_id, runs=3, timer=timer)
            print(
                f"full sync of {args.events} events into PostgreSQL: "
                f"best {min(full) * 1000:.0f} ms, median {statistics.median(full) * 1000:.0f} ms"
                f" (CPU of this process: median {ms(timer.cpu)})"
            )
            settle(services)
            timer = Timer(profiles[1])
            incr = incremental(services, calendar_id, google, email, runs=20, timer=timer)
            print(
                f"incremental sync of 10 changes: p50 {ms(incr)}, p90 {ms(incr, 0.9)}"
                f" (CPU of this process: p50 {ms(timer.cpu)})"
            )
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
                for name, profile in zip(("full", "incremental"), profiles, strict=True):
                    assert profile is not None
                    profile.dump_stats(args.profile / f"{name}.prof")
            if args.pulls_only:
                return
            google = build_calendar_service(base, token)  # a fresh connection
            latency = change_to_visible(services, env, user_id, google, email, samples=20)
            print(
                f"change to visible through a real push: p50 {ms(latency)}, p90 {ms(latency, 0.9)}"
            )
    finally:
        services.close()
        emulator.terminate()


if __name__ == "__main__":
    main()
