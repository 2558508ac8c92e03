"""The Dramatiq middleware that makes jobs observable: trace context, metrics, log context.

- At enqueue, the current trace context (W3C ``traceparent``) goes into the message's
  options under :data:`TRACE_OPTION`, so a job continues the trace of the request or job
  that queued it. A message re-enqueued without a current span (a delayed message moved
  to its queue, a retry) keeps the context it had.
- In the worker, the job runs inside a consumer span named after the actor, a child of
  that context; the span records the outcome and any exception.
- Every job counts in ``calsync_jobs_total`` by actor and outcome (``ok``; ``retry``:
  failed and will run again; ``failed``: failed for good; ``skipped``: a middleware
  skipped it) and its run time in ``calsync_job_duration_seconds``.
- Records logged during the job carry ``job`` (the actor name), the ids among the
  actor's arguments (``user_id``, ``calendar_id``, ``event_id``) and the ``request_id`` of
  the request that queued it (the message option :data:`REQUEST_OPTION`, set at enqueue
  from the log context; a job queued by a job passes it on).
- Each job ends with one log line, ``job finished``: ``job``, ``outcome``,
  ``duration_ms``, ``attempt`` (1 for the first run), ``message_id``, the ids, and
  ``error`` (the exception's type) when it failed.

It must sit *before* Dramatiq's ``Retries`` in the broker's middleware list (its
``after_*`` hooks then run after Retries decided whether the message failed for good);
:func:`install` puts it there. While tracing is off it touches no OpenTelemetry code.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import Token
from dataclasses import dataclass
from typing import Any, Final

from dramatiq import Broker, Middleware
from dramatiq.middleware import Retries
from opentelemetry import context, propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from calsync import metrics, tracing
from calsync.logs import BINDABLE, bind_context, current_context, reset_context

__all__ = ["REQUEST_OPTION", "TRACE_OPTION", "JobObserver", "install"]

#: The message option that carries the W3C trace context of whoever queued the job.
TRACE_OPTION: Final = "trace_context"
#: The message option that carries the ``request_id`` of the request that queued the job.
REQUEST_OPTION: Final = "request_id"

log = logging.getLogger("calsync.jobs")


@dataclass
class _Running:
    started: float
    log_token: Token[Mapping[str, str]]
    attempt: int = 1
    span: Span | None = None
    context_token: object | None = None


class JobObserver(Middleware):
    """See the module docstring. One per broker; thread-safe (state is per thread)."""

    def __init__(self, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._local = threading.local()
        self._id_params: dict[str, tuple[str, ...]] = {}

    # --- producer side ------------------------------------------------------------------

    def before_enqueue(self, broker: Broker, message: Any, delay: int | None) -> None:
        request_id = current_context().get("request_id")
        if request_id is not None and REQUEST_OPTION not in message.options:
            message.options[REQUEST_OPTION] = request_id
        if not tracing.enabled():
            return
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if carrier:
            message.options[TRACE_OPTION] = carrier

    # --- consumer side ------------------------------------------------------------------

    def before_process_message(self, broker: Broker, message: Any) -> None:
        ids = self._ids(broker, message)
        request_id = message.options.get(REQUEST_OPTION)
        running = _Running(
            started=self._clock(),
            log_token=bind_context(
                job=message.actor_name,
                request_id=request_id if isinstance(request_id, str) else None,
                **ids,
            ),
            # Retries counts failures in the options after a run: read it before.
            attempt=int(message.options.get("retries", 0)) + 1,
        )
        if tracing.enabled():
            carrier = message.options.get(TRACE_OPTION)
            parent = propagate.extract(carrier) if isinstance(carrier, dict) else None
            attributes = {
                "messaging.system": "dramatiq",
                "messaging.operation.type": "process",
                "messaging.destination.name": message.queue_name,
                "messaging.message.id": message.message_id,
                **{f"calsync.{name}": value for name, value in ids.items()},
            }
            span = tracing.tracer().start_span(
                message.actor_name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes
            )
            span.set_attribute("calsync.job.retries", int(message.options.get("retries", 0)))
            running.span = span
            running.context_token = context.attach(trace.set_span_in_context(span, parent))
        self._running()[message.message_id] = running

    def after_process_message(
        self,
        broker: Broker,
        message: Any,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None:
            outcome = "failed" if message.failed else "ok"
        else:
            outcome = "failed" if message.failed else "retry"
        self._finish(message, outcome, exception)

    def after_skip_message(self, broker: Broker, message: Any) -> None:
        self._finish(message, "skipped", None)

    def _finish(self, message: Any, outcome: str, exception: BaseException | None) -> None:
        actor = message.actor_name
        metrics.JOBS.labels(actor, outcome).inc()
        running = self._running().pop(message.message_id, None)
        if running is None:  # an earlier middleware stopped it before our hook ran
            return
        elapsed = self._clock() - running.started
        metrics.JOB_DURATION.labels(actor).observe(elapsed)
        fields: dict[str, object] = {
            "outcome": outcome,
            "duration_ms": round(elapsed * 1000, 1),
            "attempt": running.attempt,
            "message_id": message.message_id,
        }
        if exception is not None:
            fields["error"] = type(exception).__name__
        level = logging.INFO if outcome in ("ok", "skipped") else logging.WARNING
        log.log(level, "job finished", extra=fields)
        span = running.span
        if span is not None:
            span.set_attribute("calsync.job.outcome", outcome)
            if exception is not None:
                span.record_exception(exception)
                span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
            elif outcome == "failed":
                span.set_status(Status(StatusCode.ERROR, "failed"))
            span.end()
        if running.context_token is not None:
            context.detach(running.context_token)  # type: ignore[arg-type]
        reset_context(running.log_token)

    def _running(self) -> dict[str, _Running]:
        running: dict[str, _Running] | None = getattr(self._local, "running", None)
        if running is None:
            running = self._local.running = {}
        return running

    def _ids(self, broker: Broker, message: Any) -> dict[str, str]:
        """The actor's arguments whose parameter names are log context fields."""
        names = self._id_params.get(message.actor_name)
        if names is None:
            try:
                fn = broker.get_actor(message.actor_name).fn
                names = tuple(inspect.signature(fn).parameters)
            except Exception:  # an unknown actor is Dramatiq's error to report
                names = ()
            self._id_params[message.actor_name] = names
        ids = {
            name: str(value)
            for name, value in zip(names, message.args, strict=False)
            if name in BINDABLE
        }
        for name, value in message.kwargs.items():
            if name in BINDABLE:
                ids[name] = str(value)
        return ids


def install(broker: Broker) -> JobObserver:
    """Add a :class:`JobObserver` to ``broker``, before its ``Retries`` middleware."""
    observer = JobObserver()
    has_retries = any(isinstance(m, Retries) for m in broker.middleware)
    broker.add_middleware(observer, before=Retries if has_retries else None)
    return observer
