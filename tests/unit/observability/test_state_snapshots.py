"""`StateSnapshots`: one computation serves every scrape of its interval, concurrent ones
included; a clock that goes back or a zero interval computes again."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from prometheus_client.core import GaugeMetricFamily, Metric

from calsync.web.state_metrics import StateSnapshots

T0 = datetime(2031, 5, 6, 12, 0, tzinfo=UTC)


class Counting:
    """A computation that counts its calls and can be held while running."""

    def __init__(self) -> None:
        self.calls: list[datetime] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, now: datetime) -> list[Metric]:
        self.release.wait(5)
        self.calls.append(now)
        return [GaugeMetricFamily("calsync_state_computed", "", value=len(self.calls))]


def snapshots(compute: Counting, clock: list[datetime], seconds: int = 5) -> StateSnapshots:
    return StateSnapshots(compute, max_age=timedelta(seconds=seconds), clock=lambda: clock[0])


def test_one_computation_serves_its_interval() -> None:
    compute, clock = Counting(), [T0]
    cache = snapshots(compute, clock)

    first = cache.get()
    clock[0] = T0 + timedelta(seconds=4.999)
    second = cache.get()
    clock[0] = T0 + timedelta(seconds=5)
    third = cache.get()
    clock[0] = T0 + timedelta(seconds=1)  # the clock went back: the snapshot is not trusted
    fourth = cache.get()

    assert second is first
    assert third is not first
    assert compute.calls == [T0, T0 + timedelta(seconds=5), T0 + timedelta(seconds=1)]
    assert fourth is not third


def test_concurrent_callers_wait_for_one_computation() -> None:
    compute, clock = Counting(), [T0]
    cache = snapshots(compute, clock)
    compute.release.clear()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = [pool.submit(cache.get) for _ in range(20)]
        compute.release.set()
        answers = [r.result(timeout=10) for r in results]

    assert len(compute.calls) == 1
    assert all(a is answers[0] for a in answers)


def test_a_zero_interval_computes_every_time() -> None:
    compute, clock = Counting(), [T0]
    cache = snapshots(compute, clock, seconds=0)

    cache.get()
    cache.get()

    assert len(compute.calls) == 2
