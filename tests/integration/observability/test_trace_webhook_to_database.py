"""One trace from a request to the job it queued, its Google calls and its database work.

Given a connected user whose calendar has a live push channel, when an event is created
on Google (as another client), the emulator POSTs a notification to calsync's webhook;
the webhook enqueues ``sync_calendar`` on Redis; a worker pulls with ``events.list`` and
writes the event. With spans exported in memory, one trace holds the web span, the job
span, the Google span and database spans, each under the right parent. The same holds
for an API write and the push job that sends it to Google.
"""

from __future__ import annotations

import httpx2 as httpx
import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from calsync.store.tables import WatchChannel
from calsync.web.auth.tokens import issue_token
from tests.integration.observability.conftest import (
    ancestors,
    attrs,
    parent_id,
    span_id,
    trace_id,
)
from tests.integration.sync.conftest import SyncStack, wait_until
from tests.integration.sync.seed import timed

pytestmark = pytest.mark.integration

WEBHOOK = "POST /webhooks/google"


def connected(stack: SyncStack) -> str:
    """Connect the user, wait for the first pull and the calendar's channel; the calendar id."""
    stack.connect()
    stack.services.jobs.connect_user.send(str(stack.user_id))
    wait_until(lambda: _live_channel(stack), what="the calendar's push channel")
    wait_until(lambda: _idle(stack, stack.email), what="the first pull to finish")
    return stack.email


def _live_channel(stack: SyncStack) -> bool:
    with stack.services.sessions() as session:
        found = session.scalar(
            sa.select(WatchChannel.id).where(
                WatchChannel.kind == "events", WatchChannel.status == "active"
            )
        )
    return found is not None


def _idle(stack: SyncStack, google_id: str) -> bool:
    row = stack.calendar_row(google_id)
    return row.last_synced_at is not None and row.sync_queued_at is None and not row.dirty


def webhook_trace(spans: InMemorySpanExporter) -> list[ReadableSpan] | None:
    """The spans of a trace rooted at a webhook request that led to a finished pull."""
    finished = spans.get_finished_spans()
    for root in finished:
        if root.name != WEBHOOK:
            continue
        same = [s for s in finished if trace_id(s) == trace_id(root)]
        if any(s.name == "sync_calendar" for s in same):
            return same
    return None


def test_one_trace_holds_the_webhook_the_job_the_google_call_and_the_database(
    traced_stack: SyncStack, spans: InMemorySpanExporter
) -> None:
    # Given a connected calendar with a live channel, and no spans yet
    calendar = connected(traced_stack)
    spans.clear()

    # When an event is created on Google by another client
    created = traced_stack.google_as().events().insert(calendarId=calendar, body=timed(1)).execute()

    # Then calsync stores it, and one trace shows how
    wait_until(
        lambda: created["id"] in traced_stack.local_events(calendar), what="the pulled event"
    )
    trace = wait_until(lambda: webhook_trace(spans), what="the webhook's trace")
    by_id = {span_id(s): s for s in trace}

    [web] = [s for s in trace if s.name == WEBHOOK]
    assert web.kind is SpanKind.SERVER
    assert web.parent is None  # Google sends no trace context: the request is the root
    assert attrs(web)["http.route"] == "/webhooks/google"

    [job] = [s for s in trace if s.name == "sync_calendar"]
    assert job.kind is SpanKind.CONSUMER
    assert web in ancestors(job, by_id)  # enqueued while handling the request
    assert attrs(job)["calsync.job.outcome"] == "ok"

    google = [s for s in trace if s.name == "Google events.list"]
    assert google, sorted({s.name for s in trace})
    for call in google:
        assert call.kind is SpanKind.CLIENT
        assert parent_id(call) == span_id(job)
        assert attrs(call)["http.response.status_code"] == 200

    database = [s for s in trace if attrs(s).get("db.system")]
    under_job = [s for s in database if parent_id(s) == span_id(job)]
    assert any(s.name.startswith(("INSERT", "UPDATE")) for s in under_job), sorted(
        s.name for s in under_job
    )
    # Every span of the trace hangs off the webhook request
    for span in trace:
        assert span is web or web in ancestors(span, by_id), span.name


def api_trace(spans: InMemorySpanExporter) -> list[ReadableSpan] | None:
    """The spans of a ``POST /events`` trace once its push job wrote to Google."""
    finished = spans.get_finished_spans()
    for root in finished:
        if root.name != "POST /events":
            continue
        same = [s for s in finished if trace_id(s) == trace_id(root)]
        names = {s.name for s in same}
        if {"push_outbox", "Google events.insert"} <= names:
            return same
    return None


def test_an_api_write_and_its_push_to_google_are_one_trace(
    traced_stack: SyncStack, spans: InMemorySpanExporter
) -> None:
    # Given a connected user with a JWT
    connected(traced_stack)
    token = issue_token(
        traced_stack.services.jwt,
        subject=str(traced_stack.user_id),
        email=traced_stack.email,
        role="user",
    )
    spans.clear()

    # When they create an event through the API
    answer = httpx.post(
        f"{traced_stack.url}/events",
        json={
            "title": "Traced",
            "start_time": "2031-03-04T10:00:00",
            "end_time": "2031-03-04T11:00:00",
            "timezone": "Europe/Berlin",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 201, answer.text

    # Then the request, the push job and the Google insert are one trace
    trace = wait_until(lambda: api_trace(spans), what="the API write's trace")
    by_id = {span_id(s): s for s in trace}
    [web] = [s for s in trace if s.name == "POST /events"]
    assert web.kind is SpanKind.SERVER
    assert web.parent is None
    assert attrs(web)["http.route"] == "/events"
    [job] = [s for s in trace if s.name == "push_outbox"]
    assert parent_id(job) == span_id(web)
    assert attrs(job)["calsync.event_id"] == answer.json()["id"]
    [insert] = [s for s in trace if s.name == "Google events.insert"]
    assert parent_id(insert) == span_id(job)
    assert any(
        attrs(s).get("db.system") and s.name.startswith("INSERT")
        for s in trace
        if web in ancestors(s, by_id) and job not in ancestors(s, by_id)
    ), "the request's own INSERT is in its trace"
