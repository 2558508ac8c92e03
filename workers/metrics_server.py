"""The worker pod's HTTP endpoint: a Dramatiq fork process (``calsync worker`` starts it
with ``--fork-function workers.metrics_server:serve``).

- ``GET /metrics``: worker processes write their event metrics (jobs, Google calls, outbox
  writes, ...) to ``PROMETHEUS_MULTIPROC_DIR``; this process merges the files of every
  worker process of the pod. State metrics (queue depth, lag, ...) are the api's.
- ``GET /readyz``: the checks of the api's ``/readyz`` (`calsync.readiness`), 200 or 503
  with the checks as JSON. The pod's readiness probe asks here: a probe that started
  ``calsync ready`` every 30 s spent about 2 s of CPU each time importing calsync (see
  docs/decisions.md L4), this costs milliseconds. The engine and the Redis client are
  made at the first probe and kept.

Served on ``CALSYNC_WORKER_METRICS_PORT`` (set by ``calsync worker --metrics-port``).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.multiprocess import MultiProcessCollector

PORT_VARIABLE = "CALSYNC_WORKER_METRICS_PORT"

StartResponse = Callable[..., Any]


class _Quiet(WSGIRequestHandler):
    """No line per request: probes and scrapes would flood the logs."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Readiness:
    """``/readyz`` of this pod: dependencies checked with one engine and client, made
    from the settings at the first call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dependencies: tuple[Any, Any] | None = None

    def checks(self) -> dict[str, str]:
        from calsync.readiness import dependency_checks

        engine, client = self._made()
        return dependency_checks(engine, client)

    def _made(self) -> tuple[Any, Any]:
        with self._lock:
            if self._dependencies is None:
                import redis

                from calsync.config import Settings
                from calsync.store.db import make_engine

                settings = Settings.from_env()
                engine = make_engine(settings.database_url, pool_size=1)
                client = (
                    redis.Redis.from_url(settings.redis_url, socket_timeout=5)
                    if settings.redis_url
                    else None
                )
                self._dependencies = engine, client
            return self._dependencies


def make_app(registry: CollectorRegistry, readiness: Readiness) -> Callable[..., Iterable[bytes]]:
    """The WSGI app: ``/readyz``, else Prometheus' exposition of `registry`."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/readyz":
            checks = readiness.checks()
            ready = all(check == "ok" for check in checks.values())
            body = json.dumps(
                {"status": "ready" if ready else "not_ready", "checks": checks}
            ).encode()
            status = "200 OK" if ready else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [body]
        return metrics(environ, start_response)  # type: ignore[no-any-return]

    return app


def serve() -> int:
    """Serve until the Dramatiq main process stops this fork."""
    from calsync.config import Settings
    from calsync.logs import configure_logging

    configure_logging(Settings.from_env().log_level)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    port = int(os.environ[PORT_VARIABLE])
    server = make_server(
        "0.0.0.0",  # noqa: S104 - the pod's port
        port,
        make_app(registry, Readiness()),
        ThreadingWSGIServer,
        handler_class=_Quiet,
    )
    thread = threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True)
    thread.start()
    try:
        threading.Event().wait()  # until SIGTERM: Dramatiq's handler exits the process
    finally:
        server.shutdown()
        thread.join(timeout=5)
    return 0
