"""calsync.web.limits: body size limit, token buckets, and the rate-limit middleware."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from calsync.token_buckets import Bucket
from calsync.web.limits import (
    BodySizeLimitMiddleware,
    InMemoryRateLimitBackend,
    RateDecision,
    RateLimit,
    RateLimitUnavailable,
    _BodyTooLarge,
    address_bucket,
    client_address_key,
    rate_limited_response,
)
from calsync.web.request_limits import AddressLimitMiddleware

LIMIT = 100
TOO_LARGE = {
    "error": {
        "code": "payload_too_large",
        "message": "The request body is larger than 100 bytes.",
        "details": [],
    }
}


async def echo_length(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"received": len(body)})


async def swallow_errors(request: Request) -> Response:
    # A careless route: turns any failure into a 400.
    try:
        await request.body()
    except Exception:
        return JSONResponse({"error": "bad"}, status_code=400)
    return JSONResponse({"ok": True})


async def ignores_body(request: Request) -> Response:
    return JSONResponse({"ok": True})


def make_client(max_bytes: int = LIMIT) -> TestClient:
    app = Starlette(
        routes=[
            Route("/echo", echo_length, methods=["POST"]),
            Route("/swallow", swallow_errors, methods=["POST"]),
            Route("/ignore", ignores_body, methods=["POST"]),
        ]
    )
    return TestClient(BodySizeLimitMiddleware(app, max_bytes=max_bytes))


class TestBodySizeLimit:
    @pytest.mark.parametrize("size", [0, 1, LIMIT])
    def test_bodies_up_to_the_limit_pass(self, size: int) -> None:
        response = make_client().post("/echo", content=b"x" * size)
        assert response.status_code == 200
        assert response.json() == {"received": size}

    def test_declared_length_over_the_limit_is_refused(self) -> None:
        response = make_client().post("/echo", content=b"x" * (LIMIT + 1))
        assert response.status_code == 413
        assert response.json() == TOO_LARGE
        assert response.headers["content-type"] == "application/json"

    def test_chunked_body_over_the_limit_is_refused(self) -> None:
        # (TestClient buffers the upload; test_body_is_not_read_past_the_limit checks laziness.)
        response = make_client().post("/echo", content=iter([b"y" * 60, b"y" * 60]))
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert response.json() == TOO_LARGE

    def test_body_is_not_read_past_the_limit(self) -> None:
        # Given a chunked upload with no Content-Length, far larger than the limit
        reads = 0

        async def receive() -> Message:
            nonlocal reads
            reads += 1
            return {"type": "http.request", "body": b"y" * 30, "more_body": reads < 1000}

        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        # When an app reads it chunk by chunk
        middleware = BodySizeLimitMiddleware(read_all_then_ok, max_bytes=LIMIT)
        asyncio.run(middleware(http_scope(), receive, send))
        # Then the read that crosses the limit is the last one, and the answer is 413
        assert reads == 4
        assert sent[0]["status"] == 413
        assert b"payload_too_large" in sent[1]["body"]
        assert len(sent) == 2

    def test_chunked_body_within_the_limit_passes(self) -> None:
        response = make_client().post("/echo", content=iter([b"a" * 50, b"b" * 50]))
        assert response.status_code == 200
        assert response.json() == {"received": 100}

    def test_an_app_that_swallows_the_error_still_answers_413(self) -> None:
        response = make_client().post("/swallow", content=iter([b"z" * 60, b"z" * 60]))
        assert response.status_code == 413
        assert response.json() == TOO_LARGE

    def test_an_undeclared_body_the_app_never_reads_is_not_refused(self) -> None:
        response = make_client().post("/ignore", content=iter([b"z" * 500]))
        assert response.status_code == 200

    def test_lying_content_length_is_caught_by_counting(self) -> None:
        # Given a request that declares 10 bytes but streams 200
        messages = [
            {"type": "http.request", "body": b"a" * 150, "more_body": True},
            {"type": "http.request", "body": b"a" * 50, "more_body": False},
        ]
        sent = asyncio.run(drive(headers=[(b"content-length", b"10")], messages=messages))
        assert sent[0]["status"] == 413

    def test_app_is_not_called_when_the_declared_length_is_too_large(self) -> None:
        called = False

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            nonlocal called
            called = True

        reads: list[Message] = []

        async def receive() -> Message:
            reads.append({})
            return {"type": "http.request", "body": b"", "more_body": False}

        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        scope = http_scope([(b"content-length", b"101")])
        asyncio.run(BodySizeLimitMiddleware(app, max_bytes=LIMIT)(scope, receive, send))
        assert not called
        assert reads == []
        assert sent[0]["status"] == 413

    def test_invalid_content_length_falls_back_to_counting(self) -> None:
        messages = [{"type": "http.request", "body": b"a" * 20, "more_body": False}]
        sent = asyncio.run(drive(headers=[(b"content-length", b"nonsense")], messages=messages))
        assert sent[0]["status"] == 200

    def test_response_already_started_aborts_instead(self) -> None:
        async def streams_first(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            while (await receive()).get("more_body"):
                pass

        messages = [{"type": "http.request", "body": b"a" * 200, "more_body": True}]
        with pytest.raises(_BodyTooLarge):
            asyncio.run(drive(messages=messages, app=streams_first))

    def test_websocket_and_lifespan_pass_through(self) -> None:
        seen: list[str] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(scope["type"])

        middleware = BodySizeLimitMiddleware(app, max_bytes=0)
        asyncio.run(middleware({"type": "lifespan"}, noop_receive, noop_send))
        asyncio.run(middleware({"type": "websocket", "headers": []}, noop_receive, noop_send))
        assert seen == ["lifespan", "websocket"]

    def test_streaming_responses_are_untouched(self) -> None:
        async def stream(request: Request) -> Response:
            return StreamingResponse(iter([b"a", b"b", b"c"]))

        app = Starlette(routes=[Route("/s", stream)])
        client = TestClient(BodySizeLimitMiddleware(app, max_bytes=LIMIT))
        assert client.get("/s").content == b"abc"

    def test_negative_limit_is_refused(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            BodySizeLimitMiddleware(ignores_body, max_bytes=-1)  # type: ignore[arg-type]


def http_scope(headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": headers or [],
        "client": ("10.0.0.1", 1234),
    }


async def noop_receive() -> Message:
    return {"type": "http.disconnect"}


async def noop_send(message: Message) -> None:
    return None


async def read_all_then_ok(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body"):
        pass
    await JSONResponse({"ok": True})(scope, receive, send)


async def drive(
    *,
    messages: list[dict[str, Any]],
    headers: list[tuple[bytes, bytes]] | None = None,
    app: Any = read_all_then_ok,
) -> list[Message]:
    queue = list(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await BodySizeLimitMiddleware(app, max_bytes=LIMIT)(http_scope(headers), receive, send)
    return sent


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


PER_MINUTE = RateLimit(requests=60, per=timedelta(minutes=1), burst=3)


class TestInMemoryBackend:
    def test_burst_then_refusal_with_retry_after(self) -> None:
        backend = InMemoryRateLimitBackend(clock=FakeClock())
        decisions = [backend.hit_sync("k", PER_MINUTE) for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert [d.remaining for d in decisions] == [2, 1, 0, 0]
        assert decisions[-1].retry_after == pytest.approx(1.0)
        assert decisions[0].retry_after == 0.0

    def test_tokens_refill_with_time_up_to_the_burst(self) -> None:
        clock = FakeClock()
        backend = InMemoryRateLimitBackend(clock=clock)
        for _ in range(3):
            backend.hit_sync("k", PER_MINUTE)
        clock.advance(0.5)
        refused = backend.hit_sync("k", PER_MINUTE)
        assert not refused.allowed
        assert refused.retry_after == pytest.approx(0.5)
        clock.advance(0.5)
        assert backend.hit_sync("k", PER_MINUTE).allowed
        clock.advance(3600)
        assert backend.hit_sync("k", PER_MINUTE).remaining == 2  # capped at the burst

    def test_refused_hits_cost_nothing(self) -> None:
        clock = FakeClock()
        backend = InMemoryRateLimitBackend(clock=clock)
        for _ in range(10):
            backend.hit_sync("k", PER_MINUTE)
        clock.advance(1.0)
        assert backend.hit_sync("k", PER_MINUTE).allowed

    def test_keys_are_independent(self) -> None:
        backend = InMemoryRateLimitBackend(clock=FakeClock())
        for _ in range(3):
            backend.hit_sync("a", PER_MINUTE)
        assert not backend.hit_sync("a", PER_MINUTE).allowed
        assert backend.hit_sync("b", PER_MINUTE).allowed

    def test_cost_takes_several_tokens(self) -> None:
        backend = InMemoryRateLimitBackend(clock=FakeClock())
        assert backend.hit_sync("k", PER_MINUTE, cost=3).remaining == 0
        refused = backend.hit_sync("k", PER_MINUTE, cost=2)
        assert not refused.allowed
        assert refused.retry_after == pytest.approx(2.0)

    @pytest.mark.parametrize("cost", [0, -1, 4])
    def test_impossible_costs_are_refused(self, cost: int) -> None:
        with pytest.raises(ValueError, match="cost"):
            InMemoryRateLimitBackend().hit_sync("k", PER_MINUTE, cost=cost)

    def test_default_burst_is_the_whole_window(self) -> None:
        limit = RateLimit(requests=5, per=timedelta(seconds=10))
        backend = InMemoryRateLimitBackend(clock=FakeClock())
        assert [backend.hit_sync("k", limit).allowed for _ in range(6)] == [True] * 5 + [False]

    def test_thread_safety_never_over_admits(self) -> None:
        # The clock stands still, so exactly `burst` hits may pass however they interleave.
        limit = RateLimit(requests=1, per=timedelta(hours=1), burst=50)
        backend = InMemoryRateLimitBackend(clock=lambda: 0.0)
        allowed: list[bool] = []
        barrier = threading.Barrier(8)

        def worker() -> None:
            barrier.wait()
            for _ in range(100):
                allowed.append(backend.hit_sync("shared", limit).allowed)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(allowed) == 50
        assert len(allowed) == 800

    def test_full_buckets_are_pruned_beyond_max_keys(self) -> None:
        clock = FakeClock()
        backend = InMemoryRateLimitBackend(clock=clock, max_keys=10)
        for i in range(10):
            backend.hit_sync(f"k{i}", PER_MINUTE)
        clock.advance(60)  # every bucket is full again
        backend.hit_sync("fresh", PER_MINUTE)
        assert len(backend) == 1
        # Pruning forgets nothing that matters: a pruned key starts full.
        assert backend.hit_sync("k0", PER_MINUTE).remaining == 2

    def test_active_buckets_survive_pruning(self) -> None:
        backend = InMemoryRateLimitBackend(clock=FakeClock(), max_keys=2)
        for key in ["a", "b", "c"]:
            for _ in range(3):
                backend.hit_sync(key, PER_MINUTE)
        assert not backend.hit_sync("a", PER_MINUTE).allowed

    def test_async_hit_uses_the_same_buckets(self) -> None:
        backend = InMemoryRateLimitBackend(clock=FakeClock())

        async def three() -> list[RateDecision]:
            return [await backend.hit("k", PER_MINUTE) for _ in range(3)]

        asyncio.run(three())
        assert not backend.hit_sync("k", PER_MINUTE).allowed


class TestRateLimit:
    @pytest.mark.parametrize(
        "kwargs",
        [
            {"requests": 0, "per": timedelta(seconds=1)},
            {"requests": 1, "per": timedelta(0)},
            {"requests": 1, "per": timedelta(seconds=1), "burst": 0},
        ],
    )
    def test_invalid_limits(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match="positive"):
            RateLimit(**kwargs)

    @pytest.mark.parametrize(
        ("retry_after", "header"), [(0.0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2"), (59.5, "60")]
    )
    def test_retry_after_header_rounds_up_to_whole_seconds(
        self, retry_after: float, header: str
    ) -> None:
        assert RateDecision(False, 0, retry_after).retry_after_header == header

    def test_429_response(self) -> None:
        response = rate_limited_response(RateDecision(False, 0, 2.5))
        assert response.status_code == 429
        assert response.headers["retry-after"] == "3"
        assert b'"code":"rate_limited"' in response.body
        assert b'"details":[]' in response.body


class BrokenBackend:
    async def hit(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateDecision:
        raise RateLimitUnavailable("down")

    async def hit_all(self, buckets: Sequence[Bucket], *, cost: int = 1) -> RateDecision:
        raise RateLimitUnavailable("down")


async def hello(request: Request) -> Response:
    return JSONResponse({"hello": "world"})


def limited_client(**kwargs: Any) -> TestClient:
    app = Starlette(routes=[Route("/", hello)])
    return TestClient(AddressLimitMiddleware(app, limit=PER_MINUTE, **kwargs))


class TestAddressLimitMiddleware:
    def test_refuses_with_429_once_the_bucket_is_empty(self) -> None:
        client = limited_client(backend=InMemoryRateLimitBackend(clock=FakeClock()))
        statuses = [client.get("/").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = client.get("/")
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "rate_limited"

    def test_keys_come_from_the_key_function(self) -> None:
        def by_header(scope: Scope) -> str | None:
            return dict(scope["headers"]).get(b"x-user", b"").decode() or None

        client = limited_client(backend=InMemoryRateLimitBackend(clock=FakeClock()), key=by_header)
        for _ in range(3):
            client.get("/", headers={"x-user": "a"})
        assert client.get("/", headers={"x-user": "a"}).status_code == 429
        assert client.get("/", headers={"x-user": "b"}).status_code == 200
        assert all(client.get("/").status_code == 200 for _ in range(10))  # no key: no limit

    def test_fails_open_by_default_and_logs(self, caplog: pytest.LogCaptureFixture) -> None:
        client = limited_client(backend=BrokenBackend())
        assert client.get("/").status_code == 200
        assert "rate limiter unavailable" in caplog.text

    def test_fails_closed_when_asked(self) -> None:
        response = limited_client(backend=BrokenBackend(), fail_open=False).get("/")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "unavailable"

    def test_client_address_key(self) -> None:
        assert client_address_key(http_scope()) == "ip:10.0.0.1"
        assert client_address_key({"type": "http", "client": None}) is None

    @pytest.mark.parametrize(
        ("host", "bucket"),
        [
            ("203.0.113.7", "203.0.113.7"),
            # One bucket per IPv6 /64: a host holds a whole /64 and could rotate in it
            ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
            ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
            ("testclient", "testclient"),
        ],
    )
    def test_address_buckets(self, host: str, bucket: str) -> None:
        assert address_bucket(host) == bucket
        assert client_address_key({"type": "http", "client": (host, 1)}) == f"ip:{bucket}"
