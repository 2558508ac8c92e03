"""The Google quota limiter: per-user and per-project buckets, in-process and in Redis.

In-process tests move a fake clock when the limiter sleeps. Redis keeps its own clock,
so Redis tests record the sleeps and check that the budget is still spent afterwards.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
import redis

from calsync.config import Settings
from calsync.providers.errors import RateLimited
from calsync.providers.quota import REDIS_PREFIX, QuotaLimiter, QuotaWaitExceeded, quota_limiter
from calsync.token_buckets import InMemoryBuckets, RateLimit
from tests.integration.providers.conftest import EVENTS_PATH, Connected

pytestmark = pytest.mark.integration

PER_MINUTE = timedelta(minutes=1)


class FakeTime:
    """A monotonic clock that moves only when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def in_memory(
    time: FakeTime, *, per_user: int, per_project: int, max_wait: float = 60.0
) -> QuotaLimiter:
    return QuotaLimiter(
        InMemoryBuckets(clock=time),
        per_user=RateLimit(per_user, PER_MINUTE),
        per_project=RateLimit(per_project, PER_MINUTE),
        max_wait=max_wait,
        sleep=time.sleep,
    )


def test_the_call_after_the_budget_waits_for_a_token_then_goes() -> None:
    time = FakeTime()
    limiter = in_memory(time, per_user=3, per_project=100)
    user = uuid.uuid4()

    for _ in range(3):
        limiter.acquire(user)
    assert time.sleeps == []
    limiter.acquire(user)

    # One token comes back every 20 s; the wait has a little jitter on top.
    assert len(time.sleeps) == 1
    assert 20 <= time.sleeps[0] <= 20.25


def test_the_call_after_the_budget_raises_when_it_may_not_wait_that_long() -> None:
    time = FakeTime()
    limiter = in_memory(time, per_user=3, per_project=100, max_wait=5)
    user = uuid.uuid4()
    for _ in range(3):
        limiter.acquire(user)

    with pytest.raises(QuotaWaitExceeded) as caught:
        limiter.acquire(user)

    assert isinstance(caught.value, RateLimited)
    assert caught.value.retry_after == pytest.approx(20)
    assert time.sleeps == []


def test_users_have_budgets_of_their_own_within_the_project_budget() -> None:
    time = FakeTime()
    limiter = in_memory(time, per_user=2, per_project=3, max_wait=0)
    alice, bob, carol = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    limiter.acquire(alice)
    limiter.acquire(alice)
    with pytest.raises(QuotaWaitExceeded):
        limiter.acquire(alice)  # her own budget is spent
    limiter.acquire(bob)  # his is not, and the project has one left
    with pytest.raises(QuotaWaitExceeded):
        limiter.acquire(carol)  # now the project's is spent


def test_a_refusal_by_one_bucket_costs_the_other_nothing() -> None:
    time = FakeTime()
    limiter = in_memory(time, per_user=1, per_project=3, max_wait=0)
    alice = uuid.uuid4()
    limiter.acquire(alice)
    for _ in range(5):
        with pytest.raises(QuotaWaitExceeded):
            limiter.acquire(alice)

    limiter.acquire(uuid.uuid4())
    limiter.acquire(uuid.uuid4())  # the project still had both of these


def test_embedded_settings_keep_the_budget_in_process(embedded_settings: Settings) -> None:
    settings = replace(embedded_settings, google_user_requests_per_minute=2)
    limiter = quota_limiter(settings, max_wait=0)
    user = uuid.uuid4()
    limiter.acquire(user)
    limiter.acquire(user)

    with pytest.raises(QuotaWaitExceeded):
        limiter.acquire(user)
    # Another process (another limiter) has a budget of its own in embedded mode.
    quota_limiter(settings, max_wait=0).acquire(user)


@pytest.fixture
def redis_settings(production_settings: Settings) -> Settings:
    return replace(
        production_settings,
        google_user_requests_per_minute=3,
        google_project_requests_per_minute=1000,
    )


def test_two_limiters_on_one_redis_share_the_budget(redis_settings: Settings) -> None:
    # Given two worker processes' limiters on the same Redis
    first = quota_limiter(redis_settings, max_wait=0)
    second = quota_limiter(redis_settings, max_wait=0)
    user = uuid.uuid4()
    try:
        # When they spend the user's 3 requests between them
        first.acquire(user)
        first.acquire(user)
        second.acquire(user)

        # Then neither has any left
        with pytest.raises(QuotaWaitExceeded):
            first.acquire(user)
        with pytest.raises(QuotaWaitExceeded):
            second.acquire(user)
        # And another user still has theirs
        second.acquire(uuid.uuid4())
    finally:
        first.close()
        second.close()


def test_on_redis_the_call_after_the_budget_waits_then_raises(
    redis_settings: Settings, redis_url: str
) -> None:
    sleeps: list[float] = []
    limiter = quota_limiter(redis_settings, max_wait=30, sleep=sleeps.append)
    user = uuid.uuid4()
    try:
        for _ in range(3):
            limiter.acquire(user)

        with pytest.raises(QuotaWaitExceeded) as caught:
            limiter.acquire(user)
    finally:
        limiter.close()

    # It waited about one refill (20 s), found the budget still spent (no time passed
    # on Redis's clock) and gave up before waiting past 30 s in all.
    assert len(sleeps) == 1
    assert 19 <= sleeps[0] <= 20.5
    assert caught.value.retry_after is not None
    assert 19 <= caught.value.retry_after <= 20
    client = redis.Redis.from_url(redis_url)
    try:
        keys = {key.decode() for key in client.scan_iter(match=REDIS_PREFIX + "*")}
        ttl_ms = client.pttl(f"{REDIS_PREFIX}user:{user}")
    finally:
        client.close()
    assert keys == {f"{REDIS_PREFIX}user:{user}", f"{REDIS_PREFIX}project"}
    assert 0 < int(ttl_ms) <= 61_000


def test_an_unreachable_redis_lets_requests_through(
    production_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = replace(
        production_settings, redis_url="redis://127.0.0.1:1/0", google_user_requests_per_minute=1
    )
    limiter = quota_limiter(settings, max_wait=0)
    user = uuid.uuid4()
    try:
        with caplog.at_level(logging.WARNING, logger="calsync.providers.quota"):
            limiter.acquire(user)
            limiter.acquire(user)
    finally:
        limiter.close()

    assert "quota store unavailable" in caplog.text


def test_the_client_spends_quota_per_request_and_stops_before_google_when_spent(
    alice: Connected,
) -> None:
    time = FakeTime()
    limiter = in_memory(time, per_user=2, per_project=100, max_wait=0)
    client = alice.client(quota=limiter)
    client.list_changes(alice.calendar_id, sync_token=None, page_token=None)
    client.list_changes(alice.calendar_id, sync_token=None, page_token=None)

    with pytest.raises(QuotaWaitExceeded):
        client.list_changes(alice.calendar_id, sync_token=None, page_token=None)

    assert client.api_calls == 2
    assert len(alice.google_requests(path_regex=EVENTS_PATH)) == 2
    assert alice.sleeps == []  # the limiter's refusal is not retried within the call
