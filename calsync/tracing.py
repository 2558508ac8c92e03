"""OpenTelemetry tracing for calsync's processes: off unless the environment turns it on.

:func:`configure_tracing` is called once by each process entry point (``calsync serve``'s
app factory, the worker and scheduler processes, ``calsync dev``), never at import. It
reads the standard variables:

- ``OTEL_TRACES_EXPORTER``: ``otlp`` (OTLP over HTTP/protobuf) and/or ``console``
  (comma-separated); unset or ``none`` leaves tracing off;
- ``OTEL_SDK_DISABLED=true`` keeps it off whatever the exporter says;
- the SDK and the exporter read the rest themselves: ``OTEL_SERVICE_NAME``,
  ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER`` (+ ``_ARG``),
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``,
  ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_*``.

While tracing is off no tracer provider is installed and calsync's own instrumentation
(:func:`span`, the job middleware, the ASGI and SQLAlchemy hooks) does nothing beyond one
boolean check. :func:`install_memory_exporter` is the test seam: it turns tracing on with
spans kept in memory.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from sqlalchemy.engine import Engine

__all__ = [
    "TRACER_NAME",
    "configure_tracing",
    "enabled",
    "install_memory_exporter",
    "instrument_engine",
    "span",
    "tracer",
    "uninstall_memory_exporter",
]

log = logging.getLogger(__name__)

TRACER_NAME: Final = "calsync"
EXPORTERS: Final = frozenset({"otlp", "console"})

_lock = threading.Lock()
_provider: TracerProvider | None = None
_memory: InMemorySpanExporter | None = None
_enabled = False


def enabled() -> bool:
    """Whether this process records spans (a provider was configured or a test turned
    the memory exporter on)."""
    return _enabled


def tracer() -> trace.Tracer:
    """calsync's tracer on the global provider (a no-op one while tracing is off)."""
    return trace.get_tracer(TRACER_NAME)


@contextmanager
def span(
    name: str, *, kind: SpanKind = SpanKind.INTERNAL, attributes: Attributes = None
) -> Iterator[Span]:
    """A current span named ``name`` for the block; the invalid no-op span when tracing is
    off. An exception marks the span as an error with its type (not its message, which
    may quote secrets) and propagates."""
    if not _enabled:
        yield INVALID_SPAN
        return
    with tracer().start_as_current_span(
        name,
        kind=kind,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            # The type, not the message: messages may quote what a caller sent.
            current.set_attribute("exception.type", type(exc).__qualname__)
            current.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
            raise


def configure_tracing(service_name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Install a tracer provider if ``OTEL_TRACES_EXPORTER`` asks for one; returns whether
    tracing is on. Idempotent: a second call in the same process changes nothing.

    ``service_name`` is the default ``service.name`` (``OTEL_SERVICE_NAME`` or a
    ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES`` win). Unknown exporter names are
    logged and ignored. Connects to nothing: OTLP export starts with the first batch.
    """
    global _provider, _enabled
    env = os.environ if environ is None else environ
    wanted = _exporters(env)
    if not wanted:
        return _enabled
    with _lock:
        if _provider is not None:
            return True
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        named = env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get(
            "OTEL_RESOURCE_ATTRIBUTES", ""
        )
        resource = Resource.create({} if named else {"service.name": service_name})
        provider = TracerProvider(resource=resource)
        for name in sorted(wanted):
            provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
        trace.set_tracer_provider(provider)
        _provider = provider
        _enabled = True
    log.info("tracing on: exporting spans to %s", ", ".join(sorted(wanted)))
    return True


def _exporters(env: Mapping[str, str]) -> set[str]:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return set()
    names = {n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",")}
    names.discard("")
    names.discard("none")
    unknown = names - EXPORTERS
    if unknown:
        log.warning("ignoring unknown OTEL_TRACES_EXPORTER values: %s", ", ".join(sorted(unknown)))
    return names & EXPORTERS


def _exporter(name: str) -> SpanExporter:
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    if name == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def install_memory_exporter() -> InMemorySpanExporter:
    """Turn tracing on with every finished span kept in memory (tests).

    The exporter is one per process and starts empty; spans are exported synchronously
    when they end. Reuses the configured provider if there is one, else installs one.
    """
    global _provider, _memory, _enabled
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    with _lock:
        if _memory is None:
            if _provider is None:
                _provider = TracerProvider()
                trace.set_tracer_provider(_provider)
            _memory = InMemorySpanExporter()
            _provider.add_span_processor(SimpleSpanProcessor(_memory))
        _memory.clear()
        _enabled = True
        return _memory


def uninstall_memory_exporter() -> None:
    """Turn calsync's own instrumentation off again after :func:`install_memory_exporter`
    (the global provider stays, as OpenTelemetry allows setting it only once)."""
    global _enabled
    with _lock:
        _enabled = False
        if _memory is not None:
            _memory.clear()


def instrument_engine(engine: Engine) -> None:
    """Give ``engine``'s statements client spans (SQLAlchemy instrumentation); a no-op
    while tracing is off."""
    if not _enabled:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__ as sqla_version
    from opentelemetry.metrics import get_meter

    # The instrumentor's ``instrument(engine=...)`` would also patch ``create_engine``
    # process-wide and refuses SQLAlchemy 2.1 by its version pin; the per-engine tracer
    # it builds is all calsync needs.
    meter = get_meter("opentelemetry.instrumentation.sqlalchemy", sqla_version)
    usage = meter.create_up_down_counter("db.client.connections.usage", unit="connections")
    EngineTracer(  # type: ignore[no-untyped-call]
        trace.get_tracer("opentelemetry.instrumentation.sqlalchemy", sqla_version),
        engine,
        usage,
    )
