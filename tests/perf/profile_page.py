"""Where a read-model page's time goes: CPU and wall per page in one process, optionally
under cProfile. Prints figures only.

Run: ``.venv/bin/python -m tests.perf.profile_page --seed-data`` once (seeds one user's
realistic 10,000-event calendar as `tests.perf.bench_months` does, through the emulator,
into the scratch database ``--database``, default ``calsync_profile_page``, fills the
read model and runs its upkeep to the end, as the workers would; about 2 minutes), then
``.venv/bin/python -m tests.perf.profile_page [--database D] [--profile out.prof]`` as
often as wanted: it lists every month of 2026 (``expand=true``, pages of 200) through the
ASGI app in this process (httpx's ASGI transport: no socket, no uvicorn), from a fresh
app (cold process) and then again (warm), and prints per page the wall
time and this process's CPU time (`time.process_time`: the machine is shared, so wall
time alone says little), with the load average. With ``--profile`` the thread pool's
work runs inline on the loop, so that cProfile sees it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx2 as httpx
import orjson
from cryptography.fernet import Fernet

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.emulator.testing import EmulatorControl
from calsync.events import read_model, upkeep
from calsync.store.migrate import upgrade
from calsync.sync.pull import pull_calendar
from calsync.web.app import create_app
from calsync.web.auth.tokens import issue_token
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_months import MONTHS, PAGE, generate, month_last, seed_through_google
from tests.perf.bench_peer import connect
from tests.perf.bench_sync import fresh_database

DATABASE = "calsync_profile_page"


def _state_file(database: str) -> Path:
    """Where ``--seed-data`` leaves what the later runs need (database, user, secrets)."""
    return Path(tempfile.gettempdir()) / f"{database}.json"


def _environment(emulator: str, database_url: str, state: dict[str, str]) -> dict[str, str]:
    return {
        "CALSYNC_DATABASE_URL": database_url,
        "CALSYNC_REDIS_URL": state["redis"],
        "CALSYNC_PUBLIC_URL": "http://127.0.0.1:9",
        "CALSYNC_JWT_SECRET": state["jwt"],
        "CALSYNC_ENCRYPTION_KEYS": state["fernet"],
        "CALSYNC_GOOGLE_CLIENT_ID": "calsync-dev",
        "CALSYNC_GOOGLE_CLIENT_SECRET": "calsync-dev-secret",
        "CALSYNC_GOOGLE_API_BASE": emulator,
        "CALSYNC_GOOGLE_OAUTH_BASE": emulator,
        "CALSYNC_LOG_LEVEL": "WARNING",
        "CALSYNC_ADDRESS_RATE_LIMIT_PER_MINUTE": "1000000",
        "CALSYNC_API_RATE_LIMIT_PER_MINUTE": "10000000",
        "CALSYNC_READ_MODEL": "true",
    }


def seed_data(seed: int, events: int, redis: str, database: str) -> None:
    state = {"redis": redis, "jwt": uuid.uuid4().hex * 2, "fernet": Fernet.generate_key().decode()}
    emulator_port = free_port()
    emulator = start_emulator(emulator_port)
    base = f"http://127.0.0.1:{emulator_port}"
    url = fresh_database(database)
    services = bootstrap(Settings.from_env(_environment(base, url, state)))
    try:
        upgrade(services.engine)
        with EmulatorControl(base) as control:
            side = connect(services, control, "profile0@example.com")
            seed_through_google(base, side.token, side.email, generate(seed, events))
        pull_calendar(services, side.calendar_id)
        read_model.fill(services.sessions, datetime.now(UTC))
        while upkeep.catch_up(services.sessions, run_for=3600.0).more:  # as the workers would
            pass
        state |= {"url": url, "user": str(side.user_id), "email": side.email}
        _state_file(database).write_text(json.dumps(state))
    finally:
        services.close()
        emulator.terminate()
        emulator.wait(10)


async def list_months(client: httpx.AsyncClient, token: str) -> tuple[list[float], list[float]]:
    """Every page of every month of 2026: (wall, CPU) seconds per page."""
    walls, cpus = [], []
    headers = {"Authorization": f"Bearer {token}"}
    for month in MONTHS:
        params = {
            "start_date": month[0].isoformat(),
            "end_date": month_last(month).isoformat(),
            "expand": "true",
            "limit": str(PAGE),
        }
        while True:
            wall, cpu = time.perf_counter(), time.process_time()
            response = await client.get("/events", params=params, headers=headers)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            assert response.status_code == 200, response.text[:300]
            cursor = orjson.loads(response.content).get("next_cursor")
            if not cursor:
                break
            params["cursor"] = cursor
    return walls, cpus


def _figures(label: str, walls: list[float], cpus: list[float]) -> None:
    def q(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))] * 1000

    print(
        f"{label}: {len(walls)} pages; wall p50 {q(walls, 0.5):.2f} ms p99 {q(walls, 0.99):.2f} ms"
        f" total {sum(walls) * 1000:.0f} ms; CPU p50 {q(cpus, 0.5):.2f} ms p99 "
        f"{q(cpus, 0.99):.2f} ms mean {statistics.mean(cpus) * 1000:.2f} ms",
        flush=True,
    )


async def _inline(func: Callable[[], Any], *_args: Any, **_kwargs: Any) -> Any:
    return func()


async def profile(profile_to: str | None, rounds: int, database: str) -> None:
    state = json.loads(_state_file(database).read_text())
    if profile_to:
        # cProfile sees one thread: run the thread pool's work inline, on the loop.
        anyio.to_thread.run_sync = _inline  # type: ignore[assignment]
    services = bootstrap(Settings.from_env(_environment("http://127.0.0.1:9", state["url"], state)))
    try:
        app = create_app(services)
        token = issue_token(services.jwt, subject=state["user"], email=state["email"], role="user")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://calsync") as client:
            walls, cpus = await list_months(client, token)
            _figures("cold process, 12 months", walls, cpus)
            profiler = cProfile.Profile(time.process_time) if profile_to else None
            all_walls, all_cpus = [], []
            for _ in range(rounds):
                if profiler is not None:
                    profiler.enable()
                walls, cpus = await list_months(client, token)
                if profiler is not None:
                    profiler.disable()
                all_walls += walls
                all_cpus += cpus
            _figures(f"warm, {rounds} x 12 months", all_walls, all_cpus)
            if profiler is not None and profile_to:
                profiler.dump_stats(profile_to)
        print(f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-data", action="store_true")
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--profile", help="write cProfile stats of the warm rounds here")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--database", default=DATABASE, help="the scratch database (made anew by --seed-data)"
    )
    args = parser.parse_args()
    if args.seed_data:
        seed_data(args.seed, args.events, args.redis, args.database)
    asyncio.run(profile(args.profile, args.rounds, args.database))


if __name__ == "__main__":
    main()
