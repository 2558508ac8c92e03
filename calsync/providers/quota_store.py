"""The Google quota's token buckets and the daily budget's spend in one Redis script.

Every request to Google takes a token from its user's and the project's buckets
(`calsync.providers.quota`) and is then counted in the day's budget
(`calsync.providers.budget`). Both live in Redis in production; :data:`QUOTA_SCRIPT`
does both atomically in one call - the buckets' check, then, only if they allow it, the
budget's spend, then the tokens taken only if the budget allowed it too - so a request
costs one round trip instead of two, and a request the budget refuses keeps its tokens
(decisions IN). The rules are the two scripts' own: the same Lua, composed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from calsync.providers.budget import KEEP_DAY_SECONDS, SPEND_PART, Charge, RedisBudgetStore
from calsync.token_buckets import (
    BUCKETS_CHECK,
    BUCKETS_TAKE,
    Bucket,
    RateDecision,
    RateLimitUnavailable,
    RedisBuckets,
    decision_from_script,
    script_args,
)

__all__ = ["QUOTA_SCRIPT", "RedisQuotaBuckets"]

# KEYS: the buckets, then the budget's day hash; ARGV: the buckets' (`script_args`), then
# the priority, its ceiling and the day's ttl in seconds. Answers the buckets' answer
# followed by whether the budget was asked and allowed it (-1 not asked, 0, 1) and the
# day's total it saw.
QUOTA_SCRIPT: Final = (
    "local nb = #KEYS - 1\n"
    + BUCKETS_CHECK
    + "local b_ok, b_total = -1, 0\n"
    + "if allowed == 1 then\n"
    + "local bkey, bprio, bcost = KEYS[nb + 1], ARGV[3 * nb + 2], cost\n"
    + "local blimit, bttl = tonumber(ARGV[3 * nb + 3]), tonumber(ARGV[3 * nb + 4])\n"
    + SPEND_PART
    + "b_ok, b_total, allowed = spent_ok, spent_total, spent_ok\n"
    + "end\n"
    + BUCKETS_TAKE
    + "return {allowed, string.format('%.6f', remaining), string.format('%.6f', wait),"
    + " limited, tightest, b_ok, b_total}\n"
)


class RedisQuotaBuckets(RedisBuckets):
    """`RedisBuckets` that can also spend the daily budget in the same call."""

    def __init__(self, client: Any, *, prefix: str) -> None:
        super().__init__(client, prefix=prefix)
        self._quota_script = client.register_script(QUOTA_SCRIPT)
        self._server = _server(client)

    def same_server(self, other: Any) -> bool:
        """Whether `other` (a Redis client) talks to this one's server and database, so
        that one script may touch both's keys."""
        return _server(other) == self._server

    def take_and_spend(
        self, buckets: Sequence[Bucket], store: RedisBudgetStore, charge: Charge
    ) -> tuple[RateDecision, int | None]:
        """Take ``charge.cost`` tokens from every bucket if they all have it and the
        budget, asked then, has room for `charge`; spend it then. Returns the buckets'
        decision (not allowed when the budget refused) and the day's total the budget
        saw (``None``: the buckets refused, the budget was not asked).

        Raises:
            RateLimitUnavailable: Redis cannot be asked (nothing was spent).
        """
        from redis.exceptions import RedisError

        keys, args = script_args(buckets, charge.cost, self._prefix)
        keys.append(store.key(charge.day))
        args += [charge.priority.value, charge.limit, KEEP_DAY_SECONDS]
        try:
            result: Any = self._quota_script(keys=keys, args=args)
        except RedisError as err:
            raise RateLimitUnavailable("the quota store is unavailable") from err
        asked = int(result[5])
        if asked == 0:  # the budget refused: no wait the buckets would impose
            return RateDecision(False, int(float(result[1])), 0.0), int(result[6])
        return decision_from_script(result[:5]), None if asked < 0 else int(result[6])


def _server(client: Any) -> tuple[Any, ...]:
    kwargs = client.connection_pool.connection_kwargs
    return (kwargs.get("host"), kwargs.get("port"), kwargs.get("path"), kwargs.get("db", 0))
