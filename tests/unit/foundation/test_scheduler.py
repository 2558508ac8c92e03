"""The scheduler runs each task when due, on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from calsync.scheduler import PeriodicTask, Scheduler

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
