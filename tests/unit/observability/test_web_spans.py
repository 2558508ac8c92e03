"""Server spans: one per request, named by route template, probes left out, no secrets
from the query string, and only while tracing is on."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from calsync.web.app import RequestMetricsMiddleware, add_tracing_middleware


async def ok(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def app(*, traced: bool) -> Starlette:
    """A tiny app with calsync's request middleware, as `create_app` stacks it."""
    built = Starlette(
        routes=[
            Route("/events/{event_id}", ok),
            Route("/auth/google/callback", ok),
            Route("/healthz", ok),
        ]
    )
    built.add_middleware(RequestMetricsMiddleware)
    if traced:
        add_tracing_middleware(built)
    return built


def test_a_request_gets_a_server_span_named_by_its_route(spans: InMemorySpanExporter) -> None:
    with TestClient(app(traced=True)) as client:
        client.get("/events/0b6f", headers={"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"})

    [span] = spans.get_finished_spans()
    assert span.name == "GET /events/{event_id}"
    assert span.kind is SpanKind.SERVER
    attributes = span.attributes or {}
    assert attributes["http.route"] == "/events/{event_id}"
    assert attributes["http.status_code"] == 200
    assert span.context is not None
    assert span.context.trace_id == int("ab" * 16, 16)  # the caller's trace goes on


def test_probes_are_not_traced(spans: InMemorySpanExporter) -> None:
    with TestClient(app(traced=True)) as client:
        client.get("/healthz")

    assert spans.get_finished_spans() == ()


def test_the_oauth_code_and_state_stay_out_of_the_span(spans: InMemorySpanExporter) -> None:
    with TestClient(app(traced=True)) as client:
        client.get("/auth/google/callback", params={"code": "4/0AXsecret", "state": "s1gned"})

    [span] = spans.get_finished_spans()
    recorded = repr(span.to_json())
    assert "/auth/google/callback" in recorded
    assert "4/0AXsecret" not in recorded
    assert "s1gned" not in recorded


def test_an_app_built_while_tracing_is_off_has_no_span(spans: InMemorySpanExporter) -> None:
    with TestClient(app(traced=False)) as client:
        client.get("/events/1")

    assert spans.get_finished_spans() == ()
