"""The Dramatiq broker for each mode, and the queue names.

Embedded mode runs Dramatiq's ``StubBroker`` with worker threads in the same process;
production uses Dramatiq's ``RedisBroker``. Neither connects anywhere when built. Both
carry :class:`calsync.job_observer.JobObserver` (trace context, job metrics, log context)
and a switched-off :class:`calsync.collector_pause.CollectorPause` (the worker process
switches it on).
"""

from __future__ import annotations

import threading
from enum import StrEnum
from typing import ClassVar

from dramatiq import Broker
from dramatiq.brokers.redis import RedisBroker
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
        redis_broker = RedisBroker(url=settings.redis_url, namespace=NAMESPACE)  # type: ignore[no-untyped-call]
        job_observer.install(redis_broker)
        collector_pause.install(redis_broker)
        return redis_broker
    broker = StubBroker()
    job_observer.install(broker)
    collector_pause.install(broker)
    _share_time_limit_watcher(broker)
    broker.emit_after("process_boot")
    return broker


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
