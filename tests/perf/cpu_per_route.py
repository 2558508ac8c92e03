"""The API process's CPU per request, per route, in one process: what one request of
issue 21's load (a week read, a create), issue 19's month page and the probes cost.
Prints figures only.

Run: ``.venv/bin/python -m tests.perf.cpu_per_route --seed-data [--database NAME]`` once
(a scratch PostgreSQL database, default ``calsync_cpu_per_route``, dropped first: ``--users``
users of 40 events around the current week as ``tests.perf.bench_api_load`` makes them,
and one user with a calendar of ``--events`` events of 2026 as
``tests.perf.bench_months`` makes it, through the emulator; a few minutes), then
``.venv/bin/python -m tests.perf.cpu_per_route [--rounds 200] [--profile ROUTE:out.prof]``
as often as wanted. Production mode: PostgreSQL and Redis (``--redis``, flushed first).

Each request is one call of the ASGI app from this process (no socket, no HTTP client:
only the server's work is counted) and is timed with `time.process_time`, which counts
every thread of the process, the thread pool's included. The machine is shared, so CPU
per request is the figure to compare, before and after a change, in the same minute.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio.to_thread
import orjson
import redis
from cryptography.fernet import Fernet

import calsync
from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.emulator.testing import EmulatorControl
from calsync.events import read_model, upkeep
from calsync.store.db import api_pool
from calsync.store.migrate import upgrade
from calsync.sync.pull import pull_calendar
from calsync.web.app import create_app
from calsync.web.auth.tokens import issue_token
from tests.perf.bench_api_load import populate, week_bounds
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_months import generate, seed_through_google
from tests.perf.bench_peer import connect
from tests.perf.bench_sync import fresh_database

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _state_file(database: str) -> Path:
    return Path(tempfile.gettempdir()) / f"{database}.json"


def _environment(emulator: str, state: dict[str, Any]) -> dict[str, str]:
    return {
        "CALSYNC_DATABASE_URL": state["url"],
        "CALSYNC_REDIS_URL": state["redis"],
        "CALSYNC_PUBLIC_URL": "http://127.0.0.1:9",
        "CALSYNC_JWT_SECRET": state["jwt"],
        "CALSYNC_ENCRYPTION_KEYS": state["fernet"],
        "CALSYNC_GOOGLE_CLIENT_ID": "calsync-dev",
        "CALSYNC_GOOGLE_CLIENT_SECRET": "calsync-dev-secret",
        "CALSYNC_GOOGLE_API_BASE": emulator,
        "CALSYNC_GOOGLE_OAUTH_BASE": emulator,
        "CALSYNC_LOG_LEVEL": "WARNING",
        "CALSYNC_ADDRESS_RATE_LIMIT_PER_MINUTE": "100000000",
        "CALSYNC_API_RATE_LIMIT_PER_MINUTE": "100000000",
    }


def seed_data(database: str, redis_url: str, users: int, events: int) -> None:
    """Make the database and leave what later runs need in the state file."""
    state: dict[str, Any] = {
        "redis": redis_url,
        "jwt": uuid.uuid4().hex * 2,
        "fernet": Fernet.generate_key().decode(),
        "url": fresh_database(database),
    }
    port = free_port()
    emulator = start_emulator(port)
    base = f"http://127.0.0.1:{port}"
    services = bootstrap(Settings.from_env(_environment(base, state)))
    try:
        upgrade(services.engine)
        control = EmulatorControl(base)
        state["tokens"] = populate(services, control, base, users, 40)
        side = connect(services, control, "month0@example.com")
        seed_through_google(base, side.token, side.email, generate(20261206, events))
        pull_calendar(services, side.calendar_id)
        read_model.fill(services.sessions, datetime.now(UTC))
        while upkeep.catch_up(services.sessions).more:  # as the workers would
            pass
        state["month_token"] = issue_token(
            services.jwt, subject=str(side.user_id), email=side.email, role="user"
        )
        _state_file(database).write_text(json.dumps(state))
    finally:
        services.close()
        emulator.terminate()
        emulator.wait(10)


async def call(
    app: ASGIApp, method: str, path: str, *, token: str | None = None, body: bytes = b""
) -> tuple[int, bytes]:
    """One request through `app` as uvicorn would make it; the status and the body."""
    target, _, query = path.partition("?")
    headers = [(b"host", b"calsync")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": target,
        "raw_path": target.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent: list[dict[str, Any]] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop()
        await asyncio.Event().wait()  # a client that stays connected
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def _requests(state: dict[str, Any]) -> dict[str, Callable[[random.Random], tuple[Any, ...]]]:
    """Per route: a request (method, path, token, body) made from a random generator."""
    monday, sunday_end = week_bounds(datetime.now(UTC))
    week = f"start_date={monday.date()}&end_date={(sunday_end - timedelta(days=1)).date()}"
    tokens = state["tokens"]

    def create(rng: random.Random) -> tuple[Any, ...]:
        # weeks after the one read, so that runs leave the week's page as seeded
        start = monday + timedelta(days=rng.randint(60, 300), hours=rng.randint(6, 19))
        event = {
            "title": "cpu-per-route",
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(minutes=30)).isoformat(),
        }
        return "POST", "/events", rng.choice(tokens), orjson.dumps(event)

    def month(rng: random.Random) -> tuple[Any, ...]:
        first = date(2026, rng.randint(1, 12), 1)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        query = f"start_date={first}&end_date={last}&expand=true&limit=200"
        return "GET", f"/events?{query}", state["month_token"], b""

    return {
        "GET /healthz": lambda rng: ("GET", "/healthz", None, b""),
        "GET /me": lambda rng: ("GET", "/me", rng.choice(tokens), b""),
        "GET /events week": lambda rng: (
            "GET",
            f"/events?expand=true&limit=100&{week}",
            rng.choice(tokens),
            b"",
        ),
        "GET /events month page": month,
        "POST /events": create,
    }


async def measure(
    app: ASGIApp, name: str, make: Callable[[random.Random], tuple[Any, ...]], rounds: int
) -> list[float]:
    """CPU seconds of each of `rounds` requests (after a few unmeasured ones)."""
    rng = random.Random(name)
    cpus = []
    for n in range(rounds + 10):
        method, path, token, body = make(rng)
        started = time.process_time()
        status, answer = await call(app, method, path, token=token, body=body)
        spent = time.process_time() - started
        assert status in (200, 201), (name, status, answer[:300])
        if n >= 10:
            cpus.append(spent)
    return cpus


async def _inline(func: Callable[[], Any], *_args: Any, **_kwargs: Any) -> Any:
    return func()


async def run(database: str, rounds: int, profile: str | None) -> None:
    state = json.loads(_state_file(database).read_text())
    redis.Redis.from_url(state["redis"]).flushdb()
    settings = Settings.from_env(_environment("http://127.0.0.1:9", state))
    services = bootstrap(settings, pool=api_pool(settings.api_threads))  # as `calsync serve`
    profiled, _, profile_to = (profile or "").partition(":")
    if profile:
        # cProfile sees one thread: run the thread pool's work inline, on the loop.
        anyio.to_thread.run_sync = _inline  # type: ignore[assignment]
    try:
        app: Any = create_app(services)
        print(
            f"CPU per request, in one process, {rounds} requests a route (ms); {calsync.__file__}"
        )
        for name, make in _requests(state).items():
            profiler = cProfile.Profile(time.process_time) if name == profiled else None
            if profiler is not None:
                profiler.enable()
            cpus = await measure(app, name, make, rounds)
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profile_to)
            ordered = sorted(cpus)
            print(
                f"  {name:24} mean {statistics.mean(cpus) * 1000:6.2f}  p50 "
                f"{ordered[len(ordered) // 2] * 1000:6.2f}  p90 "
                f"{ordered[int(len(ordered) * 0.9)] * 1000:6.2f}",
                flush=True,
            )
        print(f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed-data", action="store_true")
    parser.add_argument("--database", default="calsync_cpu_per_route")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--profile", help="ROUTE:FILE, cProfile of one route's requests")
    args = parser.parse_args()
    if args.seed_data:
        seed_data(args.database, args.redis, args.users, args.events)
    asyncio.run(run(args.database, args.rounds, args.profile))


if __name__ == "__main__":
    main()
