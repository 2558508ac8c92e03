"""Running calsync's parts inside one process: worker threads, the scheduler loop, and the
whole embedded stack of ``calsync dev``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq

from calsync.bootstrap import Services
from calsync.scheduler import build_scheduler

log = logging.getLogger(__name__)


@contextmanager
def worker_threads(services: Services, *, threads: int | None = None) -> Iterator[dramatiq.Worker]:
    """Consume ``services.broker`` with Dramatiq worker threads until the block ends.

    On exit the worker stops taking messages and finishes those in hand.
    """
    worker = dramatiq.Worker(
        services.broker,
        worker_threads=threads or services.settings.worker_threads,
        worker_timeout=100,
    )
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@contextmanager
def scheduler_thread(services: Services) -> Iterator[threading.Thread]:
    """Run the scheduler loop in a daemon thread until the block ends."""
    stop = threading.Event()
    scheduler = build_scheduler(services)
    thread = threading.Thread(
        target=scheduler.run_forever, args=(stop,), name="calsync-scheduler", daemon=True
    )
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=10)
