"""Stop PostgreSQL for 10 seconds under API traffic.

calsync (API on uvicorn, worker threads) runs on a private PostgreSQL server. A client
keeps creating, reading and editing events; the server is stopped (fast shutdown: open
sessions are cut) for 10 s and started again. Meanwhile every answer must be a success
or 503 with ``Retry-After`` - never 500; afterwards every write acknowledged before is
intact, traffic succeeds again, and the store equals Google.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx2 as httpx
import pytest

from calsync.config import Settings
from tests.conftest import FakeGoogle
from tests.faults.helpers import (
    Sweeper,
    api,
    body,
    connect_with_editor,
    expire_push_leases,
    settle,
)
from tests.faults.ledger import judge, report
from tests.faults.services import PrivatePostgres
from tests.integration.sync.conftest import SyncStack, running_stack, sync_settings, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(240)]

OUTAGE_SECONDS = 10.0


@dataclass(frozen=True)
class Answer:
    sent: float
    at: float
    what: str
    status: int
    retry_after: str | None


@pytest.fixture
def stack(
    production_settings: Settings,
    fake_google: FakeGoogle,
    private_pg: tuple[PrivatePostgres, str],
) -> Iterator[SyncStack]:
    settings = sync_settings(
        replace(production_settings, database_url=private_pg[1]),
        fake_google,
        sync_lease_seconds=10,
    )
    yield from running_stack(settings, fake_google, threads=2)


class Traffic:
    """Create, read and edit events in a loop; record every answer."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.answers: list[Answer] = []
        self.acknowledged: dict[str, tuple[str, str]] = {}  # id -> (title, google id)
        self.stop = threading.Event()

    def _call(self, what: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        """One request; a transport error (reset, refused) is recorded as status 0."""
        sent = time.monotonic()
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.TransportError:
            self.answers.append(Answer(sent, time.monotonic(), what, 0, None))
            return None
        retry_after = response.headers.get("retry-after")
        self.answers.append(Answer(sent, time.monotonic(), what, response.status_code, retry_after))
        return response

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            created = self._call(
                "POST", "POST", "/events", json=body(f"traffic {n}", 1 + n % 28, n % 12)
            )
            if created is not None and created.status_code == 201:
                event = created.json()
                self.acknowledged[event["id"]] = (event["title"], event["google_event_id"])
                title = f"traffic {n} edited"
                edited = self._call("PUT", "PUT", f"/events/{event['id']}", json={"title": title})
                if edited is not None and edited.status_code == 200:
                    self.acknowledged[event["id"]] = (title, event["google_event_id"])
            self._call("GET", "GET", "/events", params={"limit": 5})
            time.sleep(0.05)

    def ok_after(self, moment: float) -> int:
        return sum(1 for a in self.answers if a.at > moment and a.status < 300)


def test_postgres_down_for_ten_seconds_answers_503_then_recovers_intact(
    stack: SyncStack, private_pg: tuple[PrivatePostgres, str]
) -> None:
    cluster = private_pg[0]
    calendar = connect_with_editor(stack, events=3, timeout=60)
    with api(stack) as client:
        traffic = Traffic(client)
        thread = threading.Thread(target=traffic.run, name="api-traffic", daemon=True)
        thread.start()
        try:
            wait_until(lambda: traffic.ok_after(0) >= 10, 30, "traffic to flow")
            # When PostgreSQL stops for 10 s under traffic
            cluster.stop()
            stopped_at = time.monotonic()
            time.sleep(OUTAGE_SECONDS)
            restarting_at = time.monotonic()
            cluster.start()
            started_at = time.monotonic()
            # Then traffic succeeds again
            wait_until(lambda: traffic.ok_after(started_at) >= 10, 60, "traffic to recover")
        finally:
            traffic.stop.set()
            thread.join(30)

        statuses = sorted({a.status for a in traffic.answers})
        during = [a for a in traffic.answers if stopped_at < a.sent and a.at < restarting_at]
        unavailable = [a for a in traffic.answers if a.status == 503]
        print(
            f"[faults] postgres outage: {len(traffic.answers)} answers {statuses}, "
            f"{len(during)} during the outage, {len(unavailable)} x 503"
        )
        assert 500 not in statuses
        assert 0 not in statuses, "a connection was reset or refused"
        assert set(statuses) <= {200, 201, 503}, statuses
        assert during, "traffic went on during the outage"
        assert {a.status for a in during} == {503}
        assert all(a.retry_after and int(a.retry_after) > 0 for a in unavailable)

        # And every acknowledged write is intact
        for event_id, (title, _google_id) in traffic.acknowledged.items():
            shown = client.get(f"/events/{event_id}")
            assert shown.status_code == 200, shown.text
            assert shown.json()["title"] == title

    # And once the pushes cut off by the outage are retried, the store equals Google
    expire_push_leases(stack.services)
    with Sweeper(stack.services).running():
        settle(stack, calendar, timeout=90)
    report(
        judge(
            stack,
            "stop PostgreSQL for 10 s under API traffic",
            calendar=calendar,
            calsync_user=stack.email,
            expected={google_id: title for title, google_id in traffic.acknowledged.values()},
        )
    )
