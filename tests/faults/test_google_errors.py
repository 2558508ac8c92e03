"""Google misbehaving: bursts of 500, 503, 429 and 403 rate limits, latency spikes,
connection resets, and 410 and 412 at the worst moments, during a mix of local writes
through the API and edits by another Google client.

The worst moments: an insert whose answer is lost after Google stored it (reset after
the write), a patch Google applied but answered 503 (the retry's If-Match is stale: a
real 412), a forced 412 on a patch whose etag was right, local and remote edits of the
same events (412 and a merge), and a sync token that expires right after an event was
deleted (410, then a full listing that must drop the stale row). After healing, the
store equals Google, nothing is lost and nothing is written twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

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
    editor_inserts,
    settle,
)
from tests.faults.ledger import judge, report
from tests.integration.sync.conftest import SyncStack, running_stack, sync_settings
from tests.integration.sync.seed import timed

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(240)]

ONE_EVENT = EVENTS + "/[^/]+$"
COLLECTION = EVENTS + "$"

#: The bursts, in the order they are armed (each fires for its next `count` matches).
BURSTS: list[dict[str, object]] = [
    {"kind": "reset", "method": "POST", "path": COLLECTION, "after_write": True, "count": 1},
    {"kind": "status", "status": 503, "method": "PATCH", "after_write": True, "count": 1},
    {"kind": "status", "status": 500, "path": EVENTS, "count": 3},
    {"kind": "status", "status": 503, "path": EVENTS, "count": 3},
    {"kind": "status", "status": 429, "path": EVENTS, "count": 3, "headers": {"Retry-After": "1"}},
    {"kind": "status", "status": 403, "reason": "rateLimitExceeded", "path": EVENTS, "count": 3},
    {"kind": "latency", "latency_ms": 2500, "path": EVENTS, "count": 4},
    {"kind": "reset", "path": EVENTS, "count": 3},
    {"kind": "status", "status": 412, "method": "PATCH", "path": ONE_EVENT, "count": 1},
]


@pytest.fixture
def stack(production_settings: Settings, fake_google: FakeGoogle) -> Iterator[SyncStack]:
    settings = sync_settings(production_settings, fake_google, sync_lease_seconds=10)
    yield from running_stack(settings, fake_google, threads=4)


def test_bursts_of_google_errors_lose_and_duplicate_nothing(stack: SyncStack) -> None:
    calendar = connect_with_editor(stack, events=6, timeout=60)
    editor = stack.google_as(EDITOR)
    seeded = [
        e["id"]
        for e in editor.events().list(calendarId=calendar).execute(num_retries=3)["items"]
        if e.get("status") != "cancelled"
    ]
    expected: dict[str, str | None] = {}
    with api(stack) as client:
        local = {e["google_event_id"]: e for e in client.get("/events").json()["events"]}
        # Given Google starts failing calsync's requests in bursts
        armed = [stack.control.add_fault(**spec, user=stack.email) for spec in BURSTS]
        # When calsync's user writes through the API ...
        created = []
        for n in range(8):
            answer = client.post("/events", json=body(f"local {n}", 2 + n))
            assert answer.status_code == 201, answer.text
            created.append(answer.json())
            expected[created[-1]["google_event_id"]] = f"local {n}"
        # ... while another client edits the same events and adds its own
        for google_id in seeded[:3]:
            editor.events().patch(
                calendarId=calendar, eventId=google_id, body={"description": "remote edit"}
            ).execute(num_retries=3)
        for google_id in seeded[:3]:
            title = f"{local[google_id]['title']} (edited here)"
            answer = client.put(f"/events/{local[google_id]['id']}", json={"title": title})
            assert answer.status_code == 200, answer.text
            expected[google_id] = title
        for n, event in enumerate(created[:4]):
            answer = client.put(f"/events/{event['id']}", json={"title": f"local {n} v2"})
            assert answer.status_code == 200, answer.text
            expected[event["google_event_id"]] = f"local {n} v2"
        for event in created[6:]:
            assert client.delete(f"/events/{event['id']}").status_code == 204
            expected[event["google_event_id"]] = None
        added = editor_inserts(stack, calendar, [timed(300 + n) for n in range(4)])
        expected |= {e["id"]: e["summary"] for e in added}
        # And at the worst moment Google forgets the sync token right after a deletion
        editor.events().delete(calendarId=calendar, eventId=seeded[5]).execute(num_retries=3)
        stack.control.invalidate_sync_tokens(calendar)
        expected[seeded[5]] = None

        # Then, once the bursts are spent and Google heals ...
        def spent() -> bool:
            remaining = {f["id"]: f["remaining"] for f in stack.control.faults()}
            return all(remaining.get(f["id"], 0) == 0 for f in armed)

        with Sweeper(stack.services, push_skew=timedelta(hours=2)).running():
            deadline = time.monotonic() + 45
            while not spent() and time.monotonic() < deadline:
                time.sleep(0.2)
            hits = {f["id"]: f["hits"] for f in stack.control.faults()}
            stack.control.clear_faults()
            stack.services.jobs.sync_calendar.send(str(stack.calendar_row(calendar).id))
            settle(stack, calendar, timeout=120)
    fired = sum(hits.values())
    gone = stack.control.requests(method="GET", status="410", user=stack.email)
    print(f"[faults] google errors: {fired} faults fired: {hits}; {len(gone)} listings got 410")
    assert fired >= sum(int(str(spec["count"])) for spec in BURSTS) // 2
    assert gone, "the expired sync token was met"
    verdict = judge(
        stack,
        "Google 500/503/429/403/latency/reset/410/412 bursts",
        calendar=calendar,
        calsync_user=stack.email,
        expected=expected,
    )
    report(verdict)
    remote = stack.remote_events(calendar)
    assert all(remote[g].description == "remote edit" for g in seeded[:3])
