"""The standard ``OTEL_*`` variables turn tracing on in a fresh process: console output,
or OTLP over HTTP to a collector (here a tiny HTTP server that decodes what it gets)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

pytestmark = pytest.mark.integration

PROGRAM = """
from calsync.tracing import configure_tracing, span
print("on" if configure_tracing("calsync-worker") else "off", flush=True)
with span("sync_calendar"):
    with span("Google events.list"):
        pass
"""


def run(**environ: str) -> subprocess.CompletedProcess[str]:
    """Run PROGRAM in a new interpreter with only ``environ``'s OTEL variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | environ
    return subprocess.run(
        [sys.executable, "-c", PROGRAM],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_without_variables_tracing_is_off_and_silent() -> None:
    done = run()
    assert done.stdout == "off\n"


def test_console_export_names_the_service_after_the_process() -> None:
    done = run(OTEL_TRACES_EXPORTER="console")

    assert done.stdout.startswith("on\n")
    assert '"name": "Google events.list"' in done.stdout
    assert '"name": "sync_calendar"' in done.stdout
    assert '"service.name": "calsync-worker"' in done.stdout


def test_otel_service_name_wins() -> None:
    done = run(OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="calsync-eu-worker")
    assert '"service.name": "calsync-eu-worker"' in done.stdout


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(b"")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    Collector.received = []
    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_otlp_export_reaches_the_collector_at_the_configured_endpoint(collector: str) -> None:
    done = run(OTEL_TRACES_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=collector)

    assert done.stdout == "on\n"
    [(path, body)] = Collector.received  # flushed once, when the process ends
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "calsync-worker"
    names = {s.name for scope in resource_spans.scope_spans for s in scope.spans}
    assert names == {"sync_calendar", "Google events.list"}
