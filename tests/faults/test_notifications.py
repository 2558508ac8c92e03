"""Push notifications duplicated, reordered and dropped.

Google's own deliveries are dropped (``drop_push``) while another client changes the
calendar; then a burst of notifications for those changes arrives with every message
duplicated, the message numbers shuffled (older numbers after newer ones), ``sync``
messages mixed in, and finally stale replays of the burst after the calendar settled.
The end state must be right, and coalescing must still bound the pulls: at most one
pull per minimum interval that the burst spans, plus one for changes during a pull.
A last round of changes whose notifications are all lost is caught by the safety net.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx2 as httpx
import pytest

from calsync.config import Settings
from calsync.scheduler import due_calendars
from tests.conftest import FakeGoogle
from tests.faults.helpers import (
    EDITOR,
    connect_with_editor,
    editor_inserts,
    idle,
    settle,
)
from tests.faults.ledger import judge, report
from tests.integration.sync.conftest import SyncStack, running_stack, sync_settings, wait_until
from tests.integration.sync.seed import timed
from tests.integration.sync.test_coalescing_and_recovery import _headers

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(240)]

MIN_INTERVAL = 4.0
MESSAGES = 150  # distinct message numbers; each is sent twice


@pytest.fixture
def stack(production_settings: Settings, fake_google: FakeGoogle) -> Iterator[SyncStack]:
    settings = dataclasses.replace(
        sync_settings(production_settings, fake_google), sync_min_interval_seconds=MIN_INTERVAL
    )
    yield from running_stack(settings, fake_google, threads=4)


def _listings(stack: SyncStack, calendar: str) -> int:
    return len(
        stack.control.requests(
            method="GET", path=f"/calendar/v3/calendars/{calendar}/events", user=stack.email
        )
    )


def test_duplicated_reordered_and_dropped_notifications(stack: SyncStack) -> None:
    calendar = connect_with_editor(stack, events=3, timeout=60)
    watch = stack.events_channel()
    assert watch is not None
    editor = stack.google_as(EDITOR)
    # Given Google's own notifications are lost while another client changes things
    stack.control.add_fault(kind="drop_push", count=None)
    added = editor_inserts(stack, calendar, [timed(400 + n) for n in range(5)])
    editor.events().patch(
        calendarId=calendar, eventId=added[0]["id"], body={"summary": "renamed"}
    ).execute(num_retries=3)
    editor.events().delete(calendarId=calendar, eventId=added[1]["id"]).execute(num_retries=3)
    assert added[2]["id"] not in stack.local_events(calendar)
    stack.control.clear_requests()

    # When the notifications arrive late: each twice, shuffled, with sync messages mixed in
    numbers = [n for n in range(1, MESSAGES + 1) for _ in range(2)]
    random.Random(9).shuffle(numbers)
    messages = [_headers(stack, watch, n, "sync" if n % 25 == 0 else "exists") for n in numbers]

    def send(batch: list[dict[str, str]]) -> list[int]:
        with httpx.Client(base_url=stack.url) as client:
            return [client.post("/webhooks/google", headers=h).status_code for h in batch]

    started = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        statuses = [s for part in pool.map(send, [messages[i::6] for i in range(6)]) for s in part]
    burst = time.monotonic() - started

    # Then all are acknowledged, the calendar ends right, and the pulls stayed bounded
    assert len(statuses) == len(messages)
    assert set(statuses) <= {200, 202}, set(statuses)
    settle(stack, calendar, timeout=60)
    pulls = _listings(stack, calendar)
    bound = 2 + math.ceil(burst / MIN_INTERVAL)
    print(
        f"[faults] notifications: {len(messages)} in {burst:.1f} s -> {pulls} pulls (bound {bound})"
    )
    assert 1 <= pulls <= bound

    # When stale replays of the same burst come after the calendar settled
    stack.control.clear_requests()
    assert set(send(messages[:40])) <= {200, 202}
    wait_until(lambda: idle(stack, calendar), 30, "replays to be handled")
    # Then they cost at most the pulls of one burst and change nothing
    replay_pulls = _listings(stack, calendar)
    assert replay_pulls <= 2

    # When every notification of further changes is lost
    more = editor_inserts(stack, calendar, [timed(500)])
    time.sleep(0.5)
    assert more[0]["id"] not in stack.local_events(calendar)
    # Then the scheduler's safety net pulls the calendar anyway (at the long interval
    # of a calendar with a live channel: decisions Y4)
    later = stack.services.clock() + timedelta(
        seconds=stack.services.settings.poll_with_channel_seconds + 1
    )
    for calendar_id in due_calendars(stack.services, later):
        stack.services.jobs.sync_calendar.send(str(calendar_id))
    settle(stack, calendar, timeout=60)
    dropped = [d for d in stack.control.deliveries() if d.get("outcome") == "dropped"]
    print(f"[faults] notifications: {len(dropped)} of Google's deliveries dropped")
    assert dropped
    expected: dict[str, str | None] = {e["id"]: e["summary"] for e in added + more}
    expected |= {added[0]["id"]: "renamed", added[1]["id"]: None}
    report(
        judge(
            stack,
            "duplicated, reordered and dropped notifications",
            calendar=calendar,
            calsync_user=stack.email,
            expected=expected,
        )
    )
