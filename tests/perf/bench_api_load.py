"""API under load: one API process, N signed-in users, 50 concurrent clients. Prints
figures, asserts nothing.

Run: ``.venv/bin/python -m tests.perf.bench_api_load [--quick] [--users 500]
[--seconds 60] [--creates 0.1] [--scheduler] [--redis redis://127.0.0.1:6379/7]
[--database calsync_bench_api_load] [--no-analyse]``

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
list expands per request, as this benchmark measured before decision HB3); then the
database is analysed, as autovacuum would do in production (decisions IM3, IP1;
``--no-analyse`` leaves it out, as every run before IP1 did).

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
201 / stored / on Google; and the CPU each process used over the load (seconds, cores,
milliseconds per request: the API, the worker with its children, the scheduler with
``--scheduler``, the webhook intake, the emulator, this process's probes, wrk, the
PostgreSQL backends of the scratch database summed, the Redis server (all of it: shared
with whoever else uses it), the rest of the host), then what the worker, PostgreSQL and
the emulator used after the load until the last create was pushed (`process_cpu`).
``--creates 0`` (reads only) and ``--creates 0.5`` separate a read's and a create's
costs: each process's CPU a request is linear in the share of creates.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
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
from tests.perf.bench_intake import load, machine, serving
from tests.perf.bench_months import add_analyse_flag, analyse
from tests.perf.bench_sync import environment
from tests.perf.load_probes import KeepAliveProbe, Probe, percentiles
from tests.perf.load_wrk import CREATE_SUMMARY, run_wrk, week_bounds, wrk_script
from tests.perf.process_cpu import Meter, report

DATABASE = "calsync_bench_api_load"


# --- data -------------------------------------------------------------------------------


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


# --- after ------------------------------------------------------------------------------


def wait_pushed(services: Services, wait: float) -> tuple[list[Any], list[Any]]:
    """(stored, pushed) rows of the load's creates, after waiting up to `wait` seconds
    for the worker to push them all."""
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
            return list(rows), pushed
        time.sleep(1)


def found_on_google(emulator: str, tokens: dict[uuid.UUID, str], pushed: list[Any]) -> int:
    """How many of the `pushed` rows the emulator has, live, by their Google id."""
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
    return found


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


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 users of 40 events, 20 s")
    parser.add_argument("--users", type=int)
    parser.add_argument("--events", type=int)
    parser.add_argument("--seconds", type=int)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument(
        "--creates", type=float, default=0.1, help="share of requests that create (0.1)"
    )
    parser.add_argument(
        "--scheduler", action="store_true", help="run `calsync scheduler` beside the load"
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--database", default=DATABASE, help="scratch database (dropped first)")
    parser.add_argument(
        "--no-read-model", action="store_true", help="leave the read model empty (lists expand)"
    )
    add_analyse_flag(parser, when="after seeding")
    parser.add_argument(
        "--keep-alive", type=int, help="the API's --keep-alive (where calsync serve has it)"
    )
    args = parser.parse_args()
    args.users = args.users or (40 if args.quick else 500)
    args.events = args.events or (40 if args.quick else 200)
    args.seconds = args.seconds or (20 if args.quick else 60)
    return args


def prepare(
    args: argparse.Namespace, services: Services, control: EmulatorControl, emulator: str
) -> tuple[list[str], dict[str, str]]:
    """The users' tokens and a push notification's headers, the data in place."""
    print(f"calsync API load: {machine()}", flush=True)
    print(f"  populating {args.users} users x {args.events} events ...", flush=True)
    tokens = populate(services, control, emulator, args.users, args.events)
    if not args.no_read_model:
        # What the scheduler's first tick does in production (no scheduler runs here):
        # without it every list expands per request (decision HB3).
        read_model.fill(services.sessions, datetime.now(UTC))
        while upkeep.catch_up(services.sessions).more:
            pass
    # Statistics, as autovacuum would have them in production (decision IM3, IP1).
    analyse(services, args.analyse)
    with services.sessions() as session:
        first_user = session.scalars(sa.select(Calendar.user_id)).first()
    assert first_user is not None
    return tokens, push_headers(services, first_user)


def start_stack(
    stack: contextlib.ExitStack, args: argparse.Namespace, env: dict[str, str], ports: list[int]
) -> tuple[dict[str, int], str]:
    """Start the worker, the API, the webhook intake (where it exists) and, with
    ``--scheduler``, the scheduler; return their process ids by role and the webhook's
    address."""
    api_port, webhook_port = ports
    cli = [sys.executable, "-m", "calsync.cli"]
    serve = [*cli, "serve", "--host", "127.0.0.1"]
    serve += ["--port", str(api_port), "--workers", "1", "--no-access-log"]
    if args.keep_alive is not None:
        serve += ["--keep-alive", str(args.keep_alive)]
    worker = [*cli, "worker", "--processes", "1", "--threads", "4"]
    roots = {"worker": stack.enter_context(process(worker, env)).pid}
    if args.scheduler:
        roots["scheduler"] = stack.enter_context(process([*cli, "scheduler"], env)).pid
    roots["api"] = stack.enter_context(serving(serve, env, api_port))
    webhook_url = f"http://127.0.0.1:{api_port}/webhooks/google"
    if has_webhook_command():
        hooks = [*cli, "serve-webhooks", "--host", "127.0.0.1", "--port", str(webhook_port)]
        roots["webhook intake"] = stack.enter_context(serving(hooks, env, webhook_port))
        webhook_url = f"http://127.0.0.1:{webhook_port}/webhooks/google"
    print(f"  webhook intake: {'its own process' if 'webhook intake' in roots else 'the API'}")
    return roots, webhook_url


def main() -> None:
    args = arguments()
    emulator_port, api_port, webhook_port = free_port(), free_port(), free_port()
    emulator = f"http://127.0.0.1:{emulator_port}"
    emulator_process = start_emulator(emulator_port)
    try:
        env = environment(emulator, api_port, args.database) | {
            "CALSYNC_REDIS_URL": args.redis,
            "CALSYNC_API_RATE_LIMIT_PER_MINUTE": "1000000",
        }
        redis_client = redis.Redis.from_url(args.redis)
        redis_client.flushdb()
        services = bootstrap(Settings.from_env(env))
        upgrade(services.engine)
        control = EmulatorControl(emulator)
        tokens, push = prepare(args, services, control, emulator)
        with contextlib.ExitStack() as stack:
            roots, webhook_url = start_stack(stack, args, env, [api_port, webhook_port])
            roots["emulator"] = emulator_process.pid
            postgres = services.engine if services.engine.dialect.name == "postgresql" else None
            meter = Meter(roots, postgres, args.database, redis_client)
            base = f"http://127.0.0.1:{api_port}"
            healthz = Probe("healthz", lambda c: c.get(f"{base}/healthz").status_code)
            webhook = Probe("webhook", lambda c: c.post(webhook_url, headers=push).status_code)
            reuse = [KeepAliveProbe(f"{base}/healthz") for _ in range(16)]
            script = wrk_script(tokens, datetime.now(UTC), args.creates)
            # Warm up (imports, first connections), then measure.
            run_wrk(script, base, args.connections, 3)
            figures, used, drained = measure(meter, script, base, args, [healthz, webhook, *reuse])
            stored, pushed = wait_pushed(services, 120)
            end = meter.sample()
            figures["drain"] = end.wall - drained.wall
            drained = Meter.breakdown(drained, end)
            found = found_on_google(emulator, google_tokens(control, services), pushed)
        summary(args, figures, used, drained)
        print(f"/healthz        {percentiles(healthz.latencies)}; failures {healthz.failures[:5]}")
        print(f"webhook         {percentiles(webhook.latencies)}; failures {webhook.failures[:5]}")
        attempts = sum(p.attempts for p in reuse)
        dropped = [d for p in reuse for d in p.dropped]
        print(f"keep-alive      {len(dropped)} of {attempts} reuses after ~5 s idle dropped")
        print(
            f"creates         {figures.get('created', 0)} answered 201, {len(stored)} stored, "
            f"{len(pushed)} pushed, {found} on Google"
        )
        services.close()
    finally:
        emulator_process.terminate()
        emulator_process.wait()


def measure(
    meter: Meter, script: Path, base: str, args: argparse.Namespace, probes: list[Any]
) -> tuple[dict[str, Any], dict[str, float], Any]:
    """Run the load with the probes; return wrk's figures, each process's CPU over it,
    and the sample at its end (from which the worker's drain is measured)."""
    before = meter.sample()
    for probe in probes:
        probe.start()
    figures = run_wrk(script, base, args.connections, args.seconds)
    for probe in probes:
        probe.stop.set()
    for probe in probes:
        probe.join()
    after = meter.sample()
    figures["measured"] = after.wall - before.wall
    print(figures["output"], flush=True)
    return figures, Meter.breakdown(before, after), after


def summary(
    args: argparse.Namespace,
    figures: dict[str, Any],
    used: dict[str, float],
    drained: dict[str, float],
) -> None:
    requests = figures.get("requests") or 0
    creates = figures.get("created", 0)
    print(
        f"\nusers {args.users} x {args.events} events; {args.connections} connections, "
        f"{args.seconds} s, {args.creates:.0%} creates; load average {load()}"
    )
    print(f"requests/s      {figures.get('rate', 0):.0f}  ({requests} requests, {creates} creates)")
    print(
        f"latency         p50 {figures.get('p50', 0):.1f} ms, p95 {figures.get('p95', 0):.1f}"
        f" ms, p99 {figures.get('p99', 0):.1f} ms, max {figures.get('max', 0):.1f} ms"
    )
    print(f"non-2xx         {figures.get('non_2xx', 0)}")
    print(f"socket errors   {figures.get('socket_errors', 'none')}")
    print(f"API CPU         {used['api']:.1f} s over {args.seconds} s")
    print(report(used, figures["measured"], requests, "the load"))
    # What the worker (and what it drives: PostgreSQL, the emulator) still did after the
    # load, pushing the creates left queued: a create's whole cost includes it.
    drain = {k: v for k, v in drained.items() if k in ("worker", "postgres backends", "emulator")}
    print(report(drain, figures["drain"], requests, "the drain after it (to the last push)"))


if __name__ == "__main__":
    main()
