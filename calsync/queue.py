"""The Dramatiq broker for each mode, and the queue names.

Embedded mode runs Dramatiq's ``StubBroker`` with worker threads in the same process;
production uses Dramatiq's ``RedisBroker``. Neither connects anywhere when built. Both
carry :class:`calsync.job_observer.JobObserver` (trace context, job metrics, log context).
"""

from __future__ import annotations

from enum import StrEnum

from dramatiq import Broker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from calsync import job_observer
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
        return redis_broker
    broker = StubBroker()
    job_observer.install(broker)
    broker.emit_after("process_boot")
    return broker
