"""Google API calls per synced change, per local write, and per notification storm.

Run: ``.venv/bin/python -m tests.perf.bench_api_calls [--seed 5000] [--storm 2000]``

Needs PostgreSQL and Redis (as the tests do); uses a scratch database
``calsync_bench_calls`` and Redis database 7 (``--redis``), which it flushes. The
emulator runs in this process; every figure is a count from its request log
(``GET /emulator/requests``), so machine load does not change them. Figures:

- pulls: a full sync of `--seed` events, then incremental pulls after 1, 10, 100 and
  1,000 changes made on Google by another client: ``events.list`` calls per pull and per
  change;
- local writes through the API, pushed as the outbox sweep does (``push_outbox``):
  Google writes (insert/patch/delete) and reads per local change, for creates, updates,
  deletes, series, instance edits, and five queued edits of one event;
- a storm: `--storm` push notifications for one calendar POSTed to the webhook over
  loopback with 4 worker threads consuming the jobs (production minimum interval between
  pulls of a calendar, 5 s): ``events.list`` calls it caused.

Targets (issue 9): exactly one write per local change; N notifications -> <= 3 pulls.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx2 as httpx
import redis
import sqlalchemy as sa
from starlette.testclient import TestClient

from calsync.config import Settings
from calsync.emulator.server import EmulatorServer
from calsync.emulator.testing import EmulatorControl
from calsync.store import outbox
from calsync.store.migrate import upgrade
from calsync.store.tables import WatchChannel
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.channels import channel_token
from calsync.sync.pull import pull_calendar
from calsync.sync.write_back import push_outbox
from calsync.web.app import create_app
from calsync.web.auth.tokens import issue_token
from tests.conftest import FakeGoogle
from tests.integration.sync.conftest import SyncStack, running_stack, wait_until
from tests.perf.bench_emulator import batch_body, free_port
from tests.perf.bench_peer import machine
from tests.perf.bench_sync import environment

DATABASE = "calsync_bench_calls"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def calls(control: EmulatorControl) -> list[dict[str, Any]]:
    return [r for r in control.requests() if r["path"].startswith(("/calendar/v3/", "/batch/"))]


def lists_of(control: EmulatorControl, google_id: str) -> int:
    return len(control.requests(method="GET", path=f"/calendar/v3/calendars/{google_id}/events"))


@contextmanager
def stack_on(settings: Settings, google: FakeGoogle, threads: int) -> Iterator[SyncStack]:
    generator = running_stack(settings, google, threads=threads)
    stack = next(generator)
    try:
        yield stack
    finally:
        next(generator, None)


def insert(stack: SyncStack, first: int, count: int) -> None:
    """Insert events ``bench<first>`` .. on Google as another client (one batch request
    per 1,000, each on a new connection)."""
    token = stack.control.issue_tokens(stack.email)["access_token"]
    for start in range(first, first + count, 1000):
        size = min(1000, first + count - start)
        content_type, body = batch_body(token, stack.email, start, size)
        answer = httpx.post(
            f"{stack.google.url}/batch/calendar/v3",
            content=body,
            headers={"Content-Type": content_type},
            timeout=120,
        )
        answer.raise_for_status()
        assert answer.text.count("HTTP/1.1 200") == size, answer.text[:500]


def calendar_uuid(stack: SyncStack, google_id: str) -> uuid.UUID:
    return stack.calendar_row(google_id).id


def pulls(stack: SyncStack, seed: int, lines: list[str]) -> None:
    stack.connect("pulls@example.com")
    sync_calendar_list(stack.services, stack.user_id)
    email = stack.email
    calendar = calendar_uuid(stack, email)
    insert(stack, 0, seed)
    stack.control.clear_requests()
    outcome = pull_calendar(stack.services, calendar)
    assert outcome.full
    full = lists_of(stack.control, email)
    lines.append(f"full sync of {seed:,} events: {full} events.list calls")
    for changes in (1, 10, 100, 1000):
        insert(stack, seed + changes * 10, changes)
        stack.control.clear_requests()
        outcome = pull_calendar(stack.services, calendar)
        assert outcome.report is not None
        assert outcome.report.inserted == changes, outcome.report
        made = calls(stack.control)
        lists = lists_of(stack.control, email)
        lines.append(
            f"incremental pull of {changes:>4} changes: {lists} events.list, "
            f"{len(made)} calls in all = {len(made) / changes:.3f} calls per change"
        )


def local_writes(stack: SyncStack, lines: list[str]) -> None:
    stack.connect("writes@example.com")
    sync_calendar_list(stack.services, stack.user_id)
    services = stack.services
    token = issue_token(
        services.jwt,
        subject=str(stack.user_id),
        email=stack.email,
        role="user",
        now=services.clock(),
    )
    headers = {"Authorization": f"Bearer {token}"}
    client = TestClient(create_app(services))

    def push_all() -> tuple[int, int]:
        stack.control.clear_requests()
        for _ in range(20):
            with services.sessions() as session:
                due = outbox.due_events(session, now=services.clock())
            if not due:
                break
            for event_id in due:
                push_outbox(services, services.providers, event_id)
        made = calls(stack.control)
        writes = sum(1 for r in made if r["method"] in WRITES)
        return writes, len(made) - writes

    def row(name: str, changes: int, action: Callable[[], None]) -> None:
        action()
        writes, reads = push_all()
        lines.append(
            f"{name:<46} {changes:>4} changes: {writes:>4} writes "
            f"({writes / changes:.2f} per change), {reads} reads"
        )

    def body(n: int, **extra: Any) -> dict[str, Any]:
        day = 1 + n % 28
        return {
            "title": f"local {n}",
            "start_time": f"2031-03-{day:02d}T10:00:00Z",
            "end_time": f"2031-03-{day:02d}T11:00:00Z",
        } | extra

    created: list[dict[str, Any]] = []

    def creates() -> None:
        for n in range(100):
            answer = client.post("/events", json=body(n), headers=headers)
            assert answer.status_code == 201, answer.text
            created.append(answer.json())

    def updates() -> None:
        for event in created:
            answer = client.put(f"/events/{event['id']}", json={"title": "u"}, headers=headers)
            assert answer.status_code == 200, answer.text

    def queued() -> None:
        for event in created[:20]:
            for n in range(5):
                answer = client.put(
                    f"/events/{event['id']}", json={"location": f"R{n}"}, headers=headers
                )
                assert answer.status_code == 200, answer.text

    series: list[dict[str, Any]] = []

    def series_creates() -> None:
        for n in range(20):
            extra = {"recurrence": ["RRULE:FREQ=WEEKLY;COUNT=10"], "timezone": "UTC"}
            answer = client.post("/events", json=body(n, **extra), headers=headers)
            assert answer.status_code == 201, answer.text
            series.append(answer.json())

    def instance_edits() -> None:
        listing = client.get(
            "/events",
            params={
                "start_date": "2031-03-01",
                "end_date": "2031-05-31",
                "expand": "true",
                "recurring": "true",
                "limit": "200",
            },
            headers=headers,
        )
        assert listing.status_code == 200, listing.text
        firsts: dict[str, str] = {}
        for item in listing.json()["events"]:
            firsts.setdefault(item["series_id"], item["id"])
        assert len(firsts) == 20, len(firsts)
        for instance in firsts.values():
            answer = client.put(f"/events/{instance}", json={"title": "moved"}, headers=headers)
            assert answer.status_code == 200, answer.text

    def deletes() -> None:
        for event in created + series:
            answer = client.delete(f"/events/{event['id']}", headers=headers)
            assert answer.status_code == 204, answer.text

    with client:
        row("create single events", 100, creates)
        row("update each once", 100, updates)
        row("5 queued edits of each of 20 events", 100, queued)
        row("create weekly series", 20, series_creates)
        row("edit one instance of each series", 20, instance_edits)
        row("delete every event and series", 120, deletes)


def storm(stack: SyncStack, count: int, lines: list[str]) -> None:
    stack.connect("storm@example.com")
    email = stack.email
    insert(stack, 0, 3)
    stack.services.jobs.connect_user.send(str(stack.user_id))

    def channel() -> WatchChannel | None:
        with stack.services.sessions() as session:
            return session.scalar(
                sa.select(WatchChannel).where(
                    WatchChannel.kind == "events",
                    WatchChannel.status == "active",
                    WatchChannel.user_id == stack.user_id,
                )
            )

    live = wait_until(channel, timeout=60, what="a channel")
    stack.wait_in_sync(email, timeout=60)
    time.sleep(stack.services.settings.sync_min_interval_seconds + 1)  # first pulls done
    insert(stack, 100, 1)  # a real change to pull
    stack.control.clear_requests()
    headers = {
        "X-Goog-Channel-ID": str(live.id),
        "X-Goog-Channel-Token": channel_token(
            stack.services.settings.encryption_keys, str(live.id)
        ),
        "X-Goog-Resource-ID": live.resource_id or "",
        "X-Goog-Resource-State": "exists",
    }

    def send(numbers: range) -> list[int]:
        with httpx.Client(base_url=stack.url) as client:
            return [
                client.post(
                    "/webhooks/google", headers=headers | {"X-Goog-Message-Number": str(n)}
                ).status_code
                for n in numbers
            ]

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        statuses = [
            s for part in pool.map(send, [range(i, count, 8) for i in range(8)]) for s in part
        ]
    sent_in = time.perf_counter() - started
    stack.wait_in_sync(email, timeout=60)
    interval = stack.services.settings.sync_min_interval_seconds
    time.sleep(interval + 2)  # let a trailing pull (one interval later) run and be counted
    lists = lists_of(stack.control, email)
    fits = "within" if sent_in <= interval else "longer than"
    lines.append(
        f"storm of {count:,} notifications in {sent_in:.1f} s ({fits} one interval), pulls "
        f"at least {interval:g} s apart ({sorted(set(statuses))}): {lists} events.list calls "
        "(target <= 3 for a storm within one interval; the inserted change's own push "
        "notification counts too)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=5_000)
    parser.add_argument("--storm", type=int, default=2_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    parser.add_argument(
        "--interval",
        type=float,
        default=5.0,
        help="minimum seconds between pulls of a calendar (production default 5)",
    )
    args = parser.parse_args()
    lines: list[str] = []
    with EmulatorServer() as server, EmulatorControl(server.url) as control:
        google = FakeGoogle(server.url, control)
        redis.Redis.from_url(args.redis).flushdb()
        env = environment(server.url, 0, DATABASE) | {"CALSYNC_REDIS_URL": args.redis}
        base = Settings.from_env(env)
        with stack_on(
            dataclasses.replace(base, sync_min_interval_seconds=0.0), google, threads=0
        ) as stack:
            upgrade(stack.services.engine)
            pulls(stack, args.seed, lines)
            local_writes(stack, lines)
        port = free_port()
        settings = dataclasses.replace(
            google.settings_for(base, public_url=f"http://127.0.0.1:{port}"),
            database_url=env["CALSYNC_DATABASE_URL"],
            redis_url=args.redis,
            sync_min_interval_seconds=args.interval,
        )
        with stack_on(settings, google, threads=4) as stack:
            storm(stack, args.storm, lines)
    print(f"machine: {machine()}")
    print(
        "command: .venv/bin/python -m tests.perf.bench_api_calls "
        f"--seed {args.seed} --storm {args.storm} --interval {args.interval:g}"
    )
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
