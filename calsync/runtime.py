"""Running calsync's parts inside one process: worker threads, the scheduler loop, and the
whole embedded stack of ``calsync dev``."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

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


def prepare_metrics_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """Empty ``PROMETHEUS_MULTIPROC_DIR`` (creating it if needed) before a command starts
    the processes that share it, and return it; ``None`` when the variable is unset.

    prometheus-client keeps one file per process and metric type there and merges them at
    scrape time; files left by an earlier run would add old counts to the new ones (and
    its pids may be reused), so each ``calsync serve`` and ``calsync worker`` wipes its
    directory at start. Two commands must therefore never share one directory.
    """
    value = (os.environ if environ is None else environ).get("PROMETHEUS_MULTIPROC_DIR")
    if not value:
        return None
    directory = Path(value)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    return directory
