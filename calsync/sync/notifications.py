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
- `DirtyMarks` is a group commit: the change notifications that arrive while one write
  is in flight are recorded together by the next write (one transaction for all their
  calendars), and each notification is answered only once a write covering it has
  committed, or once it is known to be covered by a pull that has not started
  (`calsync.sync.pending_pulls`: in a storm, a lease answers without any round trip).
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from opentelemetry import context as otel_context
from prometheus_client import Counter
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from calsync import metrics
from calsync.store import list_queue, pull_queue, watch_channels
from calsync.store.change_probe import ChangeProbe
from calsync.sync import kicks, pending_pulls
from calsync.sync.channels import channel_token

if TYPE_CHECKING:
    from calsync.bootstrap import Services

__all__ = [
    "ChannelCache",
    "ChannelInfo",
    "DirtyMarks",
    "Intake",
    "Notification",
    "receive",
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


@dataclass(slots=True)
class _Waiting:
    """The notifications of one calendar waiting for the next write."""

    context: otel_context.Context | None
    futures: list[asyncio.Future[bool]] = field(default_factory=list)


#: Leases kept at most (one per calendar that a storm is hitting)
_MAX_LEASES: Final = 100_000
#: A lease with less than this left is renewed in the background (of its 0.15 s)
_RENEW_AHEAD_SECONDS: Final = 0.075


class DirtyMarks:
    """Group commit of change notifications: few writes per burst, for every calendar.

    `mark` returns once a transaction that recorded the change has committed: True for
    the one notification whose write claimed the calendar's queue slot and enqueued the
    pull, False for the others (coalesced). Up to `writers` batches are in flight at
    once; the marks that arrive while all are busy wait and go together into the next
    batch, so the number of writes follows the database's speed, not the notification
    rate, and no timer adds latency when idle. A second writer lets a mark start its
    batch while the previous one is still on the wire, which halves the wait under load.
    If a batch fails (after one retry), every mark it covered raises the error.

    Each batch first asks (`ChangeProbe`, one statement on the loop, one connection per
    writer) which of its calendars still need a write; when none do, as in a storm, the
    batch is answered without a transaction. Otherwise `_record` runs in the loop's
    thread pool; concurrent batches are safe because `kicks.note_changes` claims a slot
    under the row lock, so exactly one of them claims it.

    One per process, used from its event loop with one `Services`. `aclose` (at the
    server's shutdown) or `close` releases its database connections.
    """

    def __init__(self, writers: int = 2) -> None:
        self.writers = writers
        self._pending: dict[uuid.UUID, _Waiting] = {}
        self._probes: list[ChangeProbe] = []
        self._idle: list[ChangeProbe] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._markers: pending_pulls.PendingPulls | None = None
        #: calendar -> until when (monotonic) a lease says a pending pull covers it
        self._leases: dict[uuid.UUID, float] = {}
        self._renewals: dict[uuid.UUID, asyncio.Task[None]] = {}

    def close(self) -> None:
        """Release the database and Redis connections (any thread)."""
        for probe in self._probes:
            probe.close()
        if self._markers is not None:
            self._markers.close()

    async def aclose(self) -> None:
        """Release the database and Redis connections (on the serving loop)."""
        for probe in self._probes:
            await probe.aclose()
        if self._markers is not None:
            await self._markers.aclose()

    async def mark(
        self,
        services: Services,
        calendar_id: uuid.UUID,
        context: otel_context.Context | None = None,
    ) -> bool:
        """Record a change of `calendar_id`; True when this call enqueued its pull.

        `context` (a tracing context) is the one the pull is enqueued in, if this
        notification is the first of its calendar in the batch.
        """
        until = self._leases.get(calendar_id)
        if until is not None:
            left = until - time.monotonic()
            if left > 0:
                if left < _RENEW_AHEAD_SECONDS and calendar_id not in self._renewals:
                    self._renew(services, calendar_id)
                return False  # a pending pull covers it (`calsync.sync.pending_pulls`)
            del self._leases[calendar_id]
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new loop: nothing of the old one can complete
            self._loop, self._pending, self._tasks = loop, {}, set()
            self._idle = list(self._probes)
            self._renewals = {}
            if pending_pulls.enabled(services):
                self._markers = self._markers or pending_pulls.PendingPulls()
        waiting = self._pending.get(calendar_id)
        if waiting is None:
            waiting = self._pending[calendar_id] = _Waiting(context)
        future: asyncio.Future[bool] = loop.create_future()
        waiting.futures.append(future)
        self._start_writer(services, loop)
        return await future

    def _renew(self, services: Services, calendar_id: uuid.UUID) -> None:
        """Ask for a new lease in the background while the current one still answers, so
        that a storm's notifications never wait for its end (none if the pull started)."""
        if self._markers is None:
            return
        markers = self._markers

        async def renew() -> None:
            try:
                seen = await markers.read(services, [calendar_id])
                if calendar_id in seen.covered:
                    self._leases[calendar_id] = seen.lease_until
            finally:
                self._renewals.pop(calendar_id, None)

        self._renewals[calendar_id] = asyncio.get_running_loop().create_task(renew())

    def _start_writer(self, services: Services, loop: asyncio.AbstractEventLoop) -> None:
        if not self._pending or len(self._tasks) >= self.writers:
            return
        if not self._idle:
            self._probes.append(ChangeProbe())
            self._idle.append(self._probes[-1])
        task = loop.create_task(self._write(services, loop, self._idle.pop()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(
        self, services: Services, loop: asyncio.AbstractEventLoop, probe: ChangeProbe
    ) -> None:
        batch, self._pending = self._pending, {}
        try:
            if batch:
                await self._write_batch(services, loop, probe, batch)
        finally:
            self._idle.append(probe)
            self._tasks.discard(asyncio.current_task())
            self._start_writer(services, loop)  # the marks that arrived meanwhile

    async def _write_batch(
        self,
        services: Services,
        loop: asyncio.AbstractEventLoop,
        probe: ChangeProbe,
        batch: dict[uuid.UUID, _Waiting],
    ) -> None:
        seen = pending_pulls.Seen(frozenset(), {})
        if self._markers is not None:
            seen = await self._markers.read(services, batch.keys())
            if len(self._leases) >= _MAX_LEASES:
                self._leases.clear()
            for calendar_id in seen.covered:  # a pull that has not started covers it
                self._leases[calendar_id] = seen.lease_until
                for future in batch.pop(calendar_id).futures:
                    if not future.done():
                        future.set_result(False)
            if not batch:
                return
        contexts = {calendar_id: w.context for calendar_id, w in batch.items()}
        try:
            behind = await probe.behind(services.engine, contexts.keys())
            if behind == []:
                claimed: set[uuid.UUID] = set()  # all already dirty, pulls queued
            else:
                claimed = await loop.run_in_executor(None, _record, services, contexts)
        except Exception as exc:  # every failure is reported to the waiters
            log.warning("could not record %d calendar change(s): %r", len(batch), exc)
            for waiting in batch.values():
                for future in waiting.futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        for calendar_id, waiting in batch.items():
            first = calendar_id in claimed
            for future in waiting.futures:
                if not future.done():
                    future.set_result(first)
                first = False
        if self._markers is not None and behind is not None:
            # PostgreSQL showed these dirty with a pull queued after `seen` was read
            queued = {c: seen.epochs[c] for c in batch if c not in behind and c in seen.epochs}
            await self._markers.note(services, queued)


def _record(
    services: Services, contexts: Mapping[uuid.UUID, otel_context.Context | None]
) -> set[uuid.UUID]:
    """One transaction marking `contexts`' calendars dirty; enqueue the pulls it claimed.

    Returns the calendars whose pull was claimed. Retries once on a database error (a
    deadlock with another multi-row writer, a connection the server closed).
    """
    now = services.clock()
    min_interval = services.settings.sync_min_interval_seconds
    try:
        with services.sessions.begin() as session:
            claims = kicks.note_changes(session, contexts.keys(), now, min_interval=min_interval)
    except DBAPIError as first:
        log.info("retrying a change write once after %r", first)
        with services.sessions.begin() as session:
            claims = kicks.note_changes(session, contexts.keys(), now, min_interval=min_interval)
    for calendar_id, claim in claims.items():
        _enqueue_pull(services, calendar_id, claim, now, contexts[calendar_id])
    return set(claims)


def _enqueue_pull(
    services: Services,
    calendar_id: uuid.UUID,
    claim: kicks.Claim,
    claimed_at: datetime,
    context: otel_context.Context | None,
) -> None:
    """Enqueue the claimed pull, in the tracing context of a notification that caused it.

    The change is already committed, so a queue failure does not lose it: the slot is
    given back and the scheduler's sweep enqueues the pull of the dirty calendar.
    """
    token = otel_context.attach(context) if context is not None else None
    try:
        services.jobs.sync_calendar.send_with_options(
            args=(str(calendar_id),), delay=int(claim.delay * 1000) or None
        )
    except Exception as exc:  # any broker failure: the sweep takes over
        log.warning("could not enqueue the pull of calendar %s: %r", calendar_id, exc)
        try:
            with services.sessions.begin() as session:
                pull_queue.release(session, calendar_id, claimed_at)
        except SQLAlchemyError as again:
            log.warning("could not give back the slot of calendar %s: %r", calendar_id, again)
    finally:
        if token is not None:
            otel_context.detach(token)


_OUTCOME_COUNTERS: dict[Intake, Counter] = {}


def _kick_calendar_list(services: Services, user_id: uuid.UUID) -> bool:
    """Record a calendar-list change and enqueue a read of the list unless one is queued
    or running (`list_queue.note_calendar_list_change`). Returns whether it enqueued."""
    with services.sessions.begin() as session:
        claimed = list_queue.note_calendar_list_change(session, user_id, services.clock())
    if claimed:
        services.jobs.sync_calendar_list.send(str(user_id))
    return claimed


def _count(outcome: Intake) -> None:
    counter = _OUTCOME_COUNTERS.get(outcome)
    if counter is None:
        counter = _OUTCOME_COUNTERS[outcome] = metrics.PUSH_NOTIFICATIONS.labels(
            outcome=outcome.value
        )
    counter.inc()
    if outcome is Intake.COALESCED:
        metrics.NOTIFICATIONS_COALESCED.inc()


async def receive(
    services: Services,
    note: Notification,
    cache: ChannelCache,
    marks: DirtyMarks,
    context: otel_context.Context | None = None,
) -> Intake:
    """Verify and record one notification; enqueue a pull when the calendar needs one.

    `cache` and `marks` are the process's own. `context` is the tracing context the
    pull is enqueued in (None: the current one, untouched). Raises when the database
    or the queue cannot record the notification; the caller answers 5xx.
    """
    outcome = await _receive(services, note, cache, marks, context)
    _count(outcome)
    return outcome


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
