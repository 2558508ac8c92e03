"""Intake of Google push notifications: verify, then mark dirty and kick at most one pull.

A notification carries no data (design.md section 1: push is a hint). `receive` checks
it against the stored channel (id known, token an HMAC of the id under calsync's keys,
compared in constant time, resource id the one Google gave when the channel opened),
acknowledges ``sync`` messages, and for ``exists``/``not_exists`` records the change with
`DirtyMarks`, which also enqueues a pull when the calendar had none queued or running
(`calsync.sync.kicks`). It never calls Google. Duplicate and out-of-order messages only
set ``dirty`` again, which is harmless.

Everything here runs on the server's event loop; database and queue calls go to the
loop's default thread pool, so the loop never blocks on them:

- `ChannelCache` keeps channel rows per process for `TTL_SECONDS` (a stopped channel
  may be accepted for those seconds, as during a renewal; one past its expiration is
  not), with the tokens it expects already computed; a token that is not an HMAC of its
  channel id is refused before any lookup, so forged notifications cost no database
  work at all.
- `DirtyMarks` (`calsync.sync.dirty_marks`) is a group commit: the change
  notifications that arrive while one write is in flight are recorded together by the
  next write (one transaction for all their calendars), and each notification is
  answered only once a write covering it has committed, or once it is known to be
  covered by a pull that has not started (`calsync.sync.pending_pulls`: in a storm, a
  lease answers without any round trip).
  So a 2xx always means "recorded"; a failed write fails every notification it covered,
  which the web layer answers with 503 so that Google retries.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from opentelemetry import context as otel_context
from prometheus_client import Counter

from calsync import metrics
from calsync.metric_tally import Tally
from calsync.services import Services
from calsync.store import list_queue, watch_channels
from calsync.sync.channels import channel_token
from calsync.sync.dirty_marks import DirtyMarks

__all__ = [
    "ChannelCache",
    "ChannelInfo",
    "DirtyMarks",
    "Intake",
    "Notification",
    "receive",
    "settled",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Notification:
    """The headers of one push message (``X-Goog-*``)."""

    channel_id: str
    token: str
    resource_id: str
    state: str
    message_number: int | None = None


class Intake(StrEnum):
    """What calsync did with a notification."""

    QUEUED = "queued"  # a pull was enqueued
    COALESCED = "coalesced"  # marked dirty; a queued or running pull will see it
    ACKNOWLEDGED = "acknowledged"  # the `sync` handshake of a new channel
    STALE = "stale"  # a stopped channel still pushes: stop it again
    UNKNOWN = "unknown"  # no such channel
    FORGED = "forged"  # token or resource id does not match


def expected_tokens(keys: Sequence[str], channel_id: str) -> tuple[bytes, ...]:
    """The tokens `channel_id` may carry: its HMAC under each configured key."""
    return tuple(channel_token([key], channel_id).encode() for key in keys)


def token_accepted(expected: Sequence[bytes], token: str) -> bool:
    """Whether `token` is one of `expected`, comparing all of them in constant time.

    Compared as bytes, so a header with non-ASCII characters is a mismatch, not an error.
    """
    given = token.encode("utf-8", "replace")
    matched = False
    for candidate in expected:
        matched |= hmac.compare_digest(candidate, given)
    return matched


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """What intake needs of a channel row, with the tokens it accepts."""

    user_id: uuid.UUID
    calendar_id: uuid.UUID | None
    kind: str
    resource_id: str | None
    active: bool
    tokens: tuple[bytes, ...]
    #: when Google stops the channel (None: not known); no notification counts after it
    expires_at: datetime | None = None

    def accepts(self, note: Notification) -> bool:
        """Token and resource id match (the token compared in constant time)."""
        token_ok = token_accepted(self.tokens, note.token)
        return token_ok and (self.resource_id is None or self.resource_id == note.resource_id)


class _Missing:
    """`ChannelCache.cached` found nothing fresh: ask `ChannelCache.load`."""


MISSING: Final = _Missing()


#: How long a process trusts the channel row it read: a channel stopped (or deleted)
#: elsewhere is refused by every intake process at most this long after (decision I5).
TTL_SECONDS: Final = 5.0


class ChannelCache:
    """Channel rows by channel id for one process, kept `ttl` seconds.

    Used from the event loop only (no locks). A miss loads the row in the loop's thread
    pool; concurrent misses for one id share that load. An id without a row is
    remembered for `unknown_ttl` seconds only, and not at all when the lookup came from
    a ``sync`` message: that handshake can arrive before the new channel's row is
    committed, and the channel's next message must find it.
    """

    def __init__(
        self,
        ttl: float = TTL_SECONDS,
        *,
        unknown_ttl: float = 1.0,
        stop_interval: float = 30.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.unknown_ttl = unknown_ttl
        self.stop_interval = stop_interval
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, ChannelInfo | None]] = {}
        self._loads: dict[str, asyncio.Future[ChannelInfo | None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stops: dict[str, float] = {}

    def cached(self, channel_id: str) -> ChannelInfo | _Missing | None:
        """The fresh entry for `channel_id` (None: known not to exist), or `MISSING`."""
        entry = self._entries.get(channel_id)
        if entry is None or entry[0] <= self._clock():
            return MISSING
        return entry[1]

    async def load(
        self, services: Services, channel_id: str, *, remember_unknown: bool = True
    ) -> ChannelInfo | None:
        """Read the channel's row (one read for concurrent callers) and remember it.

        Raises what the database raises (the caller answers 5xx).
        """
        try:
            key = uuid.UUID(channel_id)
        except ValueError:
            return None
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # loads in flight belong to the loop that started them
            self._loop, self._loads = loop, {}
        pending = self._loads.get(channel_id)
        if pending is None:
            keys = services.settings.encryption_keys
            pending = loop.run_in_executor(None, _load_channel, services, key, keys)
            self._loads[channel_id] = pending
            pending.add_done_callback(functools.partial(self._loaded, channel_id, remember_unknown))
        return await asyncio.shield(pending)

    def _loaded(
        self, channel_id: str, remember_unknown: bool, done: asyncio.Future[ChannelInfo | None]
    ) -> None:
        if self._loads.get(channel_id) is done:
            del self._loads[channel_id]
        if done.cancelled() or done.exception() is not None:
            return
        info = done.result()
        if info is None and not remember_unknown:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        ttl = self.ttl if info is not None else self.unknown_ttl
        self._entries[channel_id] = (self._clock() + ttl, info)

    def first_stop(self, channel_id: str) -> bool:
        """True once per `stop_interval` for a stopped channel: send one stop job, not one
        per push."""
        now = self._clock()
        if self._stops.get(channel_id, 0.0) > now:
            return False
        if len(self._stops) >= self.max_entries:
            self._stops.clear()
        self._stops[channel_id] = now + self.stop_interval
        return True


def _load_channel(
    services: Services, channel_id: uuid.UUID, keys: Sequence[str]
) -> ChannelInfo | None:
    with services.sessions() as session:
        row = watch_channels.channel(session, channel_id)
        if row is None:
            return None
        return ChannelInfo(
            user_id=row.user_id,
            calendar_id=row.calendar_id,
            kind=row.kind,
            resource_id=row.resource_id,
            active=row.status == "active",
            tokens=expected_tokens(keys, str(channel_id)),
            expires_at=row.expires_at,
        )


_OUTCOME_COUNTERS: dict[Intake, Counter] = {}


def _kick_calendar_list(services: Services, user_id: uuid.UUID) -> bool:
    """Record a calendar-list change and enqueue a read of the list unless one is queued
    or running (`list_queue.note_calendar_list_change`). Returns whether it enqueued."""
    with services.sessions.begin() as session:
        claimed = list_queue.note_calendar_list_change(session, user_id, services.clock())
    if claimed:
        services.jobs.sync_calendar_list.send(str(user_id))
    return claimed


def _count(outcome: Intake, tally: Tally | None) -> None:
    counter = _OUTCOME_COUNTERS.get(outcome)
    if counter is None:
        counter = _OUTCOME_COUNTERS[outcome] = metrics.PUSH_NOTIFICATIONS.labels(
            outcome=outcome.value
        )
    if tally is None:
        counter.inc()
        if outcome is Intake.COALESCED:
            metrics.NOTIFICATIONS_COALESCED.inc()
        return
    tally.inc(counter)
    if outcome is Intake.COALESCED:
        tally.inc(metrics.NOTIFICATIONS_COALESCED)


async def receive(
    services: Services,
    note: Notification,
    cache: ChannelCache,
    marks: DirtyMarks,
    context: otel_context.Context | None = None,
    *,
    tally: Tally | None = None,
) -> Intake:
    """Verify and record one notification; enqueue a pull when the calendar needs one.

    `cache` and `marks` are the process's own. `context` is the tracing context the
    pull is enqueued in (None: the current one, untouched). Its outcome is counted in
    `tally` (None: in the metrics at once). Raises when the database or the queue
    cannot record the notification; the caller answers 5xx.
    """
    outcome = await _receive(services, note, cache, marks, context)
    _count(outcome, tally)
    return outcome


def settled(
    services: Services,
    note: Notification,
    cache: ChannelCache,
    marks: DirtyMarks,
    tally: Tally | None = None,
) -> Intake | None:
    """`receive`'s outcome for a storm's notification, without awaiting anything: a
    change of a calendar whose channel is cached, active and accepts it, and whose pending
    pull a lease shows covering it (`DirtyMarks.covered`): COALESCED, counted. None for
    every other notification (a refusal, the handshake, a channel to read, a change to
    record): await `receive`, which checks it again in full (decision HQ1).
    """
    channel = cache.cached(note.channel_id)
    if (
        not isinstance(channel, ChannelInfo)
        or not channel.active
        or channel.kind == "calendar_list"
        or channel.calendar_id is None
        or note.state == "sync"
        or not channel.accepts(note)
        or (channel.expires_at is not None and services.clock() >= channel.expires_at)
        or not marks.covered(services, channel.calendar_id)
    ):
        return None
    _count(Intake.COALESCED, tally)
    return Intake.COALESCED


async def _receive(
    services: Services,
    note: Notification,
    cache: ChannelCache,
    marks: DirtyMarks,
    context: otel_context.Context | None,
) -> Intake:
    channel = cache.cached(note.channel_id)
    if isinstance(channel, _Missing):
        expected = expected_tokens(services.settings.encryption_keys, note.channel_id)
        if not token_accepted(expected, note.token):
            return Intake.FORGED  # not a token calsync gave out: no lookup at all
        channel = await cache.load(services, note.channel_id, remember_unknown=note.state != "sync")
    if channel is None:
        return Intake.UNKNOWN
    if not channel.accepts(note):
        return Intake.FORGED
    if channel.expires_at is not None and services.clock() >= channel.expires_at:
        return Intake.STALE  # Google has ended it: nothing to stop, nothing to record
    loop = asyncio.get_running_loop()
    if not channel.active:
        if cache.first_stop(note.channel_id):
            try:
                await loop.run_in_executor(None, services.jobs.stop_channel.send, note.channel_id)
            except Exception as exc:  # stopping is best effort; it pushes again
                log.warning("could not enqueue the stop of channel %s: %r", note.channel_id, exc)
        return Intake.STALE
    if note.state == "sync":
        return Intake.ACKNOWLEDGED
    if channel.kind == "calendar_list":
        queued = await loop.run_in_executor(None, _kick_calendar_list, services, channel.user_id)
        return Intake.QUEUED if queued else Intake.COALESCED
    if channel.calendar_id is None:
        return Intake.UNKNOWN
    queued = await marks.mark(services, channel.calendar_id, context)
    return Intake.QUEUED if queued else Intake.COALESCED
