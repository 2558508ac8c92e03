"""A traced calsync: spans kept in memory, then the PostgreSQL + Redis stack of the sync
tests (uvicorn on a thread, Dramatiq worker threads on Redis, the emulator as Google).

Tracing must be on *before* the stack is built: the engine's SQLAlchemy instrumentation
and the app's server-span middleware are added when they are built.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from calsync.config import Settings
from tests.conftest import FakeGoogle
from tests.integration.sync.conftest import SyncStack, running_stack, sync_settings


@pytest.fixture
def traced_stack(
    spans: InMemorySpanExporter, production_settings: Settings, fake_google: FakeGoogle
) -> Iterator[SyncStack]:
    yield from running_stack(sync_settings(production_settings, fake_google), fake_google)


def attrs(span: ReadableSpan) -> Mapping[str, object]:
    return span.attributes or {}


def parent_id(span: ReadableSpan) -> int | None:
    return int(span.parent.span_id) if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    """The span's parent, grandparent, ... as far as they are among ``by_id``."""
    chain: list[ReadableSpan] = []
    parent = parent_id(span)
    while parent is not None and parent in by_id:
        chain.append(by_id[parent])
        parent = parent_id(by_id[parent])
    return chain
