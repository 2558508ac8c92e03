"""The scheduler runs each task when due, on an injected clock."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calsync.scheduler import PeriodicTask, Scheduler, mark_alive

START = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_tasks_run_at_first_tick_then_once_per_period() -> None:
    runs: list[datetime] = []
    scheduler = Scheduler(
        clock=lambda: START, tasks=[PeriodicTask("t", timedelta(seconds=30), runs.append)]
    )

    assert scheduler.run_pending(START) == ["t"]
    assert scheduler.run_pending(START + timedelta(seconds=29)) == []
    assert scheduler.run_pending(START + timedelta(seconds=30)) == ["t"]
    assert runs == [START, START + timedelta(seconds=30)]


def test_a_failing_task_does_not_stop_the_others_and_runs_again_next_period() -> None:
    calls = {"bad": 0, "good": 0}

    def bad(_now: datetime) -> None:
        calls["bad"] += 1
        raise RuntimeError("boom")

    def good(_now: datetime) -> None:
        calls["good"] += 1

    scheduler = Scheduler(
        clock=lambda: START,
        tasks=[
            PeriodicTask("bad", timedelta(seconds=10), bad),
            PeriodicTask("good", timedelta(seconds=10), good),
        ],
    )

    assert scheduler.run_pending(START) == ["good"]
    assert scheduler.run_pending(START + timedelta(seconds=10)) == ["good"]
    assert calls == {"bad": 2, "good": 2}


def test_sleep_until_the_earliest_due_task() -> None:
    scheduler = Scheduler(
        clock=lambda: START,
        tasks=[
            PeriodicTask("a", timedelta(seconds=30), lambda _: None),
            PeriodicTask("b", timedelta(seconds=5), lambda _: None),
        ],
    )
    assert scheduler.seconds_until_next(START) == 0.0
    scheduler.run_pending(START)
    assert scheduler.seconds_until_next(START + timedelta(seconds=2)) == 3.0


def test_every_tick_marks_the_liveness_file_even_when_a_task_fails(tmp_path: Path) -> None:
    alive = tmp_path / "scheduler.alive"
    stop = threading.Event()
    ticks: list[float] = []

    calls: list[int] = []

    def failing(_now: datetime) -> None:
        calls.append(1)
        if len(calls) > 50:  # the file was never marked: end the loop, the test fails
            stop.set()
        if alive.exists():
            ticks.append(alive.stat().st_mtime)
            os.utime(alive, (0, 0))  # stale: only the next tick can make it fresh again
        if len(ticks) == 3:
            stop.set()
        raise RuntimeError("a sweep failed")

    scheduler = Scheduler(
        clock=lambda: datetime.now(UTC),
        tasks=[PeriodicTask("failing", timedelta(seconds=0), failing)],
    )
    before = time.time()
    scheduler.run_forever(stop, max_sleep=0.01, alive_file=alive)

    assert len(ticks) == 3
    assert all(mtime >= before - 1 for mtime in ticks)  # each tick set it anew
    assert alive.stat().st_mtime >= before - 1


def test_an_unwritable_liveness_file_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing_folder = tmp_path / "gone" / "scheduler.alive"
    mark_alive(missing_folder)
    assert not missing_folder.exists()
    assert "scheduler liveness file" in caplog.text
