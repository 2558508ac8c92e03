"""The garbage collector pause of pulls (`calsync.collector_pause`): worker middleware,
switched on per actor and only in a process that runs nothing but jobs; held by any job
of the process that asked, released by the last one, never turning on a collector that
was off before."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from calsync import collector_pause
from calsync.collector_pause import CollectorPause, collector_paused
from calsync.config import Settings
from calsync.queue import make_broker
from calsync.sync import pull
from tests.integration.sync.conftest import SyncStack, wait_until


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_overlapping_holders_resume_the_collector_when_the_last_one_ends() -> None:
    gc.enable()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def first() -> None:
        with collector_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with collector_paused():
            second_in.set()
            first_out.wait(5)
            seen["after the first ended"] = gc.isenabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == {"after the first ended": False}
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off_and_errors_release_the_pause() -> None:
    gc.disable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the pull failed")
    assert not gc.isenabled()
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def run_jobs(broker: StubBroker) -> dict[str, bool]:
    """Run one job of an actor that asks for the pause, one that fails asking for it, and
    one that does not ask, on `broker`; what each saw of the collector."""
    seen: dict[str, bool] = {}

    def pausing() -> None:
        seen["pausing"] = gc.isenabled()

    def failing() -> None:
        seen["failing"] = gc.isenabled()
        raise RuntimeError("the pull failed")

    def plain() -> None:
        seen["plain"] = gc.isenabled()

    actors: list[dramatiq.Actor[..., Any]] = [
        dramatiq.Actor(
            pausing,
            broker=broker,
            actor_name="pausing",
            queue_name="q",
            priority=0,
            options={"pause_collector": True},
        ),
        dramatiq.Actor(
            failing,
            broker=broker,
            actor_name="failing",
            queue_name="q",
            priority=0,
            options={"pause_collector": True, "max_retries": 0},
        ),
        dramatiq.Actor(
            plain, broker=broker, actor_name="plain", queue_name="q", priority=0, options={}
        ),
    ]
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        for actor in actors:
            actor.send()
            broker.join("q", fail_fast=False)
            worker.join()
    finally:
        worker.stop()
    return seen


def stub_broker(settings: Settings, *, active: bool) -> StubBroker:
    """An in-process broker as calsync makes them (it shares the process's one time-limit
    watcher: a bare booted `StubBroker` would leave a watcher thread of its own running),
    its pause switched on or not."""
    broker = make_broker(settings)
    assert isinstance(broker, StubBroker)
    if active:
        collector_pause.activate(broker)
    return broker


def test_an_active_pause_holds_for_the_actors_that_ask_and_is_released_after_a_failure(
    embedded_settings: Settings,
) -> None:
    gc.enable()
    seen = run_jobs(stub_broker(embedded_settings, active=True))
    assert seen == {"pausing": False, "failing": False, "plain": True}
    assert gc.isenabled()


def test_the_pause_of_a_broker_that_nobody_activated_never_pauses(
    embedded_settings: Settings, production_settings: Settings
) -> None:
    gc.enable()
    assert run_jobs(stub_broker(embedded_settings, active=False)) == {
        "pausing": True,
        "failing": True,
        "plain": True,
    }
    # Every broker calsync makes carries it switched off (the worker entry point
    # activates its own): actors may declare the option on either.
    for settings in (embedded_settings, production_settings):
        broker = make_broker(settings)
        pauses = [m for m in broker.middleware if isinstance(m, CollectorPause)]
        assert [p.active for p in pauses] == [False]
        collector_pause.activate(broker)
        assert [p.active for p in pauses] == [True]


def test_activating_a_broker_without_the_middleware_is_refused() -> None:
    with pytest.raises(LookupError):
        collector_pause.activate(StubBroker())


def test_pulls_and_audits_ask_for_the_pause(any_stack: SyncStack) -> None:
    jobs = any_stack.services.jobs
    assert jobs.sync_calendar.options.get("pause_collector") is True
    assert jobs.audit_calendar.options.get("pause_collector") is True
    assert not jobs.push_outbox.options.get("pause_collector")


def test_a_pull_in_a_process_that_serves_the_api_leaves_its_collector_on(
    any_stack: SyncStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the API and worker threads in one process (as `calsync dev` runs them)
    gc.enable()
    seen: list[bool] = []
    listing = pull._list_everything_changed

    def watched(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return listing(*args, **kwargs)

    monkeypatch.setattr(pull, "_list_everything_changed", watched)
    # When a user connects and their calendars are pulled by the worker threads
    any_stack.connect()
    any_stack.services.jobs.connect_user.send(str(any_stack.user_id))
    wait_until(lambda: len(seen) >= 1, timeout=30, what="a pull")
    # Then the process's collector stayed on while the pull listed
    assert seen
    assert all(seen)
    assert gc.isenabled()
