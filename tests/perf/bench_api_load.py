"""API under load: one API process, N signed-in users, 50 concurrent clients. Prints
figures, asserts nothing.

Run: ``.venv/bin/python -m tests.perf.bench_api_load [--quick] [--users 500]
[--seconds 60] [--redis redis://127.0.0.1:6379/7]``

Needs PostgreSQL, Redis and ``wrk`` (Debian's package). Production mode on this machine:
a scratch database ``calsync_bench_api_load`` (dropped first), the Redis database
``--redis`` (flushed), the emulator as Google in its own process, ``calsync serve
--workers 1 --no-access-log`` (one API process), ``calsync worker --processes 1`` (so that
creates reach Google) and, where this checkout has it, ``calsync serve-webhooks`` (the
webhook intake in its own process, docs/operations.md); otherwise the webhook is posted
to the API process.

Data: `--users` users (500; 40 with ``--quick``), each with a primary calendar of
`--events` events (200; 40 with ``--quick``) around the current week, one in ten a weekly
series, pulled into calsync as a sign-in would; then the read model is filled and caught up,
as the scheduler's first tick does in production (``--no-read-model``: left empty, so every
list expands per request, as this benchmark measured before decision HB3).

Load: wrk with `--connections` (50) keep-alive connections, each request acting as a
random user: 90% ``GET /events`` of the user's current week with ``expand=true``, 10%
``POST /events``. Meanwhile, from this process:

- ``GET /healthz`` every 20 ms (its p99 and max throughout the load);
- a real push notification (a channel opened on the emulator) every 20 ms to the webhook
  intake (its p99 while the API is saturated);
- keep-alive reuse: 16 clients (httpx, its default 5 s idle expiry) each reusing its
  connection after an idle of 4.85-5 s, where a server that closes idle connections at
  5 s races them (a request sent as the server closes is dropped with no answer);

then it waits for the worker to push every create and checks each one on Google (the
emulator), by its Google id.

Prints: requests/s, p50/p95/p99, non-2xx answers, socket errors (dropped connections),
/healthz p50/p99/max, webhook p50/p99/max, keep-alive reuses dropped, creates answered
201 / stored / on Google.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import redis
import sqlalchemy as sa

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.emulator.testing import EmulatorControl
from calsync.events import read_model, upkeep
from calsync.store.migrate import upgrade
from calsync.store.tables import Calendar, Event, WatchChannel
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.channels import channel_token, ensure_channels
from calsync.sync.pull import pull_calendar
from calsync.web.auth.tokens import issue_token
from tests.google_users import connect_google_user
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_intake import cpu_seconds, machine, serving
from tests.perf.bench_sync import environment

DATABASE = "calsync_bench_api_load"
CREATE_SUMMARY = "bench-create"


# --- data -------------------------------------------------------------------------------


def week_bounds(now: datetime) -> tuple[datetime, datetime]:
    """Monday 00:00 UTC of this week and the Monday after."""
    monday = (now - timedelta(days=now.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return monday, monday + timedelta(days=7)


def calendar_batch(token: str, calendar_id: str, count: int, monday: datetime) -> bytes:
    """``count`` events spread over four weeks around ``monday``, one in ten weekly."""
    boundary = "load" + uuid.uuid4().hex
    rng = random.Random(calendar_id)
    parts = []
    for n in range(count):
        start = monday + timedelta(days=rng.randint(-14, 20), hours=rng.randint(6, 19))
        event: dict[str, Any] = {
            "summary": f"Event {n}",
            "start": {"dateTime": start.isoformat().replace("+00:00", "Z"), "timeZone": "UTC"},
            "end": {
                "dateTime": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
                "timeZone": "UTC",
            },
        }
        if n % 10 == 0:
            event["recurrence"] = ["RRULE:FREQ=WEEKLY;COUNT=20"]
        payload = json.dumps(event)
        parts.append(
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <b+{n}>\r\n\r\n"
            f"POST /calendar/v3/calendars/{calendar_id}/events HTTP/1.1\r\n"
            f"Content-Type: application/json\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n{payload}\r\n"
        )
    return (
        f'multipart/mixed; boundary="{boundary}"\n'.encode()
        + ("".join(parts) + f"--{boundary}--\r\n").encode()
    )


def populate(
    services: Services, control: EmulatorControl, emulator: str, users: int, events: int
) -> list[str]:
    """Connect `users` users with `events` events each; return a JWT per user."""
    monday, _ = week_bounds(datetime.now(UTC))
    tokens = []
    started = time.perf_counter()
    with httpx.Client(timeout=120) as client:
        for i in range(users):
            email = f"load{i}@example.com"
            account, granted = connect_google_user(services, control, email)
            head, body = calendar_batch(granted["access_token"], email, events, monday).split(
                b"\n", 1
            )
            answer = client.post(
                f"{emulator}/batch/calendar/v3",
                content=body,
                headers={"Content-Type": head.decode()},
            )
            answer.raise_for_status()
            sync_calendar_list(services, account.id)
            with services.sessions() as session:
                calendar_ids = session.scalars(
                    sa.select(Calendar.id).where(Calendar.user_id == account.id)
                ).all()
            for calendar_id in calendar_ids:
                pull_calendar(services, calendar_id)
            tokens.append(
                issue_token(
                    services.jwt,
                    subject=str(account.id),
                    email=email,
                    role="user",
                    lifetime=timedelta(hours=6),
                )
            )
            if (i + 1) % 50 == 0:
                print(f"  {i + 1} users in {time.perf_counter() - started:.0f} s", flush=True)
    return tokens


def push_headers(services: Services, user_id: uuid.UUID) -> dict[str, str]:
    """The headers of a real ``exists`` notification for the user's events channel."""
    ensure_channels(services, user_id)
    with services.sessions() as session:
        channel = session.scalars(
            sa.select(WatchChannel).where(
                WatchChannel.kind == "events", WatchChannel.user_id == user_id
            )
        ).first()
    assert channel is not None
    assert channel.resource_id
    return {
        "X-Goog-Channel-ID": str(channel.id),
        "X-Goog-Channel-Token": channel_token(services.settings.encryption_keys, str(channel.id)),
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/x",
        "X-Goog-Resource-State": "exists",
        "X-Goog-Message-Number": "2",
    }


# --- wrk --------------------------------------------------------------------------------

WRK_SCRIPT = """
local tokens = {%(tokens)s}
local week = "%(week)s"
local body = '%(body)s'
creates = 0  -- global: done() reads it with thread:get
local statuses = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  local token = tokens[math.random(#tokens)]
  local headers = {["Authorization"] = "Bearer " .. token}
  if math.random() < 0.1 then
    headers["Content-Type"] = "application/json"
    return wrk.format("POST", "/events", headers, body)
  end
  return wrk.format("GET", "/events?" .. week, headers)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 201 then creates = creates + 1 end
end

function done(summary, latency, requests)
  local created = 0
  for _, thread in ipairs(threads) do
    created = created + (thread:get("creates") or 0)
  end
  io.write(string.format("LATENCY p50=%%.3f p95=%%.3f p99=%%.3f max=%%.3f\\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("CREATED %%d\\n", created))
end
"""


def wrk_script(tokens: list[str], now: datetime) -> Path:
    monday, sunday = week_bounds(now)
    week = f"start_date={monday.date()}&end_date={(sunday - timedelta(days=1)).date()}"
    week += "&expand=true&limit=100"
    start = now.replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    body = json.dumps(
        {
            "title": CREATE_SUMMARY,
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(minutes=30)).isoformat(),
        }
    )
    script = Path(tempfile.mkdtemp(prefix="calsync-load-")) / "load.lua"
    script.write_text(
        WRK_SCRIPT % {"tokens": ",".join(f'"{t}"' for t in tokens), "week": week, "body": body}
    )
    return script


def run_wrk(script: Path, url: str, connections: int, seconds: int) -> dict[str, Any]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    argv += ["--latency", "-s", str(script), url]
    print(f"  $ {shlex.join(argv)}", flush=True)
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    figures: dict[str, Any] = {"output": output}
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("LATENCY"):
            for pair in line.split()[1:]:
                name, value = pair.split("=")
                figures[name] = float(value)
        elif line.startswith("CREATED"):
            figures["created"] = int(line.split()[1])
        elif line.startswith("Requests/sec:"):
            figures["rate"] = float(line.split()[1])
        elif " requests in " in line:
            figures["requests"] = int(line.split()[0])
        elif line.startswith("Non-2xx"):
            figures["non_2xx"] = int(line.rsplit(" ", 1)[1])
        elif line.startswith("Socket errors:"):
            figures["socket_errors"] = line.split(":", 1)[1].strip()
    return figures


# --- probes -----------------------------------------------------------------------------


class Probe(threading.Thread):
    """Sends one request every `period` seconds on a keep-alive client; keeps latencies."""

    def __init__(self, name: str, send: Any, period: float = 0.02) -> None:
        super().__init__(name=name, daemon=True)
        self.send = send
        self.period = period
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                started = time.perf_counter()
                try:
                    status = self.send(client)
                    if status >= 300:
                        self.failures.append(str(status))
                except httpx.HTTPError as exc:
                    self.failures.append(type(exc).__name__)
                took = time.perf_counter() - started
                self.latencies.append(took)
                self.stop.wait(max(0.0, self.period - took))


class KeepAliveProbe(threading.Thread):
    """Reuses one connection after idles around 5 s (uvicorn's default keep-alive)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.attempts = 0
        self.dropped: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        rng = random.Random()
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                try:
                    client.get(self.url)
                except httpx.HTTPError as exc:
                    self.dropped.append(type(exc).__name__)
                self.attempts += 1
                self.stop.wait(rng.uniform(4.85, 5.0))


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return (
        f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms, "
        f"max {ordered[-1] * 1000:.1f} ms ({len(values)} requests)"
    )


# --- after ------------------------------------------------------------------------------


def creates_on_google(
    services: Services, emulator: str, tokens: dict[uuid.UUID, str], wait: float
) -> tuple[int, int, int]:
    """(stored, pushed, found on Google) of the load's creates, after waiting up to
    `wait` seconds for the worker to push them all."""
    deadline = time.monotonic() + wait
    while True:
        with services.sessions() as session:
            rows = session.execute(
                sa.select(
                    Event.user_id,
                    Event.google_event_id,
                    Event.sync_state,
                    Calendar.provider_calendar_id,
                )
                .join(Calendar, Calendar.id == Event.calendar_id)
                .where(Event.title == CREATE_SUMMARY)
            ).all()
        # The Google id is chosen before the insert (so a retry cannot write twice): an
        # event is on Google once its state says so.
        pushed = [row for row in rows if row.sync_state == "synced" and row.google_event_id]
        if len(pushed) == len(rows) or time.monotonic() > deadline:
            break
        time.sleep(1)
    found = 0
    missing: list[str] = []
    with httpx.Client(timeout=30) as client:
        for row in pushed:
            url = f"{emulator}/calendar/v3/calendars/{row.provider_calendar_id}/events/"
            answer = client.get(
                url + row.google_event_id,
                headers={"Authorization": f"Bearer {tokens[row.user_id]}"},
            )
            if answer.status_code == 200 and answer.json().get("status") != "cancelled":
                found += 1
            else:
                missing.append(f"{row.google_event_id}: {answer.status_code} {answer.text[:80]}")
    if missing:
        print("not on Google:", *missing[:5], sep="\n  ")
    return len(rows), len(pushed), found


def google_tokens(control: EmulatorControl, services: Services) -> dict[uuid.UUID, str]:
    """A fresh emulator access token per calsync user (to read their events back)."""
    with services.sessions() as session:
        from calsync.store.tables import User

        users = session.execute(sa.select(User.id, User.email)).all()
    return {row.id: control.issue_tokens(row.email)["access_token"] for row in users}


# --- main -------------------------------------------------------------------------------


def has_webhook_command() -> bool:
    try:
        import calsync.web.webhook_app  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(argv, env={**os.environ, **env})
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 users of 40 events, 20 s")
    parser.add_argument("--users", type=int)
    parser.add_argument("--events", type=int)
    parser.add_argument("--seconds", type=int)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--database", default=DATABASE, help="scratch database (dropped first)")
    parser.add_argument(
        "--no-read-model", action="store_true", help="leave the read model empty (lists expand)"
    )
    parser.add_argument(
        "--keep-alive", type=int, help="the API's --keep-alive (where calsync serve has it)"
    )
    args = parser.parse_args()
    users = args.users or (40 if args.quick else 500)
    events = args.events or (40 if args.quick else 200)
    seconds = args.seconds or (20 if args.quick else 60)

    emulator_port, api_port, webhook_port = free_port(), free_port(), free_port()
    emulator = f"http://127.0.0.1:{emulator_port}"
    emulator_process = start_emulator(emulator_port)
    separate = has_webhook_command()
    try:
        env = environment(emulator, api_port, args.database) | {
            "CALSYNC_REDIS_URL": args.redis,
            "CALSYNC_API_RATE_LIMIT_PER_MINUTE": "1000000",
        }
        redis.Redis.from_url(args.redis).flushdb()
        settings = Settings.from_env(env)
        services = bootstrap(settings)
        upgrade(services.engine)
        control = EmulatorControl(emulator)
        print(f"calsync API load: {machine()}", flush=True)
        print(f"  populating {users} users x {events} events ...", flush=True)
        tokens = populate(services, control, emulator, users, events)
        if not args.no_read_model:
            # What the scheduler's first tick does in production (no scheduler runs here):
            # without it every list expands per request (decision HB3).
            read_model.fill(services.sessions, datetime.now(UTC))
            while upkeep.catch_up(services.sessions).more:
                pass
        with services.sessions() as session:
            first_user = session.scalars(sa.select(Calendar.user_id)).first()
        assert first_user is not None
        push = push_headers(services, first_user)

        serve = [sys.executable, "-m", "calsync.cli", "serve", "--host", "127.0.0.1"]
        serve += ["--port", str(api_port), "--workers", "1", "--no-access-log"]
        if args.keep_alive is not None:
            serve += ["--keep-alive", str(args.keep_alive)]
        worker = [sys.executable, "-m", "calsync.cli", "worker", "--processes", "1"]
        worker += ["--threads", "4"]
        stack = contextlib.ExitStack()
        with stack:
            stack.enter_context(process(worker, env))
            api_pid = stack.enter_context(serving(serve, env, api_port))
            webhook_url = f"http://127.0.0.1:{api_port}/webhooks/google"
            if separate:
                hooks = [sys.executable, "-m", "calsync.cli", "serve-webhooks"]
                hooks += ["--host", "127.0.0.1", "--port", str(webhook_port)]
                stack.enter_context(serving(hooks, env, webhook_port))
                webhook_url = f"http://127.0.0.1:{webhook_port}/webhooks/google"
            print(f"  webhook intake: {'its own process' if separate else 'the API process'}")
            script = wrk_script(tokens, datetime.now(UTC))
            base = f"http://127.0.0.1:{api_port}"
            healthz = Probe("healthz", lambda c: c.get(f"{base}/healthz").status_code)
            webhook = Probe("webhook", lambda c: c.post(webhook_url, headers=push).status_code)
            reuse = [KeepAliveProbe(f"{base}/healthz") for _ in range(16)]
            probes: list[Any] = [healthz, webhook, *reuse]
            # Warm up (imports, first connections), then measure.
            run_wrk(script, base, args.connections, 3)
            cpu_before = cpu_seconds(api_pid)
            for probe in probes:
                probe.start()
            figures = run_wrk(script, base, args.connections, seconds)
            for probe in probes:
                probe.stop.set()
            for probe in probes:
                probe.join()
            api_cpu = cpu_seconds(api_pid) - cpu_before
            print(figures["output"], flush=True)
            google = google_tokens(control, services)
            stored, pushed, found = creates_on_google(services, emulator, google, 120)
        print(f"\nusers {users} x {events} events; {args.connections} connections, {seconds} s")
        print(f"requests/s      {figures.get('rate', 0):.0f}  ({figures.get('requests')} requests)")
        print(
            f"latency         p50 {figures.get('p50', 0):.1f} ms, p95 {figures.get('p95', 0):.1f}"
            f" ms, p99 {figures.get('p99', 0):.1f} ms, max {figures.get('max', 0):.1f} ms"
        )
        print(f"non-2xx         {figures.get('non_2xx', 0)}")
        print(f"socket errors   {figures.get('socket_errors', 'none')}")
        print(f"API CPU         {api_cpu:.1f} s over {seconds} s")
        print(f"/healthz        {percentiles(healthz.latencies)}; failures {healthz.failures[:5]}")
        print(f"webhook         {percentiles(webhook.latencies)}; failures {webhook.failures[:5]}")
        attempts = sum(p.attempts for p in reuse)
        dropped = [d for p in reuse for d in p.dropped]
        print(f"keep-alive      {len(dropped)} of {attempts} reuses after ~5 s idle dropped")
        print(
            f"creates         {figures.get('created', 0)} answered 201, {stored} stored, "
            f"{pushed} pushed, {found} on Google"
        )
        services.close()
    finally:
        emulator_process.terminate()
        emulator_process.wait()


if __name__ == "__main__":
    main()
