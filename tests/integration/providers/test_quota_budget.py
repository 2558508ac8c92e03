"""The Google quota and the daily budget together, in the real Redis (decisions IN).

- one round trip per Google request: the user's and the project's buckets and the day's
  budget in one script, for several users, each spend counted once;
- the rules are the two scripts' own: the buckets still limit (what they refuse is not
  counted in the budget), a priority past its ceiling is refused with its tokens left in
  the buckets, a higher priority and another user go on;
- a job's budget check (`DailyBudget.has_room`) asks Redis nothing while the project's
  bucket proves there is room, and sees another process's spend at once near a ceiling.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from calsync.config import Settings
from calsync.providers.budget import (
    BudgetDeferred,
    DailyBudget,
    Priority,
    RedisBudgetStore,
    daily_budget,
    spending,
)
from calsync.providers.quota import (
    REDIS_PREFIX,
    QuotaLimiter,
    QuotaWaitExceeded,
    project_limit,
    quota_limiter,
)
from calsync.token_buckets import RateLimit

pytestmark = pytest.mark.integration

NOON_IN_CALIFORNIA = datetime(2031, 3, 3, 20, 0, tzinfo=UTC)


class Counting(redis.Redis):
    """A real Redis client that counts the commands it sends (one round trip each)."""

    sent = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        Counting.sent += 1
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> type[Counting]:
    """Redis clients made from a URL from now on count their commands."""

    def from_url(url: str, **options: Any) -> Counting:
        return Counting(connection_pool=redis.ConnectionPool.from_url(url, **options))

    monkeypatch.setattr(redis.Redis, "from_url", staticmethod(from_url))
    Counting.sent = 0
    return Counting


@pytest.fixture
def limited(
    tmp_path: Path, redis_url: str, counted: type[Counting]
) -> Iterator[tuple[QuotaLimiter, DailyBudget]]:
    """The limiter and a budget of 100 requests a day, both in Redis, as `bootstrap`
    builds them (users: 5 requests a minute; the project: 1000)."""
    settings = replace(
        Settings.embedded(tmp_path),
        redis_url=redis_url,
        google_user_requests_per_minute=5,
        google_project_requests_per_minute=1000,
    )
    budget = daily_budget(redis_url, 100, clock=lambda: NOON_IN_CALIFORNIA)
    limiter = quota_limiter(settings, budget=budget, max_wait=0.0)
    yield limiter, budget
    limiter.close()
    budget.close()


def tokens(redis_url: str, user: uuid.UUID) -> float:
    raw: Any = redis.Redis.from_url(redis_url).hget(f"{REDIS_PREFIX}user:{user}", "tokens")
    return float(raw)


def test_each_google_request_takes_quota_and_budget_in_one_round_trip(
    limited: tuple[QuotaLimiter, DailyBudget], counted: type[Counting], redis_url: str
) -> None:
    limiter, budget = limited
    ann, ben, cat = (uuid.uuid4() for _ in range(3))
    limiter.acquire(ann)  # loads the scripts
    counted.sent = 0
    # When three users make eight requests between them
    with spending(Priority.NOTIFICATION):
        for user in (ann, ann, ben, ben, ben, cat, cat, cat):
            limiter.acquire(user)
    # Then each cost Redis one command, and each was counted once in the budget
    assert counted.sent == 8
    usage = budget.usage()
    assert dict(usage.spent) == {Priority.INTERACTIVE: 1, Priority.NOTIFICATION: 8}
    # and in its user's bucket only (5 a minute; refilled a little since)
    assert math.floor(tokens(redis_url, ann)) == 2
    assert math.floor(tokens(redis_url, ben)) == 2
    assert math.floor(tokens(redis_url, cat)) == 2


def test_the_buckets_still_limit_and_what_they_refuse_is_not_counted(
    limited: tuple[QuotaLimiter, DailyBudget],
) -> None:
    limiter, budget = limited
    ann, ben = uuid.uuid4(), uuid.uuid4()
    for _ in range(5):
        limiter.acquire(ann)
    # The sixth request within the minute finds ann's bucket empty (no wait allowed)
    with pytest.raises(QuotaWaitExceeded):
        limiter.acquire(ann)
    # ben's own bucket is full
    limiter.acquire(ben)
    assert budget.usage().total == 6


def test_a_request_past_its_ceiling_is_refused_and_keeps_its_tokens(
    limited: tuple[QuotaLimiter, DailyBudget], redis_url: str
) -> None:
    limiter, budget = limited
    # Buckets that barely refill during the test: what is taken stays taken
    limiter.per_user = RateLimit(100, timedelta(days=1))
    ann, ben = uuid.uuid4(), uuid.uuid4()
    # Given ann's polls spent the polls' share of the day (60 of 100)
    with spending(Priority.POLL):
        for _ in range(60):
            limiter.acquire(ann)
        # When one more poll asks, it is refused, whoever asks
        for user in (ann, ben):
            with pytest.raises(BudgetDeferred) as refused:
                limiter.acquire(user)
            assert refused.value.priority is Priority.POLL
    # Then no token was taken for the refused requests
    assert math.floor(tokens(redis_url, ann)) == 40
    with spending(Priority.WRITE):
        limiter.acquire(ben)
    assert math.floor(tokens(redis_url, ben)) == 99
    # And higher priorities still spend, up to their own ceilings
    with spending(Priority.NOTIFICATION):
        for _ in range(19):
            limiter.acquire(ann)
        with pytest.raises(BudgetDeferred):
            limiter.acquire(ann)
    assert dict(budget.usage().spent) == {
        Priority.POLL: 60,
        Priority.WRITE: 1,
        Priority.NOTIFICATION: 19,
    }
    assert budget.usage().total <= 100


def _process(redis_url: str, per_day: int, bound: RateLimit) -> DailyBudget:
    client = redis.Redis.from_url(redis_url)
    return DailyBudget(
        RedisBudgetStore(client),
        per_day=per_day,
        clock=lambda: NOON_IN_CALIFORNIA,
        spend_bound=bound,
    )


def test_a_jobs_budget_check_asks_redis_only_when_the_bucket_cannot_prove_room(
    redis_url: str, counted: type[Counting]
) -> None:
    bound = RateLimit(10, timedelta(minutes=1))  # the project's bucket of every process
    here, there = _process(redis_url, 1000, bound), _process(redis_url, 1000, bound)
    try:
        # Far from the polls' ceiling (600): one read, then answers from it
        assert here.has_room(Priority.POLL)
        counted.sent = 0
        for _ in range(50):
            there.spend(Priority.POLL)  # stands for the other process's requests
        assert counted.sent == 50
        assert all(here.has_room(Priority.POLL) for _ in range(20))
        assert counted.sent == 50  # here asked nothing
        # Near the ceiling (within a bucketful of it) every check reads the total
        there.spend(Priority.POLL, cost=540)  # 590 of 600
        assert here.room(Priority.POLL) == 10
        counted.sent = 0
        assert here.has_room(Priority.POLL)
        assert counted.sent == 1
        for _ in range(10):
            there.spend(Priority.POLL)
        # so the other process's last spends are seen at once: polls wait
        assert not here.has_room(Priority.POLL)
        assert counted.sent == 12
        # while notifications (ceiling 800) still have room, proven without a read
        assert here.has_room(Priority.NOTIFICATION)
        assert counted.sent == 12
    finally:
        here.close()
        there.close()


def test_a_jobs_budget_check_from_its_seen_total_never_says_room_when_there_is_none(
    tmp_path: Path, redis_url: str
) -> None:
    # Two processes as `bootstrap` builds them (the project's bucket: 40 a minute, its
    # spend bound), a third that only reads the truth (review RZ2; a guard)
    settings = replace(
        Settings.embedded(tmp_path),
        redis_url=redis_url,
        google_user_requests_per_minute=5,
        google_project_requests_per_minute=40,
    )
    bound = project_limit(settings)
    here, there, truth = (
        daily_budget(redis_url, 1000, clock=lambda: NOON_IN_CALIFORNIA, spend_bound=bound)
        for _ in range(3)
    )
    limiter = quota_limiter(settings, budget=there, max_wait=0.0)
    try:
        truth.spend(Priority.POLL, cost=545)  # earlier requests (polls' ceiling: 600)
        assert here.has_room(Priority.POLL)  # reads 545; a bucketful more stays below
        users = [uuid.uuid4() for _ in range(9)]
        with spending(Priority.POLL):
            for user in users:  # nine users' polls until the project's bucket is empty
                for _ in range(5):
                    try:
                        limiter.acquire(user)
                    except (QuotaWaitExceeded, BudgetDeferred):
                        break
                    # every answer, from the seen total or read, is the truth's
                    assert here.has_room(Priority.POLL) == (truth.room(Priority.POLL) > 0)
        spent = truth.usage().total
        assert 545 + 40 <= spent <= 545 + 45  # the bucket, and what refilled meanwhile
        # each user's requests in that user's bucket only
        assert all(tokens(redis_url, user) < 5 for user in users[:8])
    finally:
        limiter.close()
        for budget in (here, there, truth):
            budget.close()
