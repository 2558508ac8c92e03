"""Token buckets shared by every rate limit in calsync: the API's and Google's quota.

One algorithm, two stores:

- :class:`InMemoryBuckets`, thread-safe buckets in this process (embedded mode, tests);
- one atomic Lua script (:data:`BUCKET_SCRIPT`) run on Redis's own clock, so every
  process shares the buckets; :class:`RedisBuckets` calls it with a blocking client,
  ``calsync.web.limits.RedisRateLimitBackend`` with an asyncio one.

A hit may name several buckets at once (a user's and the project's quota): it is taken
from all of them or from none, so a refusal by one bucket costs the others nothing.
Nothing here sleeps or connects at import time; Redis clients are passed in.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    from redis import Redis

__all__ = [
    "BUCKETS_CHECK",
    "BUCKETS_TAKE",
    "BUCKET_SCRIPT",
    "Buckets",
    "InMemoryBuckets",
    "RateDecision",
    "RateLimit",
    "RateLimitUnavailable",
    "RedisBuckets",
    "decision_from_script",
    "script_args",
]


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
    """The outcome of one hit: ``retry_after`` is seconds until it would fit (0 if allowed).

    With several buckets, ``remaining`` is the fewest tokens left in any of them and
    ``retry_after`` the longest wait among those that refused; ``limited_by`` is the
    position (in the hit's list) of the bucket that imposes that wait, ``None`` if allowed,
    and ``tightest`` the position of the one with ``remaining`` tokens.
    """

    allowed: bool
    remaining: int
    retry_after: float
    limited_by: int | None = None
    #: The position of the bucket with the fewest tokens left (whose size an answer's
    #: ``RateLimit-Limit`` shows).
    tightest: int = 0

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` value: whole seconds, rounded up, at least 1."""
        return str(max(1, math.ceil(self.retry_after)))


class RateLimitUnavailable(Exception):
    """The bucket store could not be asked (for example Redis is down)."""


Bucket = tuple[str, RateLimit]


class Buckets(Protocol):
    """Takes ``cost`` tokens from every named bucket, or from none of them.

    Implementations are safe to call from several threads. They do not sleep or queue:
    a refused hit costs nothing and says when to come back.
    """

    def take(self, buckets: Sequence[Bucket], *, cost: int = 1) -> RateDecision:
        """Raises ValueError for an empty ``buckets`` or a bad ``cost``;
        RateLimitUnavailable if the store cannot be reached."""
        ...


def _check(buckets: Sequence[Bucket], cost: int) -> None:
    if not buckets:
        raise ValueError("name at least one bucket")
    for _, limit in buckets:
        limit.check_cost(cost)


class InMemoryBuckets:
    """Buckets in this process's memory; thread-safe; for embedded mode and tests.

    Each process has its own buckets, so N processes allow N times the rate; use
    :class:`RedisBuckets` when more than one process shares a limit. Buckets that have
    refilled completely are pruned once more than ``max_keys`` are held (a full bucket
    is the same as no bucket).
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._lock = threading.Lock()
        # key -> (tokens, updated, moment the bucket is full again)
        self._buckets: dict[str, tuple[float, float, float]] = {}

    def take(self, buckets: Sequence[Bucket], *, cost: int = 1) -> RateDecision:
        """See :class:`Buckets`; never raises RateLimitUnavailable."""
        _check(buckets, cost)
        with self._lock:
            now = self._clock()
            refilled = [(key, limit, *self._refilled(key, limit, now)) for key, limit in buckets]
            allowed = all(tokens >= cost for _, _, tokens, _ in refilled)
            wait = 0.0
            limited_by: int | None = None
            remaining, tightest = math.inf, 0
            for index, (key, limit, tokens, updated) in enumerate(refilled):
                if allowed:
                    tokens -= cost
                elif tokens < cost and (cost - tokens) / limit.refill_per_second >= wait:
                    wait = (cost - tokens) / limit.refill_per_second
                    limited_by = index
                full_at = updated + (limit.capacity - tokens) / limit.refill_per_second
                self._buckets[key] = (tokens, updated, full_at)
                if tokens < remaining:
                    remaining, tightest = tokens, index
            if len(self._buckets) > self._max_keys:
                self._prune(now)
        return RateDecision(allowed, math.floor(remaining), wait, limited_by, tightest)

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, key: str, limit: RateLimit, now: float) -> tuple[float, float]:
        tokens, updated, _ = self._buckets.get(key, (float(limit.capacity), now, now))
        if now > updated:
            tokens = min(float(limit.capacity), tokens + (now - updated) * limit.refill_per_second)
            updated = now
        return tokens, updated

    def _prune(self, now: float) -> None:
        full = [key for key, (_, _, full_at) in self._buckets.items() if full_at <= now]
        for key in full:
            del self._buckets[key]


# KEYS: the buckets; ARGV[1]: cost; then per bucket: capacity, refill per second, ttl in ms.
# Redis's own clock (TIME) keeps processes with skewed clocks on one timeline. Every bucket
# is refilled first; the cost is taken from all of them only if all of them have it. The
# script is two halves around ``nb`` (the number of buckets, the first ``nb`` keys), so
# that another script may decide between them (`calsync.providers.quota`'s budget).
BUCKETS_CHECK: Final = """
local cost = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tokens = {}
local stamps = {}
local allowed = 1
local wait = 0
local limited = 0
for i = 1, nb do
  local capacity = tonumber(ARGV[3 * i - 1])
  local rate = tonumber(ARGV[3 * i])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
  local tk = tonumber(state[1])
  local ts = tonumber(state[2])
  if tk == nil or ts == nil then
    tk = capacity
    ts = now
  end
  if now > ts then
    tk = math.min(capacity, tk + (now - ts) * rate)
    ts = now
  end
  if tk < cost then
    allowed = 0
    if (cost - tk) / rate >= wait then
      wait = (cost - tk) / rate
      limited = i
    end
  end
  tokens[i] = tk
  stamps[i] = ts
end
"""
# The second half: take the cost from every bucket if ``allowed`` (the first half's, or as
# a script between the two halves left it), store them all, find the tightest.
BUCKETS_TAKE: Final = """
local remaining = nil
local tightest = 1
for i = 1, nb do
  if allowed == 1 then
    tokens[i] = tokens[i] - cost
  end
  redis.call('HSET', KEYS[i],
    'tokens', string.format('%.6f', tokens[i]), 'ts', string.format('%.6f', stamps[i]))
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[3 * i + 1]))
  if remaining == nil or tokens[i] < remaining then
    remaining = tokens[i]
    tightest = i
  end
end
"""
BUCKET_SCRIPT: Final = (
    "local nb = #KEYS\n"
    + BUCKETS_CHECK
    + BUCKETS_TAKE
    + "return {allowed, string.format('%.6f', remaining), string.format('%.6f', wait),"
    + " limited, tightest}\n"
)


def script_args(
    buckets: Sequence[Bucket], cost: int, prefix: str
) -> tuple[list[str], list[str | int]]:
    """The keys and arguments of one :data:`BUCKET_SCRIPT` call; checks ``cost`` first.

    Each key expires once its bucket would be full again, plus a second.
    """
    _check(buckets, cost)
    keys = [prefix + key for key, _ in buckets]
    args: list[str | int] = [cost]
    for _, limit in buckets:
        ttl_ms = math.ceil(limit.capacity / limit.refill_per_second * 1000) + 1000
        args += [limit.capacity, repr(limit.refill_per_second), ttl_ms]
    return keys, args


def decision_from_script(result: Any) -> RateDecision:
    """The :class:`RateDecision` in a :data:`BUCKET_SCRIPT` answer (the script numbers
    buckets from 1, 0 for none)."""
    allowed, tokens, wait, *rest = result
    limited = int(rest[0]) if rest else 0
    tightest = int(rest[1]) - 1 if len(rest) > 1 else 0
    return RateDecision(
        bool(int(allowed)),
        math.floor(float(tokens)),
        float(wait),
        limited - 1 if limited else None,
        tightest,
    )


class RedisBuckets:
    """Buckets in Redis, shared by every process; one atomic script call per hit.

    ``client`` is a blocking ``redis.Redis``; this class never connects by itself. Keys
    are ``prefix + key`` hashes. All buckets of one hit must live on one Redis node (no
    cluster slot spreading). Redis errors become :class:`RateLimitUnavailable`.
    """

    def __init__(self, client: Redis, *, prefix: str = "calsync:ratelimit:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(BUCKET_SCRIPT)

    def take(self, buckets: Sequence[Bucket], *, cost: int = 1) -> RateDecision:
        """See :class:`Buckets`."""
        from redis.exceptions import RedisError  # redis is only needed with this store

        keys, args = script_args(buckets, cost, self._prefix)
        try:
            result: Any = self._script(keys=keys, args=args)
        except RedisError as err:
            raise RateLimitUnavailable("the rate-limit store is unavailable") from err
        return decision_from_script(result)
