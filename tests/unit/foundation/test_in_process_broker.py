"""The in-process broker (`calsync.queue.make_broker` without Redis): every broker of a
process shares one time-limit watcher thread, and time limits still hold on each."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dramatiq
from dramatiq.middleware import TimeLimitExceeded
from dramatiq.middleware.time_limit import _CtypesTimeoutManager

from calsync.config import Settings
from calsync.queue import make_broker


def _watchers() -> int:
    return sum(1 for thread in threading.enumerate() if isinstance(thread, _CtypesTimeoutManager))


def _embedded(folder: Path) -> Settings:
    return Settings.embedded(folder)


def test_many_brokers_start_at_most_one_time_limit_watcher(tmp_path: Path) -> None:
    make_broker(_embedded(tmp_path))
    # Counted from here: brokers made by earlier tests of the same process (Redis ones
    # among them) may have left watchers of their own; these five must add none.
    before = _watchers()
    assert before >= 1
    for _ in range(5):
        make_broker(_embedded(tmp_path))
    assert _watchers() == before


def test_a_later_broker_still_stops_a_job_over_its_time_limit(tmp_path: Path) -> None:
    make_broker(_embedded(tmp_path))
    broker = make_broker(_embedded(tmp_path))
    outcome: list[str] = []

    @dramatiq.actor(broker=broker, time_limit=300, max_retries=0)
    def spins() -> None:
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.01)
            outcome.append("ran to the end")
        except TimeLimitExceeded:
            outcome.append("stopped")
            raise

    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    try:
        spins.send()
        broker.join(spins.queue_name, fail_fast=False, timeout=15_000)
    finally:
        worker.stop()
    assert outcome == ["stopped"]
