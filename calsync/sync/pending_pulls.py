"""Markers in Redis saying "this calendar's queued pull has not listed Google yet": the
intake's storm path without a PostgreSQL round trip (decisions I1-I2).

A change notification needs no write when its calendar is already dirty with a pull
queued: that pull clears ``dirty`` when it starts and then lists Google, after the
notification arrived, so it sees the change (decision W3). Asking PostgreSQL that
question costs every batch of notifications a round trip. These markers let the intake
ask Redis instead, which already carries the queue:

- the *epoch* of a calendar (``calsync:pull-epoch:<id>``) is a random value that every
  pull replaces *after* it has cleared ``dirty`` and *before* it lists Google
  (`pull_starting`, called by `calsync.sync.pull.pull_calendar`); a pull whose epoch
  cannot be written fails before listing, and is retried;
- the *marker* (``calsync:pull-pending:<id>``) is the epoch the intake read before
  PostgreSQL showed it the calendar dirty with a pull queued; it is set only if the
  epoch is still that value (one Lua script), and lives `MARKER_SECONDS`;
- a *lease* (``calsync:pull-lease:<id>``) is granted with each read that finds the
  marker current; the intake then answers that calendar from memory for
  `LOCAL_LEASE_SECONDS`, and `pull_starting` waits until the last lease has run out in
  Redis (`LEASE_MILLISECONDS`, longer) before the pull lists.

A marker equal to the current epoch at time t proves that the pull Google's change
needs lists after t: either ``dirty`` is still set as PostgreSQL showed it (no pull has
cleared it since, or that pull would have replaced the epoch before listing, after the
intake read it), or a pull cleared it and has not yet replaced the epoch, so it lists
later still. A lease extends the same proof by its lifetime, which the pull waits out.
Anything else (no marker, an old epoch, Redis unreachable) sends the notification down
the PostgreSQL path, which stays the authority. Epochs outlive markers
(`EPOCH_SECONDS` > `MARKER_SECONDS`), so an epoch that expired and came back as "none"
cannot match an old marker. Only for production (PostgreSQL and Redis); embedded mode
has neither and keeps the transactional path.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final, cast

import redis
import redis.asyncio as aioredis

from calsync.services import Services

__all__ = [
    "EPOCH_SECONDS",
    "MARKER_SECONDS",
    "PendingPulls",
    "Seen",
    "epoch_key",
    "marker_key",
    "pull_starting",
]

log = logging.getLogger(__name__)

#: How long a marker lives: a bound on how long a Redis that lost the epoch's update (a
#: failover to a replica that had not received it) could make the intake skip a write.
MARKER_SECONDS: Final = 60
#: How long an epoch lives after its pull started; longer than any marker.
EPOCH_SECONDS: Final = 2 * 86_400

#: How long a lease lives in Redis, and how long the intake relies on one, counted from
#: before it asked: the margin covers the time the request took and clock rates.
LEASE_MILLISECONDS: Final = 200
LOCAL_LEASE_SECONDS: Final = 0.15

# KEYS: (epoch, marker, lease) per calendar; ARGV[1] the lease's lifetime (ms). Per
# calendar, whether its marker is current (then the lease is granted) and its epoch.
_READ_AND_LEASE: Final = """
local out = {}
for i = 1, #KEYS, 3 do
  local epoch = redis.call('GET', KEYS[i]) or ''
  local marker = redis.call('GET', KEYS[i + 1])
  if marker and marker == epoch then
    redis.call('SET', KEYS[i + 2], '1', 'PX', ARGV[1])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
  out[#out + 1] = epoch
end
return out
"""

# KEYS[1] epoch, KEYS[2] marker; ARGV[1] the epoch read before PostgreSQL answered ('' =
# none), ARGV[2] the marker's lifetime. Sets the marker only if the epoch is unchanged.
_MARK_IF_CURRENT: Final = """
local epoch = redis.call('GET', KEYS[1]) or ''
if epoch ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return 1
"""

# KEYS[1] epoch, KEYS[2] lease; ARGV[1] the new epoch, ARGV[2] its lifetime (s). Returns
# the milliseconds the last lease granted has left (0: none).
_NEW_EPOCH: Final = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local left = redis.call('PTTL', KEYS[2])
if left < 0 then return 0 end
return left
"""


def epoch_key(calendar_id: uuid.UUID) -> str:
    return f"calsync:pull-epoch:{calendar_id}"


def marker_key(calendar_id: uuid.UUID) -> str:
    return f"calsync:pull-pending:{calendar_id}"


def lease_key(calendar_id: uuid.UUID) -> str:
    return f"calsync:pull-lease:{calendar_id}"


def enabled(services: Services) -> bool:
    """Whether markers are used: production mode (Redis and PostgreSQL)."""
    return bool(services.settings.redis_url) and services.engine.dialect.name == "postgresql"


@functools.cache
def _client(url: str) -> redis.Redis:
    """One synchronous client (thread-safe connection pool) per Redis URL."""
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def pull_starting(services: Services, calendar_id: uuid.UUID) -> None:
    """Replace the calendar's epoch: call after a pull has cleared ``dirty`` (took its
    lease, or dropped the calendar) and before it lists Google, so that no marker set
    earlier covers a notification any more.

    Then waits until the leases granted on the old epoch have run out (at most
    `LEASE_MILLISECONDS`, and only while notifications are arriving): until then an
    intake may still answer from its lease without asking Redis.

    Raises when Redis cannot be written: the pull must not list then (a marker left
    valid could cover a notification that arrives after its listing); it fails and is
    retried. Does nothing in embedded mode.
    """
    if not enabled(services):
        return
    assert services.settings.redis_url is not None
    keys = (epoch_key(calendar_id), lease_key(calendar_id))
    epoch = os.urandom(8).hex()
    client = _client(services.settings.redis_url)
    left = int(client.eval(_NEW_EPOCH, 2, *keys, epoch, EPOCH_SECONDS))
    if left > 0:  # an intake may rely on its lease until then
        time.sleep(left / 1000)


@dataclass(frozen=True, slots=True)
class Seen:
    """What `PendingPulls.read` found: the calendars covered by a pending pull, and the
    epoch of each other one (for `PendingPulls.note`)."""

    covered: frozenset[uuid.UUID]
    epochs: Mapping[uuid.UUID, str]


class PendingPulls:
    """The intake's side of the markers, on the event loop (one per process and loop).

    Every failure (Redis unreachable, a timeout) answers "nothing covered" and is only
    logged: the caller then asks PostgreSQL, as without markers.
    """

    TIMEOUT_SECONDS: Final = 2.0

    def __init__(self) -> None:
        self._client: aioredis.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _connected(self, url: str) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # a client's connections belong to the loop that opened them
            self._client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
            self._loop = loop
        return self._client

    async def read(self, services: Services, calendar_ids: Collection[uuid.UUID]) -> Seen:
        """Which of `calendar_ids` a pending pull covers (one round trip), and the
        epochs of the others. Each covered one is leased: the caller may answer its
        changes from memory for `LOCAL_LEASE_SECONDS` counted from before it asked."""
        ids = list(calendar_ids)
        url = services.settings.redis_url
        if not ids or not url:
            return Seen(frozenset(), {})
        keys = [
            key
            for calendar_id in ids
            for key in (epoch_key(calendar_id), marker_key(calendar_id), lease_key(calendar_id))
        ]
        try:
            async with asyncio.timeout(self.TIMEOUT_SECONDS):
                client = self._connected(url)
                answer = await client.eval(_READ_AND_LEASE, len(keys), *keys, LEASE_MILLISECONDS)
        except (redis.RedisError, OSError, TimeoutError) as exc:
            log.info("pull markers unavailable, asking PostgreSQL: %r", exc)
            await self.aclose()
            return Seen(frozenset(), {})
        values = cast(list[int | bytes], answer)
        covered: set[uuid.UUID] = set()
        epochs: dict[uuid.UUID, str] = {}
        for n, calendar_id in enumerate(ids):
            if values[2 * n] == 1:
                covered.add(calendar_id)
            else:
                epoch = values[2 * n + 1]
                epochs[calendar_id] = epoch.decode() if isinstance(epoch, bytes) else str(epoch)
        return Seen(frozenset(covered), epochs)

    async def note(self, services: Services, epochs: Mapping[uuid.UUID, str]) -> None:
        """Set the markers of calendars PostgreSQL showed dirty with a pull queued, each
        only if its epoch is still the one `read` saw before PostgreSQL answered."""
        url = services.settings.redis_url
        if not epochs or not url:
            return
        try:
            async with asyncio.timeout(self.TIMEOUT_SECONDS):
                pipe = self._connected(url).pipeline(transaction=False)
                for calendar_id, epoch in epochs.items():
                    keys = (epoch_key(calendar_id), marker_key(calendar_id))
                    pipe.eval(_MARK_IF_CURRENT, 2, *keys, epoch, MARKER_SECONDS)
                await pipe.execute()
        except (redis.RedisError, OSError, TimeoutError) as exc:
            log.info("could not set pull markers: %r", exc)
            await self.aclose()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(redis.RedisError, OSError, RuntimeError):
                await client.aclose()

    def close(self) -> None:
        """Forget the client (any thread); its connections close with their loop."""
        self._client = None
