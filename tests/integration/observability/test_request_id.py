"""``X-Request-ID`` on every answer, and on every log line of its request, including the
lines of the jobs the request queued (the whole stack over HTTP, both databases)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest

from calsync.logs import ContextFilter, JSONFormatter
from tests.integration.sync.conftest import SyncStack, any_stack, wait_until

__all__ = ["any_stack"]  # the fixture, shared with the sync tests

pytestmark = pytest.mark.integration

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """calsync's JSON lines of every logger at INFO, as an operator would keep them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_sane_request_id_is_kept_and_reaches_the_jobs_log_lines(
    any_stack: SyncStack, json_lines: io.StringIO
) -> None:
    # Given a connected user
    user_id = any_stack.connect_pulled("alice@example.com")
    headers = any_stack.headers(user_id) | {"X-Request-ID": "req-7f3a.b_c:9"}
    # When they create an event with their own request id
    with httpx.Client(base_url=any_stack.url) as client:
        created = client.post(
            "/events",
            headers=headers,
            json={
                "title": "standup",
                "start_time": "2031-03-03T09:00:00Z",
                "end_time": "2031-03-03T09:15:00Z",
            },
        )
    # Then the answer carries it
    assert created.status_code == 201, created.text
    assert created.headers["X-Request-ID"] == "req-7f3a.b_c:9"

    # And so does the line of the push job that the request queued, with its fields
    def push_line() -> dict[str, Any] | None:
        for line in _lines(json_lines):
            if line["message"] == "job finished" and line.get("job") == "push_outbox":
                return line
        return None

    line = wait_until(push_line, what="the push job's line")
    assert line["request_id"] == "req-7f3a.b_c:9"
    assert line["outcome"] == "ok"
    assert line["attempt"] == 1
    assert line["event_id"] == created.json()["id"]
    assert isinstance(line["duration_ms"], float)
    # And no line of another request claims it
    others = [
        entry
        for entry in _lines(json_lines)
        if entry.get("request_id") == "req-7f3a.b_c:9" and entry.get("job") == "sync_calendar"
    ]
    assert others == []


@pytest.mark.parametrize(
    "sent",
    [None, "", "has space", "x" * 65, 'quote"d', "semi;colon", "caf\u00e9"],
    ids=["none", "empty", "space", "too-long", "quote", "semicolon", "non-ascii"],
)
def test_a_missing_or_insane_request_id_is_replaced(any_stack: SyncStack, sent: str | None) -> None:
    headers = {} if sent is None else {"X-Request-ID": sent.encode()}
    with httpx.Client(base_url=any_stack.url) as client:
        first = client.get("/healthz", headers=headers)
        second = client.get("/healthz", headers=headers)
    assert GENERATED.fullmatch(first.headers["X-Request-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_every_kind_of_answer_carries_a_request_id(any_stack: SyncStack) -> None:
    user_id = any_stack.connect_pulled("alice@example.com")
    auth = any_stack.headers(user_id)
    with httpx.Client(base_url=any_stack.url) as client:
        answers = {
            "unknown path": client.get("/nowhere", headers=auth),
            "no token": client.get("/events"),
            "wrong method": client.put("/events", headers=auth),
            "bad query": client.get("/events", params={"limit": "0"}, headers=auth),
            "webhook": client.post("/webhooks/google"),
            "readiness": client.get("/readyz"),
            "list": client.get("/events", headers=auth),
        }
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {
        "unknown path": 404,
        "no token": 401,
        "wrong method": 405,
        "bad query": 422,
        "webhook": 400,
        "readiness": 200,
        "list": 200,
    }
    for name, answer in answers.items():
        assert GENERATED.fullmatch(answer.headers.get("X-Request-ID", "")), name


def test_readiness_probes_log_nothing(any_stack: SyncStack, json_lines: io.StringIO) -> None:
    # Given a process that answered its first probe (Alembic's scripts read once)
    with httpx.Client(base_url=any_stack.url) as client:
        assert client.get("/readyz").status_code == 200
        before = len(_lines(json_lines))
        # When it is probed as a load balancer would
        for _ in range(5):
            assert client.get("/readyz").status_code == 200
    # Then the server wrote not one line (Alembic logged two per probe); the test's own
    # client logs its requests
    assert [line for line in _lines(json_lines)[before:] if line["logger"] != "httpx2"] == []
