"""A shared limiter that keeps calsync under a provider's request quotas (design.md section 5).

Before every request to Google a worker takes one token from the user's bucket
(``google_user_requests_per_minute``) and one from the project's
(``google_project_requests_per_minute``), both or neither. The buckets are in Redis in
production, so every worker process shares one budget, and in this process in embedded
mode. When a bucket is empty the caller waits (counted in ``calsync_rate_limit_waits_total``
and ``calsync_rate_limit_wait_seconds_total`` by the bucket that made it wait: ``user`` or
``project``), up to ``max_wait`` seconds in all; if the
budget is still spent then, :class:`QuotaWaitExceeded` (a :class:`RateLimited`) tells
the job to come back after ``retry_after``. Google's own answers (403 rate limits, 429)
are handled by the client's backoff; this limiter makes them rare.

Every request that gets its tokens is then counted in the project's daily budget
(`calsync.providers.budget`) as the calling thread's priority; a priority whose ceiling
the day has reached gets :class:`~calsync.providers.budget.BudgetDeferred` instead. With
both in Redis the tokens and the spend are one script, one round trip per request, and a
refused request's tokens stay in the buckets (`calsync.providers.quota_store`); otherwise
the budget is asked after the tokens are taken.

Each bucket holds a minute's worth of requests and refills evenly, so the long-run rate
is the configured one and a quiet user may spend a whole minute's budget at once.
Quotas: https://developers.google.com/calendar/api/guides/quota
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Final

from calsync import metrics
from calsync.config import Settings
from calsync.providers.budget import DailyBudget, RedisBudgetStore
from calsync.providers.errors import RateLimited
from calsync.providers.quota_store import RedisQuotaBuckets
from calsync.token_buckets import (
    Bucket,
    Buckets,
    InMemoryBuckets,
    RateDecision,
    RateLimit,
    RateLimitUnavailable,
)

__all__ = ["QuotaLimiter", "QuotaWaitExceeded", "project_limit", "quota_limiter"]

logger = logging.getLogger(__name__)

REDIS_PREFIX: Final = "calsync:google-quota:"
PROJECT_KEY: Final = "project"
DEFAULT_MAX_WAIT: Final = 10.0


class QuotaWaitExceeded(RateLimited):
    """calsync's own quota stayed spent for longer than the caller may wait.

    No request reached the provider. It is a :class:`RateLimited`, so jobs reschedule
    after ``retry_after``; the client does not retry it within the call.
    """


class QuotaLimiter:
    """Takes one request's worth of quota for a user, waiting (bounded) when it is spent.

    ``buckets`` decides where the budget lives (see :func:`quota_limiter`). ``sleep`` is
    injected so that tests never sleep. Safe to share between threads.
    """

    def __init__(
        self,
        buckets: Buckets,
        *,
        per_user: RateLimit,
        per_project: RateLimit,
        max_wait: float = DEFAULT_MAX_WAIT,
        sleep: Callable[[float], None] = time.sleep,
        close: Callable[[], None] | None = None,
        budget: DailyBudget | None = None,
    ) -> None:
        self.buckets = buckets
        self.budget = budget
        self.per_user = per_user
        self.per_project = per_project
        self.max_wait = max_wait
        self._sleep = sleep
        self._close = close

    def acquire(self, user_id: uuid.UUID) -> None:
        """Spend one request of ``user_id``'s and of the project's quota.

        Returns once both had a token, having slept at most ``max_wait`` seconds in all.
        If the store is unreachable the request goes through (logged): the limiter
        protects the quota, Google's own refusals are still handled.

        Raises:
            QuotaWaitExceeded: the budget is still spent after ``max_wait``.
            BudgetDeferred: the daily budget has no room for the thread's priority.
        """
        buckets = [(f"user:{user_id}", self.per_user), (PROJECT_KEY, self.per_project)]
        scopes = ("user", "project")
        waited = 0.0
        while True:
            try:
                decision = self._take(buckets)
            except RateLimitUnavailable:
                logger.warning("Google quota store unavailable; not limiting", exc_info=True)
                return
            if decision.allowed:
                return
            delay = decision.retry_after + _jitter(decision.retry_after)
            if waited + delay > self.max_wait:
                raise QuotaWaitExceeded(
                    f"calsync's Google quota is spent; retry in {decision.retry_after:.1f} s",
                    retry_after=decision.retry_after,
                    reason="localQuota",
                )
            scope = scopes[decision.limited_by or 0]
            metrics.RATE_LIMIT_WAITS.labels(scope).inc()
            metrics.RATE_LIMIT_WAIT_SECONDS.labels(scope).inc(delay)
            self._sleep(delay)
            waited += delay

    def _take(self, buckets: list[Bucket]) -> RateDecision:
        """The buckets' decision; a request they allow is spent in the budget too (which
        may refuse it: BudgetDeferred). In one script when both live in one Redis."""
        budget = self.budget
        if budget is None:
            return self.buckets.take(buckets)
        store, own = budget.store, self.buckets
        if (
            isinstance(own, RedisQuotaBuckets)
            and isinstance(store, RedisBudgetStore)
            and own.same_server(store.client)
        ):
            charge = budget.charge()
            decision, spent = own.take_and_spend(buckets, store, charge)
            if spent is not None:  # the buckets allowed it: the budget was asked
                budget.settle(charge, decision.allowed, spent)
            return decision
        decision = self.buckets.take(buckets)
        if decision.allowed:
            budget.spend()
        return decision

    def close(self) -> None:
        """Release the store's connections, if it has any."""
        if self._close is not None:
            self._close()


def _jitter(wait: float) -> float:
    # Spread workers that wait for the same refill over a short window.
    return random.uniform(0, min(0.25, wait / 10))  # noqa: S311 - not for security


def project_limit(settings: Settings) -> RateLimit:
    """The project's bucket: every Google request of every process passes it."""
    return RateLimit(settings.google_project_requests_per_minute, timedelta(minutes=1))


def quota_limiter(
    settings: Settings,
    *,
    max_wait: float = DEFAULT_MAX_WAIT,
    sleep: Callable[[float], None] = time.sleep,
    budget: DailyBudget | None = None,
) -> QuotaLimiter:
    """The limiter for ``settings``: Redis-backed when ``redis_url`` is set, else in-process;
    `budget`, when given, counts every request it lets through.

    Connects to nothing until the first :meth:`QuotaLimiter.acquire`.
    """
    per_user = RateLimit(settings.google_user_requests_per_minute, timedelta(minutes=1))
    per_project = project_limit(settings)
    if settings.redis_url is None:
        return QuotaLimiter(
            InMemoryBuckets(),
            per_user=per_user,
            per_project=per_project,
            max_wait=max_wait,
            sleep=sleep,
            budget=budget,
        )
    from redis import Redis  # only production needs it

    client: Redis = Redis.from_url(
        settings.redis_url, socket_timeout=5.0, socket_connect_timeout=5.0
    )
    return QuotaLimiter(
        RedisQuotaBuckets(client, prefix=REDIS_PREFIX),
        per_user=per_user,
        per_project=per_project,
        max_wait=max_wait,
        sleep=sleep,
        close=client.close,
        budget=budget,
    )
