"""The group commit of change notifications: few writes per burst, for every calendar.

`calsync.sync.notification_checks.receive` verifies a notification and hands the change of its
calendar to `DirtyMarks.mark`, which records it with the kicks of `calsync.sync.kicks`
(the calendar marked dirty, at most one pull queued) and answers once a transaction
covering it has committed, or once a pull that has not started is known to cover it
(`calsync.sync.pending_pulls`). A failed write fails every notification it covered.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from opentelemetry import context as otel_context
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from calsync.services import Services
from calsync.store import pull_queue
from calsync.store.change_probe import ChangeProbe
from calsync.sync import kicks, pending_pulls

__all__ = ["DirtyMarks"]

log = logging.getLogger(__name__)


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

    def __init__(self, writers: int = 2, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.writers = writers
        self._clock = clock
        self._pending: dict[uuid.UUID, _Waiting] = {}
        self._probes: list[ChangeProbe] = []
        self._idle: list[ChangeProbe] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._markers: pending_pulls.PendingPulls | None = None
        #: calendar -> until when (monotonic) a lease says a pending pull covers it
        self._leases: dict[uuid.UUID, float] = {}
        #: calendars answered from their leases since the last renewal was asked for
        self._answered: set[uuid.UUID] = set()
        self._renewer: asyncio.Task[None] | None = None

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
        if self.covered(services, calendar_id):
            return False  # a pending pull covers it (`calsync.sync.pending_pulls`)
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new loop: nothing of the old one can complete
            self._loop, self._pending, self._tasks = loop, {}, set()
            self._idle = list(self._probes)
            self._answered, self._renewer = set(), None
            if pending_pulls.enabled(services):
                self._markers = self._markers or pending_pulls.PendingPulls()
        waiting = self._pending.get(calendar_id)
        if waiting is None:
            waiting = self._pending[calendar_id] = _Waiting(context)
        future: asyncio.Future[bool] = loop.create_future()
        waiting.futures.append(future)
        self._start_writer(services, loop)
        return await future

    def covered(self, services: Services, calendar_id: uuid.UUID) -> bool:
        """Whether a lease this process holds shows a pull that has not started covering
        a change of `calendar_id` now (`calsync.sync.pending_pulls`): then the change
        needs no record. When this lease is running out, asks in the background for the
        next lease of every calendar answered so since the last request (decision HQ3).
        Call on the serving loop."""
        until = self._leases.get(calendar_id)
        if until is None:
            return False
        left = until - self._clock()
        if left <= 0:
            del self._leases[calendar_id]
            return False
        self._answered.add(calendar_id)
        if left < _RENEW_AHEAD_SECONDS and self._renewer is None and self._markers is not None:
            loop = asyncio.get_running_loop()
            self._renewer = loop.create_task(self._renew(services, self._markers))
        return True

    async def _renew(self, services: Services, markers: pending_pulls.PendingPulls) -> None:
        """New leases, in one Redis request, for the calendars answered from their leases
        since the last request (none for a calendar whose pull started): a storm's
        notifications never wait for a lease's end, and the leases of all the calendars
        pushed run out together, so one request per lease period asks for all of them."""
        try:
            calendars, self._answered = self._answered, set()
            asked = self._clock()
            seen = await markers.read(services, calendars)
            for calendar_id in seen.covered:
                self._leases[calendar_id] = asked + pending_pulls.LOCAL_LEASE_SECONDS
        finally:
            self._renewer = None

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
            asked = self._clock()  # a lease counts from before it was asked for
            seen = await self._markers.read(services, batch.keys())
            if len(self._leases) >= _MAX_LEASES:
                self._leases.clear()
            for calendar_id in seen.covered:  # a pull that has not started covers it
                self._leases[calendar_id] = asked + pending_pulls.LOCAL_LEASE_SECONDS
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
