"""Request limits for the web layer: body size and per-key request rates.

Pure ASGI building blocks (no ``BaseHTTPMiddleware``, so streaming and
``receive`` stay untouched):

- :class:`BodySizeLimitMiddleware` answers 413 when ``Content-Length`` exceeds the
  limit, and when a chunked body outgrows it while streaming, before the rest is read.
- A token-bucket rate limiter behind the :class:`RateLimitBackend` port, with an
  in-process backend (:class:`InMemoryRateLimitBackend`) and a Redis one
  (:class:`RedisRateLimitBackend`, one atomic Lua script on Redis's own clock, so
  every API process shares one bucket per key). :class:`RateLimitMiddleware`
  applies one limit to a key taken from the request; routes that know the user
  can call a backend directly and answer with :func:`rate_limited_response`.

Errors use the API's shape: ``{"error": {"code", "message", "details"}}``.
Nothing here connects anywhere at import time; the Redis client is passed in.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calsync.web.errors import error_response

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "BodySizeLimitMiddleware",
    "InMemoryRateLimitBackend",
    "RateDecision",
    "RateLimit",
    "RateLimitBackend",
    "RateLimitMiddleware",
    "RateLimitUnavailable",
    "RedisRateLimitBackend",
    "client_address_key",
    "payload_too_large_response",
    "rate_limited_response",
]

logger = logging.getLogger(__name__)


# --- Body size -------------------------------------------------------------------


def payload_too_large_response(max_bytes: int) -> JSONResponse:
    """The 413 answer for a body over ``max_bytes``."""
    return error_response(413, f"The request body is larger than {max_bytes} bytes.")


class _BodyTooLarge(Exception):
    """Raised from ``receive`` inside the app once the streamed body passes the limit."""


class BodySizeLimitMiddleware:
    """Refuse HTTP request bodies larger than ``max_bytes`` with 413.

    A declared ``Content-Length`` over the limit is refused before the app runs.
    Otherwise the body is counted as the app reads it; the read that crosses the
    limit raises inside the app, and whatever the app then tries to send is
    replaced by the 413 (so an app that swallows the error cannot turn it into a
    400 or a 200). If the app had already started its response, the connection is
    aborted instead, since a status cannot be changed once sent. It does not read
    bodies the app does not ask for, and passes websocket and lifespan through.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await payload_too_large_response(self.max_bytes)(scope, receive, send)
            return
        guard = _BodyGuard(self.max_bytes, receive, send)
        try:
            await self.app(scope, guard.receive, guard.send)
        except _BodyTooLarge:
            if guard.response_started:
                raise
        if guard.exceeded and not guard.response_started:
            await payload_too_large_response(self.max_bytes)(scope, receive, send)


class _BodyGuard:
    def __init__(self, max_bytes: int, receive: Receive, send: Send) -> None:
        self._max_bytes = max_bytes
        self._receive = receive
        self._send = send
        self._seen = 0
        self.exceeded = False
        self.response_started = False

    async def receive(self) -> Message:
        if self.exceeded:
            raise _BodyTooLarge()
        message = await self._receive()
        if message["type"] == "http.request":
            self._seen += len(message.get("body", b""))
            if self._seen > self._max_bytes:
                self.exceeded = True
                raise _BodyTooLarge()
        return message

    async def send(self, message: Message) -> None:
        if self.exceeded and not self.response_started:
            return  # the 413 goes out instead, once the app is done
        if message["type"] == "http.response.start":
            self.response_started = True
        await self._send(message)


def _declared_length(scope: Scope) -> int | None:
    """The largest valid Content-Length header, or None if there is none."""
    lengths = [
        int(value)
        for name, value in scope.get("headers", [])
        if name.lower() == b"content-length" and value.strip().isdigit()
    ]
    return max(lengths) if lengths else None


# --- Rate limits -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``requests`` per ``per`` on average, bursts up to ``burst``.

    ``burst`` defaults to ``requests``: a quiet key may spend a whole window at once.

    Raises:
        ValueError: non-positive ``requests``, ``per`` or ``burst``.
    """

    requests: int
    per: timedelta
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.requests <= 0 or self.per <= timedelta(0):
            raise ValueError("a rate limit needs positive requests and period")
        if self.burst is not None and self.burst <= 0:
            raise ValueError("burst must be positive")

    @property
    def capacity(self) -> int:
        """Bucket size: the largest burst."""
        return self.requests if self.burst is None else self.burst

    @property
    def refill_per_second(self) -> float:
        """Tokens added per second."""
        return self.requests / self.per.total_seconds()

    def check_cost(self, cost: int) -> None:
        """Raise ValueError unless ``1 <= cost <= capacity`` (a larger cost never fits)."""
        if not 1 <= cost <= self.capacity:
            raise ValueError(f"cost must be between 1 and the capacity ({self.capacity})")


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of one hit: ``retry_after`` is seconds until it would fit (0 if allowed)."""

    allowed: bool
    remaining: int
    retry_after: float

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` value: whole seconds, rounded up, at least 1."""
        return str(max(1, math.ceil(self.retry_after)))


class RateLimitUnavailable(Exception):
    """The backend could not be asked (for example Redis is down)."""


class RateLimitBackend(Protocol):
    """Takes ``cost`` tokens from ``key``'s bucket if they are there.

    Implementations are safe to call concurrently. They do not sleep or queue:
    a refused hit costs nothing and says when to come back.
    """

    async def hit(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateDecision:
        """Raises ValueError for a bad ``cost``; RateLimitUnavailable if the store is down."""
        ...


def _take(
    tokens: float, updated: float, now: float, limit: RateLimit, cost: int
) -> tuple[float, float, RateDecision]:
    """Token-bucket step; returns the new (tokens, updated) and the decision."""
    if now > updated:
        tokens = min(float(limit.capacity), tokens + (now - updated) * limit.refill_per_second)
        updated = now
    if tokens >= cost:
        tokens -= cost
        return tokens, updated, RateDecision(True, math.floor(tokens), 0.0)
    wait = (cost - tokens) / limit.refill_per_second
    return tokens, updated, RateDecision(False, math.floor(tokens), wait)


class InMemoryRateLimitBackend:
    """Buckets in this process's memory; thread-safe; for embedded mode and tests.

    Each process has its own buckets, so N API processes allow N times the rate;
    use :class:`RedisRateLimitBackend` when more than one process serves the API.
    Buckets that have refilled completely are pruned once more than ``max_keys``
    are held (a full bucket is the same as no bucket).
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._lock = threading.Lock()
        # key -> (tokens, updated, moment the bucket is full again)
        self._buckets: dict[str, tuple[float, float, float]] = {}

    def hit_sync(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateDecision:
        """Synchronous form of :meth:`hit`, for threads and sync code."""
        limit.check_cost(cost)
        with self._lock:
            now = self._clock()
            tokens, updated, _ = self._buckets.get(key, (float(limit.capacity), now, now))
            tokens, updated, decision = _take(tokens, updated, now, limit, cost)
            full_at = updated + (limit.capacity - tokens) / limit.refill_per_second
            self._buckets[key] = (tokens, updated, full_at)
            if len(self._buckets) > self._max_keys:
                self._prune(now)
        return decision

    async def hit(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateDecision:
        """See :class:`RateLimitBackend`; never raises RateLimitUnavailable."""
        return self.hit_sync(key, limit, cost=cost)

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self, now: float) -> None:
        full = [key for key, (_, _, full_at) in self._buckets.items() if full_at <= now]
        for key in full:
            del self._buckets[key]


# KEYS[1] bucket; ARGV: capacity, refill per second, cost, ttl in ms.
# Redis's own clock (TIME) keeps processes with skewed clocks on one timeline.
_BUCKET_SCRIPT: Final = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
  ts = now
end
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1],
  'tokens', string.format('%.6f', tokens), 'ts', string.format('%.6f', ts))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return {allowed, string.format('%.6f', tokens), string.format('%.6f', wait)}
"""


class RedisRateLimitBackend:
    """Buckets in Redis, shared by every process; one atomic script call per hit.

    ``client`` is a ``redis.asyncio.Redis``; this class never connects by itself.
    Keys are ``prefix + key`` hashes that expire once they would be full again.
    Redis errors become :class:`RateLimitUnavailable` (from the original).
    """

    def __init__(self, client: Redis, *, prefix: str = "calsync:ratelimit:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_BUCKET_SCRIPT)

    async def hit(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateDecision:
        """See :class:`RateLimitBackend`."""
        from redis.exceptions import RedisError  # redis is only needed with this backend

        limit.check_cost(cost)
        ttl_ms = math.ceil(limit.capacity / limit.refill_per_second * 1000) + 1000
        args: list[str | int] = [limit.capacity, repr(limit.refill_per_second), cost, ttl_ms]
        try:
            result: Any = await self._script(keys=[self._prefix + key], args=args)
        except RedisError as err:
            raise RateLimitUnavailable("the rate-limit store is unavailable") from err
        allowed, tokens, wait = result
        return RateDecision(bool(int(allowed)), math.floor(float(tokens)), float(wait))


def rate_limited_response(decision: RateDecision) -> JSONResponse:
    """The 429 answer for a refused hit, with ``Retry-After`` in whole seconds."""
    return error_response(
        429,
        "Too many requests; retry after the number of seconds in Retry-After.",
        headers={"Retry-After": decision.retry_after_header},
    )


def client_address_key(scope: Scope) -> str | None:
    """Key by the client address the server saw (``None``, so unlimited, if unknown).

    Behind a proxy this is the proxy unless the server rewrites it from trusted
    forwarding headers (uvicorn ``--proxy-headers --forwarded-allow-ips``).
    """
    client = scope.get("client")
    return f"ip:{client[0]}" if client else None


class RateLimitMiddleware:
    """Apply one :class:`RateLimit` per key to HTTP requests; 429 when the bucket is empty.

    ``key`` maps the request scope to a bucket key, or ``None`` to skip limiting.
    When the backend is unavailable the request goes through (``fail_open``, the
    default: limits protect the service, they are not its correctness) with a
    warning logged, or is answered 503 with ``fail_open=False``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        backend: RateLimitBackend,
        limit: RateLimit,
        key: Callable[[Scope], str | None] = client_address_key,
        fail_open: bool = True,
    ) -> None:
        self.app = app
        self.backend = backend
        self.limit = limit
        self.key = key
        self.fail_open = fail_open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        bucket = self.key(scope) if scope["type"] == "http" else None
        if bucket is None:
            await self.app(scope, receive, send)
            return
        try:
            decision = await self.backend.hit(bucket, self.limit)
        except RateLimitUnavailable:
            if not self.fail_open:
                response = error_response(503, "The service is temporarily unavailable.")
                await response(scope, receive, send)
                return
            logger.warning("rate limiter unavailable; letting the request through", exc_info=True)
            await self.app(scope, receive, send)
            return
        if not decision.allowed:
            await rate_limited_response(decision)(scope, receive, send)
            return
        await self.app(scope, receive, send)
