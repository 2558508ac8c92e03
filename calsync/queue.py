"""The Dramatiq broker for each mode, and the queue names.

Embedded mode runs Dramatiq's ``StubBroker`` with worker threads in the same process;
production uses Dramatiq's ``RedisBroker`` (its consumers' first poll after a message
paced, `PacedRedisBroker`). Neither connects anywhere when built. Both carry
:class:`calsync.job_observer.JobObserver` (trace context, job metrics, log context) and
a switched-off :class:`calsync.collector_pause.CollectorPause` (the worker process switches
it on).
"""

from __future__ import annotations

import threading
from enum import StrEnum
from typing import Any, ClassVar, Final

from dramatiq import Broker
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import TimeLimit

from calsync import collector_pause, job_observer
from calsync.config import Settings

NAMESPACE = "calsync"


class Queue(StrEnum):
    """Queues by urgency, so that interactive writes never wait behind bulk syncs."""

    WRITES = "writes"
    SYNC = "sync"
    MAINTENANCE = "maintenance"


def make_broker(settings: Settings) -> Broker:
    """A fresh broker for ``settings``: Redis when ``redis_url`` is set, else in-process."""
    if settings.redis_url:
        redis_broker = PacedRedisBroker(url=settings.redis_url, namespace=NAMESPACE)  # type: ignore[no-untyped-call]
        job_observer.install(redis_broker)
        collector_pause.install(redis_broker)
        return redis_broker
    broker = StubBroker()
    job_observer.install(broker)
    collector_pause.install(broker)
    _share_time_limit_watcher(broker)
    broker.emit_after("process_boot")
    return broker


#: An idle consumer's backoff starts at this many misses after a message: its first empty
#: poll sleeps ``5 * 2**3`` = 40-80 ms (Dramatiq's: 5-10 ms, then 10-20, 20-40, ...).
FIRST_POLL_MISSES: Final = 3


class _PacedConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer whose polls of an empty queue start `FIRST_POLL_MISSES`
    steps into its exponential backoff rather than at its first step.

    Dramatiq resets the backoff with every message, so after each one its consumer polled
    an empty queue at 5-10, 10-20, 20-40 ... ms until the next message: at issue 21's pace
    (a create every ~60 ms a worker) four fetches a message, three of them empty, each a
    Lua script and ~0.2-0.5 ms of the worker's CPU (decisions IW). Starting at 40-80 ms
    leaves about one. The cost: a message waits for its fetch at most ~40-80 ms longer
    (most in the first ~100 ms after the previous one; a queue idle for a second waits up
    to the worker timeout, 1 s, either way). Nothing else changes: fetches, acks,
    prefetch, the heartbeats (every poll, well within their 60 s timeout) and the
    recovery of unacked messages are Dramatiq's."""

    def __next__(self) -> Any:
        # Only before a fetch (fewer messages in hand than the prefetch): when the worker
        # holds its prefetch, Dramatiq waits without fetching, and that wait keeps its
        # short first steps, so that a busy worker refills as soon as a thread is free.
        if (
            not self.message_cache
            and self.misses < FIRST_POLL_MISSES
            and self.outstanding_message_count < self.prefetch
        ):
            self.misses = FIRST_POLL_MISSES
        return super().__next__()  # type: ignore[no-untyped-call]


class PacedRedisBroker(RedisBroker):
    """Dramatiq's `RedisBroker` with `_PacedConsumer` as its consumer."""

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _PacedConsumer


class _SharedTimeLimit(TimeLimit):
    """Dramatiq's `TimeLimit` whose watcher thread is one per process, not one per broker.

    `TimeLimit` starts a watcher thread at ``process_boot`` that never ends. An in-process
    broker is made for every embedded `Services` (a ``calsync dev`` restart in-process, and
    hundreds in the test suite), so each left a thread waking every second; a few hundred
    of them contending for the GIL took most of the machine's CPU. The watcher keys its
    deadlines by thread id, so every broker of the process can share the first one.
    """

    _watcher: ClassVar[TimeLimit | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def after_process_boot(self, broker: Broker) -> None:
        with _SharedTimeLimit._lock:
            first = _SharedTimeLimit._watcher
            if first is None:
                _SharedTimeLimit._watcher = self
                super().after_process_boot(broker)  # type: ignore[no-untyped-call]
            else:
                self.manager = first.manager


def _share_time_limit_watcher(broker: Broker) -> None:
    """Swap the broker's `TimeLimit` for `_SharedTimeLimit`, keeping its limit."""
    for index, middleware in enumerate(broker.middleware):
        if type(middleware) is TimeLimit:
            broker.middleware[index] = _SharedTimeLimit(time_limit=middleware.time_limit)
