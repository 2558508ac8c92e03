"""RedisRateLimitBackend against the real Redis (db 15, see tests/conftest.py).

Time is Redis's own clock, so instead of sleeping, tests that need time to pass
move the bucket's stored timestamp back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from calsync.web.limits import RateDecision, RateLimit, RateLimitUnavailable, RedisRateLimitBackend

pytestmark = pytest.mark.integration

# 3 per hour: one token every 1200 s, so nothing refills during a test by itself.
SLOW = RateLimit(requests=3, per=timedelta(hours=1))


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    value = f"calsync-test:{uuid.uuid4().hex}:"
    yield value

    async def cleanup() -> None:
        client: Redis = Redis.from_url(redis_url)
        try:
            keys = [key async for key in client.scan_iter(match=value + "*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()

    asyncio.run(cleanup())


Scenario = Callable[[RedisRateLimitBackend, "Redis"], Awaitable[Any]]


def run(redis_url: str, prefix: str, scenario: Scenario) -> Any:
    """Run ``scenario`` with a backend on a client bound to a fresh event loop."""

    async def main() -> Any:
        client: Redis = Redis.from_url(redis_url)
        try:
            return await scenario(RedisRateLimitBackend(client, prefix=prefix), client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_burst_then_refusal_with_retry_after(redis_url: str, prefix: str) -> None:
    async def scenario(backend: RedisRateLimitBackend, _: Redis) -> list[RateDecision]:
        return [await backend.hit("user:1", SLOW) for _ in range(4)]

    decisions = run(redis_url, prefix, scenario)
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert 1190 < decisions[-1].retry_after <= 1200
    assert decisions[-1].retry_after_header in {str(n) for n in range(1191, 1201)}


def test_keys_are_independent_prefixed_and_expire(redis_url: str, prefix: str) -> None:
    async def scenario(backend: RedisRateLimitBackend, client: Redis) -> tuple[Any, ...]:
        for _ in range(3):
            await backend.hit("a", SLOW)
        refused = await backend.hit("a", SLOW)
        other = await backend.hit("b", SLOW)
        keys = sorted([k.decode() async for k in client.scan_iter(match=prefix + "*")])
        ttl_ms = await client.pttl(prefix + "a")
        return refused, other, keys, ttl_ms

    refused, other, keys, ttl_ms = run(redis_url, prefix, scenario)
    assert not refused.allowed
    assert other.allowed
    assert keys == [prefix + "a", prefix + "b"]
    # Expires once it would be full again anyway: 3 tokens x 1200 s, plus a second.
    assert 3_590_000 < ttl_ms <= 3_601_000


def test_tokens_refill_as_time_passes(redis_url: str, prefix: str) -> None:
    async def scenario(backend: RedisRateLimitBackend, client: Redis) -> tuple[Any, ...]:
        for _ in range(3):
            await backend.hit("k", SLOW)
        assert not (await backend.hit("k", SLOW)).allowed
        # When 1200 s pass (the stored timestamp moves back), one token is back
        ts = float(await client.hget(prefix + "k", "ts") or 0)
        await client.hset(prefix + "k", "ts", f"{ts - 1201:.6f}")
        first = await backend.hit("k", SLOW)
        second = await backend.hit("k", SLOW)
        # And a long silence refills to the burst, no further
        ts = float(await client.hget(prefix + "k", "ts") or 0)
        await client.hset(prefix + "k", "ts", f"{ts - 10**6:.6f}")
        capped = await backend.hit("k", SLOW)
        return first, second, capped

    first, second, capped = run(redis_url, prefix, scenario)
    assert first.allowed
    assert not second.allowed
    assert capped.remaining == 2


def test_cost_takes_several_tokens(redis_url: str, prefix: str) -> None:
    async def scenario(backend: RedisRateLimitBackend, _: Redis) -> list[RateDecision]:
        return [await backend.hit("k", SLOW, cost=2), await backend.hit("k", SLOW, cost=2)]

    taken, refused = run(redis_url, prefix, scenario)
    assert (taken.allowed, taken.remaining) == (True, 1)
    assert not refused.allowed
    assert 1190 < refused.retry_after <= 1200


def test_concurrent_hits_from_several_clients_never_over_admit(redis_url: str, prefix: str) -> None:
    # Given one bucket of 20 and four "processes" (clients) hitting it 50 times each at once
    limit = RateLimit(requests=20, per=timedelta(hours=1))

    async def main() -> list[RateDecision]:
        clients: list[Redis] = [Redis.from_url(redis_url) for _ in range(4)]
        backends = [RedisRateLimitBackend(c, prefix=prefix) for c in clients]
        try:
            return await asyncio.gather(
                *(b.hit("shared", limit) for b in backends for _ in range(50))
            )
        finally:
            for c in clients:
                await c.aclose()

    decisions = asyncio.run(main())
    # Then exactly 20 get through
    assert sum(d.allowed for d in decisions) == 20
    assert len(decisions) == 200


def test_a_rejected_cost_sends_nothing(redis_url: str, prefix: str) -> None:
    async def scenario(backend: RedisRateLimitBackend, client: Redis) -> int:
        with pytest.raises(ValueError, match="cost"):
            await backend.hit("k", SLOW, cost=4)
        return int(await client.exists(prefix + "k"))

    assert run(redis_url, prefix, scenario) == 0


def test_unreachable_redis_is_rate_limit_unavailable() -> None:
    async def main() -> None:
        client: Redis = Redis.from_url("redis://127.0.0.1:1/15", socket_connect_timeout=1)
        try:
            await RedisRateLimitBackend(client).hit("k", SLOW)
        finally:
            await client.aclose()

    with pytest.raises(RateLimitUnavailable) as caught:
        asyncio.run(main())
    assert caught.value.__cause__ is not None
