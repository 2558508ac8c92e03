"""Request limits for the web layer: body size and per-key request rates.

Pure ASGI building blocks (no ``BaseHTTPMiddleware``, so streaming and
``receive`` stay untouched):

- :class:`BodySizeLimitMiddleware` answers 413 when ``Content-Length`` exceeds the
  limit, and when a chunked body outgrows it while streaming, before the rest is read.
- A token-bucket rate limiter behind the :class:`RateLimitBackend` port, with an
  in-process backend (:class:`InMemoryRateLimitBackend`) and a Redis one
  (:class:`RedisRateLimitBackend`, one atomic Lua script on Redis's own clock, so
  every API process shares one bucket per key). The buckets themselves live in
  :mod:`calsync.token_buckets`, shared with the workers' Google quota limiter;
  ``RateLimit``, ``RateDecision`` and ``RateLimitUnavailable`` are re-exported here.
  The API's middlewares that take the buckets are in :mod:`calsync.web.request_limits`
  (the address's and the user's in one hit, decision HB1); routes that know the user
  can call a backend directly and answer with :func:`rate_limited_response`.

Errors use the API's shape: ``{"error": {"code", "message", "details"}}``.
Nothing here connects anywhere at import time; the Redis client is passed in.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calsync.token_buckets import (
    BUCKET_SCRIPT,
    Bucket,
    InMemoryBuckets,
    RateDecision,
    RateLimit,
    RateLimitUnavailable,
    decision_from_script,
    script_args,
)
from calsync.web.errors import error_response

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "UNLIMITED_PATHS",
    "BodySizeLimitMiddleware",
    "InMemoryRateLimitBackend",
    "RateDecision",
    "RateLimit",
    "RateLimitBackend",
    "RateLimitUnavailable",
    "RedisRateLimitBackend",
    "address_bucket",
    "client_address_key",
    "payload_too_large_response",
    "rate_limited_response",
    "with_rate_headers",
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


class RateLimitBackend(Protocol):
    """Takes ``cost`` tokens from ``key``'s bucket if they are there.

    Implementations are safe to call concurrently. They do not sleep or queue:
    a refused hit costs nothing and says when to come back.
    """

    async def hit(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateDecision:
        """Raises ValueError for a bad ``cost``; RateLimitUnavailable if the store is down."""
        ...

    async def hit_all(self, buckets: Sequence[Bucket], *, cost: int = 1) -> RateDecision:
        """`hit` of several buckets at once: taken from all of them or from none (one
        round trip to the store). Raises as `hit` does, and ValueError for no bucket."""
        ...


class InMemoryRateLimitBackend(InMemoryBuckets):
    """Buckets in this process's memory; thread-safe; for embedded mode and tests.

    Each process has its own buckets, so N API processes allow N times the rate;
    use :class:`RedisRateLimitBackend` when more than one process serves the API.
    Buckets that have refilled completely are pruned once more than ``max_keys``
    are held (a full bucket is the same as no bucket).
    """

    def hit_sync(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateDecision:
        """Synchronous form of :meth:`hit`, for threads and sync code."""
        return self.take([(key, limit)], cost=cost)

    async def hit(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateDecision:
        """See :class:`RateLimitBackend`; never raises RateLimitUnavailable."""
        return self.hit_sync(key, limit, cost=cost)

    async def hit_all(self, buckets: Sequence[Bucket], *, cost: int = 1) -> RateDecision:
        """See :class:`RateLimitBackend`; never raises RateLimitUnavailable."""
        return self.take(buckets, cost=cost)


class RedisRateLimitBackend:
    """Buckets in Redis, shared by every process; one atomic script call per hit.

    ``client`` is a ``redis.asyncio.Redis``; this class never connects by itself.
    Keys are ``prefix + key`` hashes that expire once they would be full again.
    Redis errors become :class:`RateLimitUnavailable` (from the original). The
    script is :data:`calsync.token_buckets.BUCKET_SCRIPT`, shared with the workers'
    blocking :class:`~calsync.token_buckets.RedisBuckets`.
    """

    def __init__(self, client: Redis, *, prefix: str = "calsync:ratelimit:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(BUCKET_SCRIPT)

    async def hit(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateDecision:
        """See :class:`RateLimitBackend`."""
        return await self.hit_all([(key, limit)], cost=cost)

    async def hit_all(self, buckets: Sequence[Bucket], *, cost: int = 1) -> RateDecision:
        """See :class:`RateLimitBackend`: one script call for all of `buckets`."""
        from redis.exceptions import RedisError  # redis is only needed with this backend

        keys, args = script_args(buckets, cost, self._prefix)
        try:
            result: Any = await self._script(keys=keys, args=args)
        except RedisError as err:
            raise RateLimitUnavailable("the rate-limit store is unavailable") from err
        return decision_from_script(result)


def rate_limited_response(decision: RateDecision) -> JSONResponse:
    """The 429 answer for a refused hit, with ``Retry-After`` in whole seconds."""
    return error_response(
        429,
        "Too many requests; retry after the number of seconds in Retry-After.",
        headers={"Retry-After": decision.retry_after_header},
    )


def client_address_key(scope: Scope) -> str | None:
    """Key by the client's address (``None``, so unlimited, if unknown): ``ip:<IPv4>``, or
    ``ip:<prefix>/64`` for IPv6, since one host commonly holds a whole /64 and could
    otherwise take a fresh bucket per request. An IPv4-mapped IPv6 address is its IPv4.

    This is ``scope["client"]``: behind a proxy, the proxy's address unless the app
    rewrote it from ``X-Forwarded-For`` because the proxy is trusted
    (``CALSYNC_TRUSTED_PROXIES``, see ``calsync.web.app``).
    """
    client = scope.get("client")
    if not client:
        return None
    return f"ip:{address_bucket(str(client[0]))}"


def address_bucket(host: str) -> str:
    """The part of a client address that names one client: an IPv4 address, an IPv6
    /64, or the text itself when it is not an IP address (a unix socket, a test client)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


#: Paths no rate limit applies to: probes, metrics and Google's pushes.
UNLIMITED_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics", "/webhooks/google"})
LIMIT_HEADER: Final = "RateLimit-Limit"
REMAINING_HEADER: Final = "RateLimit-Remaining"


def with_rate_headers(send: Send, capacity: int, remaining: int) -> Send:
    """`send` that adds ``RateLimit-Limit`` (the bucket's size) and
    ``RateLimit-Remaining`` (requests left in it now) to the answer. Where two limits
    applied (the address's, then the user's) the answer shows the tighter one: the one
    with fewer requests left."""

    async def shown(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            before = headers.get(REMAINING_HEADER)
            if before is None or int(before) > remaining:
                headers[LIMIT_HEADER] = str(capacity)
                headers[REMAINING_HEADER] = str(max(0, remaining))
        await send(message)

    return shown
