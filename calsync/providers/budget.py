"""The project's daily Google budget, spent by priority (decisions Y1-Y3).

Google counts a project's requests per day, the day ending at midnight Pacific time
(https://developers.google.com/calendar/api/guides/quota; Google's daily quotas reset
then). ``CALSYNC_GOOGLE_DAILY_BUDGET`` (default 1,000,000) is calsync's own ceiling for
that day: every request to Google is counted here first, by the priority of the work it
serves (`Priority`), in one counter per quota day (a Redis hash in production, shared by
every process; this process's memory in embedded mode).

A priority may spend only while the day's *total* stays within its ceiling
(`CEILINGS`: a share of the budget), so lower priorities stop first and always leave
the rest of the day to the higher ones, and nothing is spent beyond the budget. A
request refused is :class:`BudgetDeferred` (no request reached Google): callers defer the
work to when the priority may spend again (the next quota day), they never drop it.

The priority is the calling thread's (`spending`, a context variable): jobs set it, the
Google client reads it through the quota limiter (`calsync.providers.quota`).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from time import monotonic as _monotonic
from typing import TYPE_CHECKING, Any, Final, Protocol
from zoneinfo import ZoneInfo

from calsync import metrics
from calsync.providers.errors import QuotaExceeded
from calsync.token_buckets import RateLimit

if TYPE_CHECKING:
    from redis import Redis

__all__ = [
    "CEILINGS",
    "BudgetDeferred",
    "BudgetUsage",
    "Charge",
    "DailyBudget",
    "InMemoryBudgetStore",
    "Priority",
    "RedisBudgetStore",
    "current_priority",
    "next_quota_day",
    "quota_day",
    "spending",
]

log = logging.getLogger(__name__)

#: Google's quota day runs from midnight to midnight in this zone.
PACIFIC: Final = ZoneInfo("America/Los_Angeles")
REDIS_PREFIX: Final = "calsync:google-budget:"
#: A day's counter is kept this long (yesterday's figures stay readable for a while).
KEEP_DAY_FOR: Final = timedelta(days=3)


class Priority(StrEnum):
    """What a Google request is spent on, highest first."""

    #: the users' own changes reaching Google (the outbox)
    WRITE = "write"
    #: what a user waits for: the first sync after sign-in, a calendar-list read
    INTERACTIVE = "interactive"
    #: pulls kicked by Google's notifications (their echoes included), and the channels
    #: that bring notifications (open, renew, stop)
    NOTIFICATION = "notification"
    #: the safety net: polls for dropped notifications, and the convergence audits
    POLL = "poll"


#: The share of the daily budget that the day's total may reach with a priority still
#: spending. Each lower priority stops earlier, leaving the rest to those above it.
CEILINGS: Final[Mapping[Priority, float]] = {
    Priority.WRITE: 1.0,
    Priority.INTERACTIVE: 0.9,
    Priority.NOTIFICATION: 0.8,
    Priority.POLL: 0.6,
}

_priority: ContextVar[Priority] = ContextVar(
    "calsync_google_priority", default=Priority.INTERACTIVE
)


@contextmanager
def spending(priority: Priority) -> Iterator[None]:
    """Count the Google requests made inside the block (this thread or task) as
    `priority`'s. Outside any block requests count as ``interactive``."""
    token = _priority.set(priority)
    try:
        yield
    finally:
        _priority.reset(token)


def current_priority() -> Priority:
    """The priority the Google requests of this thread count as (see `spending`)."""
    return _priority.get()


def quota_day(now: datetime) -> date:
    """Google's quota day that `now` (aware) falls in: its date in Pacific time."""
    return now.astimezone(PACIFIC).date()


def next_quota_day(now: datetime) -> datetime:
    """When the quota day after `now`'s begins (midnight Pacific, as a UTC instant)."""
    following = quota_day(now) + timedelta(days=1)
    return datetime.combine(following, time(0), tzinfo=PACIFIC).astimezone(UTC)


def day_start(now: datetime) -> datetime:
    """When `now`'s quota day began (midnight Pacific, as a UTC instant)."""
    return datetime.combine(quota_day(now), time(0), tzinfo=PACIFIC).astimezone(UTC)


class BudgetDeferred(QuotaExceeded):
    """calsync's daily budget has no room for this priority today: defer the work to
    `until` (the next quota day). No request reached Google.

    A `QuotaExceeded`, so code that already pauses on Google's own daily quota (the
    outbox pauses the user's writes) does the same here.
    """

    def __init__(self, priority: Priority, until: datetime) -> None:
        super().__init__(
            f"calsync's daily Google budget has no room for {priority.value} work until "
            f"{until.isoformat()}",
            reason="dailyBudget",
        )
        self.priority = priority
        self.until = until


class BudgetStore(Protocol):
    """A day's counters, one per priority, changed atomically."""

    def spend(self, day: str, priority: str, cost: int, limit: int) -> tuple[bool, int]:
        """Add `cost` to `priority`'s counter of `day` if the day's total stays within
        `limit`; (whether it was added, the total after)."""
        ...

    def spent(self, day: str) -> dict[str, int]:
        """`day`'s counters (priorities that spent nothing are absent)."""
        ...

    def close(self) -> None: ...


class InMemoryBudgetStore:
    """The counters in this process (embedded mode, tests); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._days: dict[str, dict[str, int]] = {}

    def spend(self, day: str, priority: str, cost: int, limit: int) -> tuple[bool, int]:
        with self._lock:
            counters = self._days.setdefault(day, {})
            total = sum(counters.values())
            if total + cost > limit:
                return False, total
            counters[priority] = counters.get(priority, 0) + cost
            for old in sorted(self._days)[:-3]:  # keep a few days, like the Redis keys
                del self._days[old]
            return True, total + cost

    def spent(self, day: str) -> dict[str, int]:
        with self._lock:
            return dict(self._days.get(day, {}))

    def close(self) -> None:
        pass


# The spend's Lua, to be run inside a script: `bkey` the day's hash, `bprio` the priority,
# `bcost`, `blimit`, `bttl` (seconds) numbers. The total is the sum of every priority's
# counter, read and changed in one atomic call; `spent_ok` (1 or 0) and `spent_total` (the
# total after) are its outcome. `calsync.providers.quota` runs it between the halves of
# the token buckets' script (one round trip per Google request).
SPEND_PART: Final = """
local spent_total = 0
for _, value in ipairs(redis.call('HVALS', bkey)) do spent_total = spent_total + tonumber(value) end
local spent_ok = 0
if spent_total + bcost <= blimit then
  redis.call('HINCRBY', bkey, bprio, bcost)
  redis.call('EXPIRE', bkey, bttl)
  spent_ok = 1
  spent_total = spent_total + bcost
end
"""
# KEYS[1]: the day's hash; ARGV: priority, cost, limit, ttl in seconds.
SPEND_SCRIPT: Final = (
    "local bkey, bprio = KEYS[1], ARGV[1]\n"
    "local bcost, blimit, bttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    + SPEND_PART
    + "return {spent_ok, spent_total}\n"
)
#: A day's hash lives this many seconds after its last spend.
KEEP_DAY_SECONDS: Final = int(KEEP_DAY_FOR.total_seconds())


class RedisBudgetStore:
    """The counters in Redis (``<prefix><YYYY-MM-DD>`` hashes), shared by every process.

    Raises :class:`BudgetUnavailable` when Redis cannot be asked."""

    def __init__(self, client: Redis, *, prefix: str = REDIS_PREFIX) -> None:
        self.client = client
        self._prefix = prefix
        self._script = client.register_script(SPEND_SCRIPT)

    def key(self, day: str) -> str:
        """The Redis key of `day`'s counters."""
        return self._prefix + day

    def spend(self, day: str, priority: str, cost: int, limit: int) -> tuple[bool, int]:
        from redis.exceptions import RedisError

        try:
            allowed, total = self._script(
                keys=[self.key(day)], args=[priority, cost, limit, KEEP_DAY_SECONDS]
            )
        except RedisError as err:
            raise BudgetUnavailable("the budget store is unavailable") from err
        return bool(int(allowed)), int(total)

    def spent(self, day: str) -> dict[str, int]:
        from redis.exceptions import RedisError

        try:
            raw: Any = self.client.hgetall(self.key(day))
        except RedisError as err:
            raise BudgetUnavailable("the budget store is unavailable") from err
        return {_text(k): int(v) for k, v in raw.items()}

    def close(self) -> None:
        self.client.close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class BudgetUnavailable(Exception):
    """The budget's store could not be asked (Redis is down)."""


@dataclass(frozen=True, slots=True)
class BudgetUsage:
    """One quota day's spend so far and where it is heading.

    `extrapolated`: the total so far at the day's pace so far (`total` / `elapsed`).
    """

    day: date
    per_day: int
    spent: Mapping[Priority, int]
    elapsed: float  # share of the quota day gone, 0-1
    seconds_left: float

    @property
    def total(self) -> int:
        return sum(self.spent.values())

    @property
    def extrapolated(self) -> int:
        return round(self.total / self.elapsed) if self.elapsed > 0 else self.total

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "budget": self.per_day,
            "spent": {p.value: self.spent.get(p, 0) for p in Priority},
            "total": self.total,
            "elapsed": round(self.elapsed, 4),
            "forecast_extrapolated": self.extrapolated,
        }


@dataclass(frozen=True, slots=True)
class Charge:
    """One spend about to be asked of the store: `priority`'s `cost` on `day` (the quota
    day's ISO date) within `limit` (its ceiling), asked at `at` (the budget's clock) and
    `seen` (``time.monotonic``, taken before the store is asked)."""

    priority: Priority
    cost: int
    day: str
    limit: int
    at: datetime
    seen: float


class DailyBudget:
    """The daily budget of `per_day` requests, its counters in `store`.

    ``clock`` gives the current (aware) time. Safe to share between threads. If the
    store cannot be reached a request is allowed (logged): the budget protects the
    quota; Google's own refusals are still handled.

    ``spend_bound``, when given, is the project's token bucket that every request counted
    here has passed (the quota limiter's, shared by every process): in ``t`` seconds the
    day's total can grow by at most its capacity plus ``t`` times its rate. `has_room`
    then answers from the last total this process saw while that growth cannot reach the
    ceiling (decisions IN).
    """

    #: How old a seen total `has_room` may answer from (seconds).
    SEEN_FOR: Final = 5.0

    def __init__(
        self,
        store: BudgetStore,
        *,
        per_day: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        spend_bound: RateLimit | None = None,
    ) -> None:
        if per_day <= 0:
            raise ValueError("the daily budget must be positive")
        self.store = store
        self.per_day = per_day
        self._clock = clock
        self._bound = spend_bound
        self._seen: tuple[str, int, float] = ("", 0, 0.0)  # day, total, monotonic

    def ceiling(self, priority: Priority) -> int:
        """The day's total up to which `priority` may spend."""
        return math.floor(self.per_day * CEILINGS[priority])

    def charge(self, priority: Priority | None = None, cost: int = 1) -> Charge:
        """What `spend` asks the store (default priority: the thread's, `spending`); a
        caller that asks the store itself (`calsync.providers.quota`) then calls
        `settle` with the answer."""
        priority = priority or current_priority()
        now = self._clock()
        day = quota_day(now).isoformat()
        return Charge(priority, cost, day, self.ceiling(priority), now, _monotonic())

    def settle(self, charge: Charge, allowed: bool, total: int) -> None:
        """Take the store's answer to `charge`: whether it was spent and the day's total.

        Raises:
            BudgetDeferred: it was not.
        """
        self._seen = (charge.day, total, charge.seen)
        if not allowed:
            metrics.BUDGET_DEFERRALS.labels(charge.priority.value).inc()
            raise BudgetDeferred(charge.priority, next_quota_day(charge.at))

    def spend(self, priority: Priority | None = None, cost: int = 1) -> None:
        """Count `cost` requests of `priority` (default: the thread's, `spending`).

        Raises:
            BudgetDeferred: the day's total would pass `priority`'s ceiling.
        """
        charge = self.charge(priority, cost)
        try:
            allowed, total = self.store.spend(charge.day, charge.priority.value, cost, charge.limit)
        except BudgetUnavailable:
            log.warning("Google budget store unavailable; not counting", exc_info=True)
            return
        self.settle(charge, allowed, total)

    def room(self, priority: Priority) -> int:
        """How many more requests `priority` may spend today (0 when none), read from
        the store. An unreachable store counts as room (see the class)."""
        try:
            total = self._total(self._clock())
        except BudgetUnavailable:
            log.warning("Google budget store unavailable; assuming room", exc_info=True)
            return self.ceiling(priority)
        return max(0, self.ceiling(priority) - total)

    def has_room(self, priority: Priority) -> bool:
        """Whether `priority` may spend today: `room` > 0, answered without the store
        while this process's last seen total proves it (see the class)."""
        day, total, seen = self._seen
        if self._bound is not None and day == quota_day(self._clock()).isoformat():
            age = _monotonic() - seen
            growth = self._bound.capacity + age * self._bound.refill_per_second
            if age < self.SEEN_FOR and total + growth < self.ceiling(priority):
                return True
        return self.room(priority) > 0

    def _total(self, now: datetime) -> int:
        seen = _monotonic()
        total = sum(self._spent(now).values())
        self._seen = (quota_day(now).isoformat(), total, seen)
        return total

    def usage(self, now: datetime | None = None) -> BudgetUsage:
        """Today's spend by priority, and how much of the quota day is gone.

        Raises:
            BudgetUnavailable: the store cannot be read.
        """
        now = now or self._clock()
        start, end = day_start(now), next_quota_day(now)
        length = (end - start).total_seconds()  # 23 or 25 hours on the clock changes
        spent = self._spent(now)
        return BudgetUsage(
            day=quota_day(now),
            per_day=self.per_day,
            spent=spent,
            elapsed=(now - start).total_seconds() / length,
            seconds_left=(end - now).total_seconds(),
        )

    def _spent(self, now: datetime) -> dict[Priority, int]:
        raw = self.store.spent(quota_day(now).isoformat())
        return {p: raw[p.value] for p in Priority if p.value in raw}

    def close(self) -> None:
        """Release the store's connections."""
        self.store.close()


def daily_budget(
    redis_url: str | None,
    per_day: int,
    *,
    clock: Callable[[], datetime] | None = None,
    spend_bound: RateLimit | None = None,
) -> DailyBudget:
    """The budget of an installation: in Redis at `redis_url`, else in this process
    (`spend_bound`: see `DailyBudget`). Connects to nothing until first used."""
    options: dict[str, Any] = {"spend_bound": spend_bound}
    if clock is not None:
        options["clock"] = clock
    if redis_url is None:
        return DailyBudget(InMemoryBudgetStore(), per_day=per_day, **options)
    from redis import Redis

    client: Redis = Redis.from_url(redis_url, socket_timeout=5.0, socket_connect_timeout=5.0)
    return DailyBudget(RedisBudgetStore(client), per_day=per_day, **options)
