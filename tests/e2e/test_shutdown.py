"""Graceful shutdown of real ``calsync worker`` and ``calsync serve`` processes: SIGTERM
in the middle of work loses nothing.

The worker pulls a calendar from the emulator, slowed down by its latency fault so that
the signal lands while the pull waits for Google. Either the job finishes within the
shutdown timeout, or the process hands it back (requeues the message, releases the sync
lease) and a second worker finishes it. The api finishes a request whose body is still
arriving when the signal comes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import redis
import sqlalchemy as sa
from cryptography.fernet import Fernet

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.queue import NAMESPACE
from calsync.store.tables import Calendar, Event, OutboxEntry
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.connect import queue_pulls
from calsync.web.auth.tokens import issue_token
from tests.conftest import FakeGoogle
from tests.google_users import connect_google_user
from tests.integration.sync.conftest import SyncStack, wait_until
from tests.integration.sync.seed import timed

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "shutdown@example.com"
#: Generous bounds against hangs on a busy machine, not timings under test.
EXIT_BOUND = 90.0
EVENTS_LIST = r"/calendars/[^/]+/events$"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class World:
    env: dict[str, str]
    services: Services
    stack: SyncStack
    redis: redis.Redis
    logs: Path

    def calsync(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:  # the child keeps its copy
            return subprocess.Popen(
                [sys.executable, "-m", "calsync.cli", *args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log_of(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def calendar(self) -> Calendar:
        with self.services.sessions() as session:
            row = session.scalar(sa.select(Calendar).where(Calendar.provider_calendar_id == EMAIL))
        assert row is not None
        return row

    def waiting(self, queue: str) -> int:
        return int(self.redis.llen(f"{NAMESPACE}:{queue}"))

    def unacknowledged(self) -> int:
        keys = self.redis.keys(f"{NAMESPACE}:__acks__.*")
        return sum(int(self.redis.scard(key)) for key in keys)


@pytest.fixture
def world(pg_url: str, redis_url: str, fake_google: FakeGoogle, tmp_path: Path) -> Iterator[World]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALSYNC_", "PROMETHEUS_"))}
    env |= {
        "CALSYNC_DATABASE_URL": pg_url,
        "CALSYNC_REDIS_URL": redis_url,
        "CALSYNC_PUBLIC_URL": f"http://127.0.0.1:{free_port()}",
        "CALSYNC_JWT_SECRET": "s" * 48,
        "CALSYNC_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "CALSYNC_GOOGLE_CLIENT_ID": "calsync-dev",
        "CALSYNC_GOOGLE_CLIENT_SECRET": "calsync-dev-secret",
        "CALSYNC_GOOGLE_API_BASE": fake_google.url,
        "CALSYNC_GOOGLE_OAUTH_BASE": fake_google.url,
        "CALSYNC_SYNC_MIN_INTERVAL_SECONDS": "0",
        "CALSYNC_LOG_LEVEL": "INFO",
    }
    services = bootstrap(Settings.from_env(env))
    account, _ = connect_google_user(services, fake_google.control, EMAIL)
    stack = SyncStack(services, fake_google, url="", user_id=account.id, email=EMAIL)
    client = redis.Redis.from_url(redis_url)
    yield World(env, services, stack, client, tmp_path)
    client.close()
    for service in stack._services_of.values():
        service.close()
    services.close()


def start_a_slow_pull(world: World, latency_ms: int) -> uuid.UUID:
    """Store the user's calendars, put 30 events on Google and queue the calendar's pull,
    whose events.list Google will answer after `latency_ms`."""
    world.stack.insert_many(EMAIL, [timed(i) for i in range(30)])
    sync_calendar_list(world.services, world.stack.user_id)
    calendar_id = world.calendar().id
    world.stack.control.add_fault(
        kind="latency", method="GET", path=EVENTS_LIST, latency_ms=latency_ms, count=1
    )
    assert queue_pulls(world.services, [calendar_id]) == [calendar_id]
    return calendar_id


def worker(world: World, name: str, *, shutdown_timeout: float) -> subprocess.Popen[bytes]:
    return world.calsync(
        "worker",
        "--processes",
        "1",
        "--threads",
        "2",
        "--metrics-port",
        "0",
        "--shutdown-timeout",
        str(shutdown_timeout),
        name=name,
    )


def wait_for_the_pull_in_flight(world: World, process: subprocess.Popen[bytes]) -> None:
    # The pull takes the calendar's lease, then asks Google (which the fault keeps waiting)
    def in_flight() -> bool:
        assert process.poll() is None, world.log_of("worker-1")
        return world.calendar().sync_lease_owner is not None

    wait_until(in_flight, timeout=60, what="the pull to wait on Google")


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=EXIT_BOUND)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"no exit within {EXIT_BOUND} s of SIGTERM")


def test_sigterm_mid_pull_lets_the_pull_finish(world: World) -> None:
    # Given a worker process whose pull waits 3 s for Google's answer
    start_a_slow_pull(world, latency_ms=3000)
    first = worker(world, "worker-1", shutdown_timeout=60)
    wait_for_the_pull_in_flight(world, first)
    assert world.stack.local_events(EMAIL) == {}

    # When it gets SIGTERM
    status = stop(first)

    # Then it exits cleanly after finishing the pull: the store equals Google, the lease
    # is released, and no message is left waiting or unacknowledged
    assert status == 0, world.log_of("worker-1")
    remote = world.stack.remote_events(EMAIL)
    assert len(remote) == 30
    assert world.stack.local_events(EMAIL) == remote
    assert world.calendar().sync_lease_owner is None
    assert world.waiting("sync") == 0
    assert world.unacknowledged() == 0
    assert "unfinished" not in world.log_of("worker-1")

    # And a second worker finds nothing lost and nothing to redo
    second = worker(world, "worker-2", shutdown_timeout=60)
    wait_until(lambda: "ready for action" in world.log_of("worker-2"), 60, "worker 2")
    world.stack.wait_in_sync(EMAIL)
    assert stop(second) == 0, world.log_of("worker-2")


def test_sigterm_hands_back_a_pull_that_does_not_finish_in_time(world: World) -> None:
    # Given a worker process whose pull waits 30 s for Google, far beyond its 1 s of
    # shutdown timeout
    start_a_slow_pull(world, latency_ms=30_000)
    first = worker(world, "worker-1", shutdown_timeout=1)
    wait_for_the_pull_in_flight(world, first)

    # When it gets SIGTERM
    status = stop(first)

    # Then it exits cleanly without the pull, having handed it back: the message waits in
    # the queue again and the calendar's lease (300 s by default) is released
    assert status == 0, world.log_of("worker-1")
    assert "requeued them and released 1 sync lease(s)" in world.log_of("worker-1")
    assert world.stack.local_events(EMAIL) == {}
    assert world.calendar().sync_lease_owner is None
    assert world.waiting("sync") == 1
    assert world.unacknowledged() == 0

    # And a second worker pulls the calendar right away: the store ends equal to Google
    second = worker(world, "worker-2", shutdown_timeout=60)
    remote = world.stack.wait_in_sync(EMAIL, timeout=60)
    assert len(remote) == 30
    assert world.waiting("sync") == 0
    assert stop(second) == 0, world.log_of("worker-2")
    assert world.unacknowledged() == 0


def test_sigterm_lets_the_api_finish_a_request_in_flight(world: World) -> None:
    # Given a serving api process and a user with their calendars stored
    sync_calendar_list(world.services, world.stack.user_id)
    port = free_port()
    api = world.calsync("serve", "--host", "127.0.0.1", "--port", str(port), name="api")
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert api.poll() is None, world.log_of("api")
        try:
            return httpx.get(f"{base}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    wait_until(up, timeout=60, what="the api")
    token = issue_token(
        world.services.jwt, subject=str(world.stack.user_id), email=EMAIL, role="user"
    )
    body = b'{"title": "in flight", "start_time": "2031-03-04T10:00:00Z", '
    rest = b'"end_time": "2031-03-04T11:00:00Z"}'
    sent, signalled = threading.Event(), threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield body
        sent.set()  # the headers and the first part are on the wire
        assert signalled.wait(timeout=EXIT_BOUND)
        yield rest

    answer: dict[str, Any] = {}

    def post() -> None:
        with httpx.Client(base_url=base, timeout=EXIT_BOUND) as client:
            answer["response"] = client.post(
                "/events",
                content=slow_body(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )

    # When SIGTERM arrives while the request's body is still on its way
    poster = threading.Thread(target=post)
    poster.start()
    assert sent.wait(timeout=30)
    # uvicorn accepts connections in order: once a later one is answered, the POST's is open
    assert httpx.get(f"{base}/healthz").status_code == 200
    api.send_signal(signal.SIGTERM)
    wait_until(lambda: _refusing(base), timeout=30, what="the api to stop accepting")
    signalled.set()
    poster.join(timeout=EXIT_BOUND)

    # Then that request is answered and its event (and its outbox row) are stored
    response = answer["response"]
    assert response.status_code == 201, response.text
    # uvicorn re-raises the signal it handled once it has shut down: death by SIGTERM
    # after a clean shutdown (the log says so) is its normal end
    assert api.wait(timeout=EXIT_BOUND) in {0, -signal.SIGTERM}, world.log_of("api")
    assert "Finished server process" in world.log_of("api")
    # (uvicorn >= 0.5x may log "Waiting for connections to close" or not: it first gives
    # connections 0.1 s, in which this request, released once new ones were refused, may
    # already have finished. That the 201 came after the refusal is what matters.)
    with world.services.sessions() as session:
        titles = session.scalars(sa.select(Event.title)).all()
        queued = session.scalar(sa.select(sa.func.count()).select_from(OutboxEntry))
    assert titles == ["in flight"]
    assert queued == 1


def _refusing(base: str) -> bool:
    try:
        httpx.get(f"{base}/healthz", timeout=2)
    except httpx.TransportError:
        return True
    return False
