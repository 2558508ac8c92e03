"""The webhook fast path without I/O: header parsing, answers, tokens, the channel cache,
and the body limit of `NotificationIntakeMiddleware` (driven as a plain ASGI callable)."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from calsync.sync.channels import channel_token
from calsync.sync.notification_checks import (
    MISSING,
    ChannelCache,
    ChannelInfo,
    Intake,
    Notification,
    expected_tokens,
    token_accepted,
)
from calsync.web.notification_intake import (
    MAX_BODY_BYTES,
    NotificationIntakeMiddleware,
    notification_from_headers,
    status_for,
)

KEYS = ["new-key", "old-key"]
CHANNEL = str(uuid.uuid4())


def raw(**headers: str) -> list[tuple[bytes, bytes]]:
    return [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()]


def test_headers_become_a_notification() -> None:
    note = notification_from_headers(
        raw(
            X_Goog_Channel_ID=f" {CHANNEL} ",
            X_Goog_Channel_Token="tok",
            X_Goog_Resource_ID="res",
            X_Goog_Resource_State="exists",
            X_Goog_Message_Number="42",
            Content_Type="text/plain",
        )
    )
    assert note == Notification(CHANNEL, "tok", "res", "exists", 42)


@pytest.mark.parametrize(
    "headers",
    [
        {"X_Goog_Resource_State": "exists"},
        {"X_Goog_Channel_ID": CHANNEL},
        {"X_Goog_Channel_ID": "  ", "X_Goog_Resource_State": "exists"},
        {},
    ],
)
def test_without_channel_id_or_state_there_is_no_notification(headers: dict[str, str]) -> None:
    assert notification_from_headers(raw(**headers)) is None


@pytest.mark.parametrize("number", ["", "-1", "12a", "9" * 5000])
def test_a_bad_message_number_is_ignored_not_an_error(number: str) -> None:
    note = notification_from_headers(
        raw(X_Goog_Channel_ID=CHANNEL, X_Goog_Resource_State="sync", X_Goog_Message_Number=number)
    )
    assert note is not None
    assert note.message_number is None


def test_recorded_changes_are_202_everything_else_200() -> None:
    assert {outcome: status_for(outcome) for outcome in Intake} == {
        Intake.QUEUED: 202,
        Intake.COALESCED: 202,
        Intake.ACKNOWLEDGED: 200,
        Intake.STALE: 200,
        Intake.UNKNOWN: 200,
        Intake.FORGED: 200,
    }


def test_a_token_under_any_configured_key_is_accepted() -> None:
    expected = expected_tokens(KEYS, CHANNEL)
    assert token_accepted(expected, channel_token(["new-key"], CHANNEL))
    assert token_accepted(expected, channel_token(["old-key"], CHANNEL))
    assert not token_accepted(expected, channel_token(["other-key"], CHANNEL))
    assert not token_accepted(expected, channel_token(KEYS, str(uuid.uuid4())))
    assert not token_accepted(expected, "")
    assert not token_accepted(expected, "é" * 64)  # a mismatch, not a TypeError


def info(resource_id: str | None = "res") -> ChannelInfo:
    return ChannelInfo(
        user_id=uuid.uuid4(),
        calendar_id=uuid.uuid4(),
        kind="events",
        resource_id=resource_id,
        active=True,
        tokens=expected_tokens(KEYS, CHANNEL),
    )


def test_a_channel_accepts_its_token_with_its_resource_id_only() -> None:
    token = channel_token(KEYS, CHANNEL)
    assert info().accepts(Notification(CHANNEL, token, "res", "exists"))
    assert not info().accepts(Notification(CHANNEL, token, "other", "exists"))
    assert not info().accepts(Notification(CHANNEL, "x" * 64, "res", "exists"))
    assert info(resource_id=None).accepts(Notification(CHANNEL, token, "", "exists"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def loaded(
    cache: ChannelCache, channel_id: str, value: ChannelInfo | None, *, remember: bool
) -> None:
    """Complete a load as the thread pool would."""

    async def complete() -> None:
        future: asyncio.Future[ChannelInfo | None] = asyncio.get_running_loop().create_future()
        future.set_result(value)
        cache._loaded(channel_id, remember, future)

    asyncio.run(complete())


def test_the_cache_keeps_channels_for_ttl_and_unknown_ids_briefly() -> None:
    clock = Clock()
    cache = ChannelCache(ttl=30, unknown_ttl=1, clock=clock)
    known, unknown, handshake = info(), str(uuid.uuid4()), str(uuid.uuid4())
    loaded(cache, CHANNEL, known, remember=True)
    loaded(cache, unknown, None, remember=True)
    loaded(cache, handshake, None, remember=False)  # a `sync` lookup: not remembered

    assert cache.cached(CHANNEL) is known
    assert cache.cached(unknown) is None
    assert cache.cached(handshake) is MISSING
    clock.now += 1.5
    assert cache.cached(CHANNEL) is known
    assert cache.cached(unknown) is MISSING
    clock.now += 30
    assert cache.cached(CHANNEL) is MISSING


def test_a_stopped_channel_gets_one_stop_per_interval() -> None:
    clock = Clock()
    cache = ChannelCache(ttl=5, stop_interval=30, clock=clock)
    assert [cache.first_stop(CHANNEL) for _ in range(3)] == [True, False, False]
    clock.now += 6  # past the row's ttl, not the stop interval
    assert not cache.first_stop(CHANNEL)
    clock.now += 25
    assert cache.first_stop(CHANNEL)


# --- the middleware as an ASGI callable (no server, no database) -------------------------


class Inner:
    """The app behind the middleware: records what reached it."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def call(
    middleware: NotificationIntakeMiddleware,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: list[bytes] | None = None,
) -> tuple[int, list[Message]]:
    chunks = list(body or [b""])
    sent: list[Message] = []

    async def receive() -> Message:
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {"type": "http", "method": method, "path": path, "headers": headers}
    asyncio.run(middleware(scope, receive, send))
    return sent[0]["status"], sent


@pytest.fixture
def middleware() -> tuple[NotificationIntakeMiddleware, Inner]:
    inner = Inner()
    # No services needed: every request below is answered before any lookup.
    return (
        NotificationIntakeMiddleware(
            inner,
            services=None,  # type: ignore[arg-type]
            cache=ChannelCache(),
            marks=None,  # type: ignore[arg-type]
        ),
        inner,
    )


def test_other_paths_and_methods_pass_through(
    middleware: tuple[NotificationIntakeMiddleware, Inner],
) -> None:
    app, inner = middleware
    assert call(app, "GET", "/webhooks/google", [])[0] == 204
    assert call(app, "POST", "/events", [])[0] == 204
    assert call(app, "POST", "/webhooks/google/", [])[0] == 204
    assert inner.paths == ["/webhooks/google", "/events", "/webhooks/google/"]


def test_a_declared_or_streamed_body_over_the_limit_is_a_413(
    middleware: tuple[NotificationIntakeMiddleware, Inner],
) -> None:
    app, inner = middleware
    google = raw(X_Goog_Channel_ID=CHANNEL, X_Goog_Resource_State="exists")
    declared = [*google, (b"content-length", str(MAX_BODY_BYTES + 1).encode())]
    chunked = [*google, (b"transfer-encoding", b"chunked")]
    assert call(app, "POST", "/webhooks/google", declared)[0] == 413
    streamed = [b"x" * 4096] * (MAX_BODY_BYTES // 4096 + 1)
    assert call(app, "POST", "/webhooks/google", chunked, streamed)[0] == 413
    assert inner.paths == []


def test_missing_headers_are_a_400_in_the_error_shape(
    middleware: tuple[NotificationIntakeMiddleware, Inner],
) -> None:
    app, _ = middleware
    status, sent = call(app, "POST", "/webhooks/google", raw(X_Goog_Resource_State="exists"))
    assert status == 400
    assert b'"code":"bad_request"' in sent[1]["body"]


def test_a_forged_token_is_answered_without_any_lookup(
    middleware: tuple[NotificationIntakeMiddleware, Inner],
) -> None:
    # services=None: a lookup would raise (and answer 500), so a 200 proves there was none
    app, _ = middleware
    app.services = SimpleNamespace(settings=SimpleNamespace(encryption_keys=KEYS))  # type: ignore[assignment]
    headers = raw(
        X_Goog_Channel_ID=CHANNEL,
        X_Goog_Channel_Token="f" * 64,
        X_Goog_Resource_State="exists",
    )
    assert call(app, "POST", "/webhooks/google", headers)[0] == 200
