"""``/metrics`` after an end-to-end flow: a user connected through the emulator, their
calendars pulled and watched, an event written through the API and pushed to Google.

The event counters (HTTP requests, jobs, Google calls) and the state read at scrape time
(sync lag, channels by time left, outbox depth and age, queue depth) must all show, with
values that follow what the flow did.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from calsync.config import Settings
from calsync.web.auth.tokens import issue_token
from calsync.web.state_metrics import CHANNEL_BUCKETS, STATE_METRICS
from tests.conftest import FakeGoogle
from tests.integration.sync.conftest import SyncStack, running_stack, sync_settings, wait_until
from tests.integration.sync.seed import timed

pytestmark = pytest.mark.integration

Samples = list[Sample]


@pytest.fixture
def stack(production_settings: Settings, fake_google: FakeGoogle) -> Iterator[SyncStack]:
    yield from running_stack(sync_settings(production_settings, fake_google), fake_google)


def scrape(stack: SyncStack) -> Samples:
    with httpx.Client(base_url=stack.url) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    return [s for family in text_string_to_metric_families(response.text) for s in family.samples]


def value(samples: Samples, name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return float(found[0])


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


def grown(start: Samples, now: Samples, name: str, **labels: str) -> float:
    """How much a counter grew since `start`."""
    return total(now, name, **labels) - total(start, name, **labels)


def test_metrics_follow_a_connect_sync_and_write(stack: SyncStack) -> None:
    # (Event counters are per test process and other tests bump them too: compare with this.)
    start = scrape(stack)

    # Given a user with a primary and a second calendar on Google, connected and pulled
    granted = stack.connect(calendars=[{"summary": "Team"}])
    stack.insert_many(stack.email, [timed(i) for i in range(3)])
    stack.services.jobs.connect_user.send(str(stack.user_id))
    for calendar in granted["calendars"]:
        stack.wait_in_sync(calendar["id"], timeout=60)
    watched = len(granted["calendars"])
    wait_until(
        lambda: total(scrape(stack), "calsync_channels_by_time_left") >= watched,
        timeout=30,
        what="the channels",
    )
    stack.services.jobs.heartbeat.send(stack.services.clock().isoformat())
    wait_until(
        lambda: any(s.name == "calsync_queue_heartbeat_age_seconds" for s in scrape(stack)),
        timeout=30,
        what="the heartbeat",
    )
    before = scrape(stack)

    # Then every state metric is there, with the labels the catalogue declares
    state = {s.name: set(s.labels) for s in before if s.name in STATE_METRICS}
    assert set(state) == set(STATE_METRICS)
    assert all(labels == set(STATE_METRICS[name]) for name, labels in state.items())
    assert 0 <= value(before, "calsync_queue_heartbeat_age_seconds") < 60
    assert value(before, "calsync_queue_heartbeat_lag_seconds") >= 0

    # And they describe a fresh, fully watched, idle sync
    assert value(before, "calsync_state_source_up", source="database") == 1
    assert value(before, "calsync_state_source_up", source="broker") == 1
    assert value(before, "calsync_calendars_by_sync_lag", le="+Inf") == watched
    assert value(before, "calsync_calendars_by_sync_lag", le="60") == watched
    assert 0 <= value(before, "calsync_sync_lag_max_seconds") < 60
    assert value(before, "calsync_calendars_never_synced") == 0
    worst = [s for s in before if s.name == "calsync_sync_lag_worst_seconds"]
    assert len(worst) == watched
    assert value(before, "calsync_calendars_without_channel") == 0
    # The events channels of both calendars and the calendar-list channel, all opened
    # for days (the emulator grants the requested week), none near expiry
    channels = {s.labels["left"]: s.value for s in before if s.name.startswith("calsync_chan")}
    assert set(channels) == {"expired", *(label for label, _ in CHANNEL_BUCKETS), "more"}
    assert channels["expired"] == channels["lt_1h"] == channels["lt_1d"] == 0
    assert channels["lt_7d"] + channels["more"] == watched + 1
    assert value(before, "calsync_outbox_depth") == 0
    assert value(before, "calsync_outbox_oldest_age_seconds") == 0
    for queue in ("writes", "sync", "maintenance", "writes.DQ", "sync.DQ", "maintenance.DQ"):
        assert value(before, "calsync_queue_depth", queue=queue) >= 0
    # And the event counters of the flow's jobs and Google calls show
    assert grown(start, before, "calsync_jobs_total", actor="sync_calendar", outcome="ok") >= 1
    assert grown(start, before, "calsync_google_calls_total", method="events.list") >= watched

    # When an event is written through the API while Google answers its insert slowly
    stack.control.add_fault(kind="latency", method="POST", path=r"/events$", latency_ms=3000)
    token = issue_token(
        stack.services.jwt, subject=str(stack.user_id), email=stack.email, role="user"
    )
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token}"}) as api:
        created = api.post(
            "/events",
            json={
                "title": "metrics",
                "start_time": "2031-03-04T10:00:00Z",
                "end_time": "2031-03-04T11:00:00Z",
            },
        )
    assert created.status_code == 201, created.text
    during = scrape(stack)

    # Then the outbox holds that one write until the push job has written it
    assert value(during, "calsync_outbox_depth") == 1
    assert value(during, "calsync_outbox_oldest_age_seconds") >= 0
    wait_until(
        lambda: value(scrape(stack), "calsync_outbox_depth") == 0, timeout=30, what="the push"
    )
    after = scrape(stack)
    assert value(after, "calsync_outbox_oldest_age_seconds") == 0
    assert grown(start, after, "calsync_http_requests_total", route="/events", status="201") == 1
    assert grown(start, after, "calsync_http_request_duration_seconds_count", route="/events") == 1
    assert grown(start, after, "calsync_google_calls_total", method="events.insert") == 1
    assert grown(start, after, "calsync_outbox_writes_total", operation="insert", outcome="ok") == 1
    assert not math.isnan(value(after, "calsync_sync_lag_max_seconds"))
    # (Let the push notification of that insert and its pull settle before teardown.)
    stack.wait_in_sync(stack.email, timeout=30)
    wait_until(lambda: _idle(stack), timeout=30, what="the pulls to finish")


def _idle(stack: SyncStack) -> bool:
    row = stack.calendar_row(stack.email)
    return row.sync_queued_at is None and not row.dirty and row.sync_lease_owner is None
