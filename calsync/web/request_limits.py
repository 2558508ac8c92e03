"""The API's two request rate limits, per client address and per user, in one round trip
to the bucket store (decision HB1).

The address limit applies before authentication, so that a flood of bad tokens from one
address ends in 429s without an audit write each; the user limit needs the user that
authentication found. Each was its own middleware and its own Redis script call. Now:

- `AddressLimitMiddleware` (before authentication) takes the address's bucket at once
  for a request without a bearer token (sign-in, probes' neighbours, anonymous calls);
  a request with one carries its address bucket on in the scope (`Deferred`);
- `UserLimitMiddleware` (after authentication) takes the carried address bucket and the
  user's in one hit (`RateLimitBackend.hit_all`: from both or from neither);
- a request whose token authentication refuses takes the carried bucket alone before its
  failure is audited (`take_carried`, called by ``calsync.web.auth.principal``),
  and gets 429 instead of 401 once the address's bucket is empty.

Both limits stay enforced across processes (the same buckets, on Redis's clock). The
answer's ``RateLimit-Limit``/``RateLimit-Remaining`` show the bucket with fewer tokens
left, as before. A hit refused by one bucket no longer costs the other one a token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from calsync.token_buckets import Bucket
from calsync.web.errors import error_response
from calsync.web.limits import (
    LIMIT_HEADER,
    REMAINING_HEADER,
    RateDecision,
    RateLimit,
    RateLimitBackend,
    RateLimitUnavailable,
    client_address_key,
    rate_limited_response,
    with_rate_headers,
)

__all__ = [
    "AddressLimitMiddleware",
    "Deferred",
    "UserLimitMiddleware",
    "add_rate_headers",
    "take_carried",
]

logger = logging.getLogger(__name__)

#: The scope key of the address bucket a request with a bearer token carries on.
DEFERRED: Final = "calsync.deferred_address_limit"


@dataclass(frozen=True)
class Deferred:
    """An address bucket not yet taken, and the backend to take it from."""

    backend: RateLimitBackend
    bucket: Bucket


def _bearer(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bool(value[:7].lower() == b"bearer ")
    return False


async def _limited(
    app: ASGIApp,
    buckets: list[Bucket],
    backend: RateLimitBackend,
    fail_open: bool,
    connection: tuple[Scope, Receive, Send],
) -> None:
    """Answer the request with `app` if `buckets` allow it (one hit), else 429."""
    scope, receive, send = connection
    try:
        decision = await backend.hit_all(buckets)
    except RateLimitUnavailable:
        if not fail_open:
            response = error_response(503, "The service is temporarily unavailable.")
            await response(scope, receive, send)
            return
        logger.warning("rate limiter unavailable; letting the request through", exc_info=True)
        await app(scope, receive, send)
        return
    limit = buckets[decision.tightest][1]
    shown = with_rate_headers(send, limit.capacity, decision.remaining)
    if not decision.allowed:
        await rate_limited_response(decision)(scope, receive, shown)
        return
    await app(scope, receive, shown)


class _LimitMiddleware:
    """One `limit` per bucket that `key` names for a request (``None``: no limit). When
    the bucket store is unavailable the request goes through with a warning logged
    (`fail_open`, the default: limits protect the service, they are not its correctness),
    or is answered 503."""

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


class AddressLimitMiddleware(_LimitMiddleware):
    """Before authentication: `limit` per client address (`key`, by default
    `client_address_key`), taken now, or after authentication for a request with a
    bearer token (see the module docstring)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        address = self.key(scope) if scope["type"] == "http" else None
        if address is None:
            await self.app(scope, receive, send)
            return
        if _bearer(scope):
            scope[DEFERRED] = Deferred(self.backend, (address, self.limit))
            await self.app(scope, receive, send)
            return
        buckets = [(address, self.limit)]
        await _limited(self.app, buckets, self.backend, self.fail_open, (scope, receive, send))


class UserLimitMiddleware(_LimitMiddleware):
    """After authentication: `limit` per user (`key`, ``None`` for none), taken with the
    address bucket the request carries, if any, in one hit."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deferred = scope.pop(DEFERRED, None)
        buckets = [deferred.bucket] if isinstance(deferred, Deferred) else []
        user = self.key(scope)
        if user is not None:
            buckets.append((user, self.limit))
        if not buckets:
            await self.app(scope, receive, send)
            return
        await _limited(self.app, buckets, self.backend, self.fail_open, (scope, receive, send))


async def take_carried(scope: Scope) -> tuple[RateDecision, RateLimit] | None:
    """For a request authentication refused: take the address bucket it carries; the
    decision and the bucket's limit (``None`` when it carries none, or when the store is
    unavailable: the request is refused anyway)."""
    deferred = scope.pop(DEFERRED, None)
    if not isinstance(deferred, Deferred):
        return None
    try:
        decision = await deferred.backend.hit_all([deferred.bucket])
    except RateLimitUnavailable:
        logger.warning("rate limiter unavailable for a refused token", exc_info=True)
        return None
    return decision, deferred.bucket[1]


def add_rate_headers(response: Response, decision: RateDecision, limit: RateLimit) -> None:
    """``RateLimit-Limit`` and ``RateLimit-Remaining`` of one bucket on `response`."""
    response.headers[LIMIT_HEADER] = str(limit.capacity)
    response.headers[REMAINING_HEADER] = str(max(0, decision.remaining))
