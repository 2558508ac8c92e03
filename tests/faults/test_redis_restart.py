"""Restart Redis while jobs are queued and while notifications arrive.

calsync runs (API + webhook on uvicorn, worker threads) on a private Redis without
persistence, so the restart loses every queued job. The emulator is slowed down so that
pushes and pulls queue up; the restart comes while they wait and while another client
keeps changing the calendar (Google keeps POSTing notifications, some of them meet the
restart). Writes through the API go on during the outage. Afterwards the scheduler's
sweeps re-kick the dirty calendar and re-enqueue the pushes: everything converges.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from calsync.config import Settings
from tests.conftest import FakeGoogle
from tests.faults.helpers import (
    EDITOR,
    EVENTS,
    Sweeper,
    api,
    body,
    connect_with_editor,
    pending_pushes,
    settle,
)
from tests.faults.ledger import judge, report
from tests.faults.services import PrivateRedis
from tests.integration.sync.conftest import SyncStack, running_stack, sync_settings, wait_until
from tests.integration.sync.seed import timed

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(240)]

#: How long Redis stays down: notifications keep arriving meanwhile (one every 0.25 s).
DOWN_SECONDS = 2.0


@pytest.fixture
def stack(
    production_settings: Settings, fake_google: FakeGoogle, private_redis: PrivateRedis
) -> Iterator[SyncStack]:
    settings = sync_settings(
        production_settings,
        fake_google,
        redis_url=private_redis.url,
        sync_lease_seconds=10,
    )
    yield from running_stack(settings, fake_google, threads=2)


def test_a_redis_restart_with_jobs_queued_and_notifications_arriving_loses_nothing(
    stack: SyncStack, private_redis: PrivateRedis
) -> None:
    calendar = connect_with_editor(stack, events=4, timeout=60)
    editor = stack.google_as(EDITOR)
    expected: dict[str, str | None] = {}
    statuses: list[int] = []
    # Given Google answers slowly, so that pushes and pulls queue up in Redis
    stack.control.add_fault(
        kind="latency", path=EVENTS, latency_ms=1500, count=None, user=stack.email
    )
    with api(stack) as client:
        for n in range(10):
            answer = client.post("/events", json=body(f"queued {n}", 1 + n))
            statuses.append(answer.status_code)
            expected[answer.json()["google_event_id"]] = f"queued {n}"
        # And another client keeps changing the calendar (Google notifies each change)
        stop = threading.Event()
        remote: list[str] = []

        def keep_editing() -> None:
            for n in range(40):
                if stop.wait(0.25):
                    return
                made = (
                    editor.events()
                    .insert(calendarId=calendar, body=timed(200 + n))
                    .execute(num_retries=3)
                )
                remote.append(made["id"])

        editing = threading.Thread(target=keep_editing, name="remote-edits", daemon=True)
        editing.start()
        wait_until(lambda: len(remote) >= 3, 30, "remote edits to start")
        queued = pending_pushes(stack.services)
        assert queued > 0, "the restart must find queued pushes"

        # When Redis restarts (every queued job is lost), with writes during the outage
        private_redis.stop()
        down_since = time.monotonic()
        for n in range(3):
            answer = client.post("/events", json=body(f"during the outage {n}", 20 + n))
            statuses.append(answer.status_code)
            if answer.status_code == 201:
                expected[answer.json()["google_event_id"]] = f"during the outage {n}"
        time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - down_since)))
        private_redis.start()
        wait_until(lambda: len(remote) >= 12, 60, "remote edits after the restart")
        stop.set()
        editing.join(30)
        stack.control.clear_faults()

        # Then the sweeps re-kick the calendar and the pushes, and everything converges
        with Sweeper(stack.services).running():
            settle(stack, calendar, timeout=90)

    print(f"[faults] redis restart: {queued} pushes queued at the restart, API {statuses}")
    assert 500 not in statuses
    assert set(statuses) <= {201, 503}
    remote_titles = {
        e["id"]: e["summary"]
        for e in editor.events()
        .list(calendarId=calendar, maxResults=2500)
        .execute(num_retries=3)["items"]
    }
    expected |= {google_id: remote_titles[google_id] for google_id in remote}
    report(
        judge(
            stack,
            "restart Redis with jobs queued and notifications arriving",
            calendar=calendar,
            calsync_user=stack.email,
            expected=expected,
        )
    )
    deliveries = stack.control.deliveries()
    failed = [d for d in deliveries if d.get("outcome") == "failed"]
    print(f"[faults] redis restart: {len(deliveries)} notifications, {len(failed)} not accepted")
    assert all(d.get("status") == 503 for d in failed), failed
