"""The job middleware on Dramatiq's in-process broker: outcomes counted, the trace context
carried from the sender to the job, and the log context set while the job runs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries, SkipMessage
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from calsync import job_observer, tracing
from calsync.logs import ContextFilter


def jobs_total(actor: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("calsync_jobs_total", {"actor": actor, "outcome": outcome})
    return value or 0.0


def job_runs(actor: str) -> float:
    value = REGISTRY.get_sample_value("calsync_job_duration_seconds_count", {"actor": actor})
    return value or 0.0


class Records(logging.Handler):
    """Keeps the records it sees, stamped by calsync's ContextFilter."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(ContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    broker = StubBroker()
    job_observer.install(broker)
    broker.emit_after("process_boot")
    yield broker
    broker.close()


@pytest.fixture
def run(broker: StubBroker) -> Iterator[Callable[[], None]]:
    """Process everything queued (retries included) on worker threads."""
    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()

    def drain() -> None:
        broker.join("default", fail_fast=False)
        worker.join()

    yield drain
    worker.stop()


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("tests.jobs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)


def actor(broker: StubBroker, fn: Callable[..., Any], **options: Any) -> dramatiq.Actor[..., Any]:
    return dramatiq.Actor(
        fn, broker=broker, actor_name=fn.__name__, queue_name="default", priority=0, options=options
    )


def test_it_sits_before_retries_so_it_sees_their_verdict(broker: StubBroker) -> None:
    kinds = [type(m) for m in broker.middleware]
    assert kinds.index(job_observer.JobObserver) < kinds.index(Retries)


def test_outcomes_are_counted_by_actor(broker: StubBroker, run: Callable[[], None]) -> None:
    attempts: list[int] = []

    def tidy_up() -> None:
        pass

    def flaky_once() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise dramatiq.Retry("again", delay=1)

    def always_broken() -> None:
        raise RuntimeError("broken")

    before = {
        key: jobs_total(*key)
        for key in [
            ("tidy_up", "ok"),
            ("flaky_once", "retry"),
            ("flaky_once", "ok"),
            ("always_broken", "retry"),
            ("always_broken", "failed"),
        ]
    }
    runs_before = job_runs("always_broken")
    actor(broker, tidy_up).send()
    actor(broker, flaky_once, max_retries=3).send()
    actor(broker, always_broken, max_retries=1, min_backoff=1, max_backoff=2).send()

    run()

    moved = {key: jobs_total(*key) - value for key, value in before.items()}
    assert moved == {
        ("tidy_up", "ok"): 1,
        ("flaky_once", "retry"): 1,
        ("flaky_once", "ok"): 1,
        ("always_broken", "retry"): 1,  # first attempt: Retries sends it again
        ("always_broken", "failed"): 1,  # second attempt: out of retries
    }
    assert job_runs("always_broken") - runs_before == 2


def test_a_skipped_message_counts_as_skipped(broker: StubBroker, run: Callable[[], None]) -> None:
    class SkipAll(dramatiq.Middleware):
        def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
            raise SkipMessage()

    broker.add_middleware(SkipAll())  # after the observer: its hooks have run

    def unlucky() -> None:
        raise AssertionError("never runs")

    before = jobs_total("unlucky", "skipped")
    actor(broker, unlucky).send()
    run()

    assert jobs_total("unlucky", "skipped") - before == 1


def test_the_job_continues_the_trace_of_whoever_queued_it(
    broker: StubBroker, run: Callable[[], None], spans: InMemorySpanExporter
) -> None:
    def sync_calendar(calendar_id: str) -> None:
        with tracing.span("inside"):
            pass

    job = actor(broker, sync_calendar)
    with tracing.span("POST /webhooks/google", kind=SpanKind.SERVER) as request:
        message = job.send("cal-1")
    run()

    assert job_observer.TRACE_OPTION in message.options
    finished = {s.name: s for s in spans.get_finished_spans()}
    consumer = finished["sync_calendar"]
    assert consumer.kind is SpanKind.CONSUMER
    assert consumer.context is not None
    assert consumer.context.trace_id == request.get_span_context().trace_id
    assert consumer.parent is not None
    assert consumer.parent.span_id == request.get_span_context().span_id
    assert (consumer.attributes or {})["calsync.calendar_id"] == "cal-1"
    inside = finished["inside"]
    assert inside.parent is not None
    assert inside.parent.span_id == consumer.context.span_id


def test_nothing_is_injected_while_tracing_is_off(
    broker: StubBroker, run: Callable[[], None]
) -> None:
    def quiet() -> None:
        pass

    message = actor(broker, quiet).send()
    run()

    assert job_observer.TRACE_OPTION not in message.options


def test_records_inside_a_job_carry_its_ids_and_trace(
    broker: StubBroker,
    run: Callable[[], None],
    records: Records,
    spans: InMemorySpanExporter,
) -> None:
    log = logging.getLogger("tests.jobs")

    def connect_user(user_id: str, calendar_id: str | None = None) -> None:
        log.info("working")

    actor(broker, connect_user).send("user-7", calendar_id="cal-9")
    run()
    log.info("outside")

    inside, outside = records.records
    consumer = next(s for s in spans.get_finished_spans() if s.name == "connect_user")
    assert consumer.context is not None
    assert (inside.job, inside.user_id, inside.calendar_id) == (  # type: ignore[attr-defined]
        "connect_user",
        "user-7",
        "cal-9",
    )
    assert inside.trace_id == format(consumer.context.trace_id, "032x")  # type: ignore[attr-defined]
    assert inside.span_id == format(consumer.context.span_id, "016x")  # type: ignore[attr-defined]
    assert getattr(outside, "job", None) is None
    assert getattr(outside, "user_id", None) is None
    assert getattr(outside, "trace_id", None) is None
