"""``POST /webhooks/google`` through the served app's fast path, on PostgreSQL and Redis.

The contract (design.md section 5, issue 5): find the channel, compare the token in
constant time, check the resource id; acknowledge ``sync``; ``exists``/``not_exists`` mark
the calendar dirty and enqueue a pull only if none is queued or running; unknown and
forged channels do no work; 2xx only once the notification is recorded, 5xx when it
cannot be, so that Google retries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from starlette.applications import Starlette

from calsync import tracing
from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.metric_tally import flush_all
from calsync.sync.notification_checks import ChannelCache, DirtyMarks
from calsync.threaded_server import ThreadedServer
from calsync.web.app import create_app
from calsync.web.notification_intake import MAX_BODY_BYTES, NotificationIntakeMiddleware
from tests.integration.webhooks.conftest import Intake, seed

pytestmark = pytest.mark.integration

WEBHOOK = "/webhooks/google"
UNREACHABLE_DB = "postgresql://postgres@127.0.0.1:1/calsync_nowhere"


def sample(name: str, **labels: str) -> float:
    flush_all()  # the intake adds its counts in bulk (decision HQ2), as /metrics does
    return REGISTRY.get_sample_value(name, labels) or 0.0


def outcomes() -> dict[str, float]:
    return {
        outcome: sample("calsync_push_notifications_total", outcome=outcome)
        for outcome in ("queued", "coalesced", "acknowledged", "stale", "unknown", "forged")
    }


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {key: after[key] - before[key] for key in after if after[key] != before[key]}


def post(url: str, headers: dict[str, str], **options: object) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=20) as client:
        return client.post(WEBHOOK, headers=headers, **options)  # type: ignore[arg-type]


def untouched(intake: Intake) -> None:
    row = intake.calendar()
    assert not row.dirty
    assert row.sync_queued_at is None
    assert intake.messages("sync") == []


def test_a_change_marks_the_calendar_and_queues_one_pull_then_coalesces(intake: Intake) -> None:
    before = outcomes()
    requests_before = sample(
        "calsync_http_requests_total", route=WEBHOOK, method="POST", status="202"
    )

    first = post(intake.url, intake.headers("exists"))

    # Answered only once recorded: another connection already sees the committed mark
    assert first.status_code == 202
    row = intake.calendar()
    assert row.dirty
    assert row.sync_queued_at is not None
    [pull] = intake.messages("sync")
    assert pull["actor_name"] == "sync_calendar"
    assert pull["args"] == [str(intake.calendar_id)]

    second = post(intake.url, intake.headers("not_exists"))
    assert second.status_code == 202
    assert len(intake.messages("sync")) == 1  # coalesced into the queued pull
    assert delta(before, outcomes()) == {"queued": 1.0, "coalesced": 1.0}
    assert (
        sample("calsync_http_requests_total", route=WEBHOOK, method="POST", status="202")
        - requests_before
        == 2
    )


def test_a_storm_from_many_connections_is_all_recorded_with_one_pull(intake: Intake) -> None:
    coalesced_before = sample("calsync_notifications_coalesced_total")

    def send(count: int) -> list[int]:
        with httpx.Client(base_url=intake.url, timeout=20) as client:
            return [
                client.post(WEBHOOK, headers=intake.headers()).status_code for _ in range(count)
            ]

    with ThreadPoolExecutor(8) as pool:
        statuses = [status for chunk in pool.map(send, [40] * 8) for status in chunk]

    assert statuses == [202] * 320
    assert len(intake.messages("sync")) == 1
    assert sample("calsync_notifications_coalesced_total") - coalesced_before == 319
    assert intake.calendar().dirty


def test_a_pull_that_started_meanwhile_gets_a_successor(intake: Intake) -> None:
    assert post(intake.url, intake.headers()).status_code == 202
    # A worker starts the pull: it clears `dirty`, the slot stays taken
    with intake.services.sessions.begin() as session:
        session.execute(
            sa.text("UPDATE calendars SET dirty = false WHERE id = :id"),
            {"id": intake.calendar_id},
        )
    assert post(intake.url, intake.headers()).status_code == 202
    row = intake.calendar()
    assert row.dirty  # the running pull's end will see it and queue one more
    assert len(intake.messages("sync")) == 1


def test_the_sync_handshake_is_acknowledged_and_changes_nothing(intake: Intake) -> None:
    before = outcomes()
    answer = post(intake.url, intake.headers("sync"))
    assert answer.status_code == 200
    untouched(intake)
    assert delta(before, outcomes()) == {"acknowledged": 1.0}


@pytest.mark.parametrize(
    ("case", "outcome"),
    [
        ("forged token", "forged"),
        ("token of another channel", "forged"),
        ("non-ASCII token", "forged"),
        ("other resource id", "forged"),
        ("unknown channel with a well-formed token", "unknown"),
        ("channel id that is not a UUID", "forged"),
    ],
)
def test_forged_and_unknown_notifications_are_answered_200_and_do_nothing(
    intake: Intake, case: str, outcome: str
) -> None:
    stranger = uuid.uuid4()
    chosen: dict[str, str] = {
        "forged token": intake.headers(X_Goog_Channel_Token="0" * 64),
        "token of another channel": intake.headers(
            X_Goog_Channel_Token=intake.headers(channel_id=stranger)["X-Goog-Channel-Token"]
        ),
        "non-ASCII token": intake.headers(),
        "other resource id": intake.headers(X_Goog_Resource_ID="someone-else"),
        "unknown channel with a well-formed token": intake.headers(channel_id=stranger),
        "channel id that is not a UUID": intake.headers(X_Goog_Channel_ID="../../etc"),
    }[case]
    headers: dict[str, str | bytes] = dict(chosen)
    if case == "non-ASCII token":
        headers["X-Goog-Channel-Token"] = "é".encode("latin-1") * 64
    before = outcomes()

    answer = post(intake.url, headers)  # type: ignore[arg-type]

    assert answer.status_code == 200
    untouched(intake)
    assert delta(before, outcomes()) == {outcome: 1.0}


@pytest.mark.parametrize("missing", ["X-Goog-Channel-ID", "X-Goog-Resource-State", "both"])
def test_missing_headers_are_a_400_and_change_nothing(intake: Intake, missing: str) -> None:
    headers = intake.headers()
    for name in ("X-Goog-Channel-ID", "X-Goog-Resource-State"):
        if missing in (name, "both"):
            del headers[name]
    answer = post(intake.url, headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_request"
    assert "X-Goog-Channel-ID" in answer.json()["error"]["message"]
    untouched(intake)


def test_an_oversized_body_is_a_413_and_changes_nothing(intake: Intake) -> None:
    declared = post(intake.url, intake.headers(), content=b"x" * (MAX_BODY_BYTES + 1))

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b"y" * 1024

    streamed = post(intake.url, intake.headers(), content=chunks())

    for answer in (declared, streamed):
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "payload_too_large"
    untouched(intake)
    # A small body is ignored: Google sends none, but it is no reason to drop the change
    assert post(intake.url, intake.headers(), content=b"{}").status_code == 202


def test_a_stopped_channel_still_pushing_is_stopped_once(intake: Intake) -> None:
    headers = intake.headers(channel_id=intake.stopped_channel_id)
    answers = [post(intake.url, headers).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    untouched(intake)
    [stop] = intake.messages("maintenance")
    assert stop["actor_name"] == "stop_channel"
    assert stop["args"] == [str(intake.stopped_channel_id)]


def test_a_calendar_list_change_queues_its_sync(intake: Intake) -> None:
    answer = post(intake.url, intake.headers(channel_id=intake.list_channel_id))
    assert answer.status_code == 202
    [job] = intake.messages("sync")
    assert job["actor_name"] == "sync_calendar_list"
    assert job["args"] == [str(intake.user_id)]


def test_other_requests_still_go_through_the_app(intake: Intake) -> None:
    with httpx.Client(base_url=intake.url) as client:
        # Neither process routes anything at the path (the intake answers POST before
        # routing; decisions N7): another method is a 404 in both
        assert client.get(WEBHOOK).status_code == 404
        assert client.get("/healthz").status_code == 200
        assert client.post(WEBHOOK + "/", headers=intake.headers()).status_code != 202
    untouched(intake)


@pytest.mark.parametrize("intake", ["webhooks"], indirect=True)
def test_the_webhook_process_serves_no_api_route(intake: Intake) -> None:
    assert intake.kind == "webhooks"
    with httpx.Client(base_url=intake.url) as client:
        for path in ("/events", "/me", "/auth/google", "/openapi.json"):
            assert client.get(path).status_code == 404, path
        assert client.get("/readyz").status_code == 200
    untouched(intake)


def test_an_unreachable_database_is_a_503_so_that_google_retries(
    intake: Intake, intake_settings: Settings
) -> None:
    # Given an app whose database cannot be reached (a port nothing listens on)
    broken = bootstrap(dataclasses.replace(intake_settings, database_url=UNREACHABLE_DB))
    with ThreadedServer(create_app(broken), name="calsync-broken") as server:
        answer = post(server.url, intake.headers())
        forged = post(server.url, intake.headers(X_Goog_Channel_Token="0" * 64))
    broken.close()

    assert answer.status_code == 503
    assert answer.headers["Retry-After"]
    assert answer.json()["error"]["code"] == "unavailable"
    # A forged token is refused before any lookup: no database needed to say 200
    assert forged.status_code == 200
    untouched(intake)


def test_a_change_that_cannot_be_written_is_a_503_even_for_a_cached_channel(
    intake: Intake, intake_settings: Settings
) -> None:
    # Given a process that knows the channel (cached) and then loses its database
    cache = ChannelCache()
    assert asyncio.run(cache.load(intake.services, str(intake.channel_id))) is not None
    broken = bootstrap(dataclasses.replace(intake_settings, database_url=UNREACHABLE_DB))
    app = NotificationIntakeMiddleware(
        Starlette(), services=broken, cache=cache, marks=DirtyMarks()
    )

    with ThreadedServer(app, name="calsync-no-db") as server:
        change = post(server.url, intake.headers())
        handshake = post(server.url, intake.headers("sync"))
    broken.close()

    assert change.status_code == 503  # not recorded: Google must retry
    assert handshake.status_code == 200  # nothing to record
    untouched(intake)


def test_a_change_is_kept_when_the_queue_is_down(intake_settings: Settings) -> None:
    # Given a database that works and a Redis that cannot be reached
    services = bootstrap(dataclasses.replace(intake_settings, redis_url="redis://127.0.0.1:1/0"))
    ids = seed(services)
    with ThreadedServer(create_app(services), name="calsync-no-redis") as server:
        intake = Intake(services, server.url, None, **ids)  # type: ignore[arg-type]
        answer = post(server.url, intake.headers())
        row = intake.calendar()
    services.close()

    # Then the change is recorded and the slot given back, so the scheduler's sweep
    # (dirty without a queued pull) enqueues the pull once Redis is back
    assert answer.status_code == 202
    assert row.dirty
    assert row.sync_queued_at is None


def test_the_webhook_span_is_the_parent_of_the_queued_pull(intake: Intake) -> None:
    spans = tracing.install_memory_exporter()
    try:
        assert post(intake.url, intake.headers()).status_code == 202
        finished = [s for s in spans.get_finished_spans() if s.name == f"POST {WEBHOOK}"]
    finally:
        tracing.uninstall_memory_exporter()
    [web] = finished
    assert web.parent is None
    assert (web.attributes or {})["calsync.push.outcome"] == "queued"
    assert web.context is not None
    [pull] = intake.messages("sync")
    traceparent = pull["options"]["trace_context"]["traceparent"]
    assert f"{web.context.trace_id:032x}" in traceparent
    assert f"{web.context.span_id:016x}" in traceparent
