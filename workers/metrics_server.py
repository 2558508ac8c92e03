"""The worker pod's Prometheus endpoint: a Dramatiq fork process (``calsync worker``
starts it with ``--fork-function workers.metrics_server:serve``).

Worker processes write their event metrics (jobs, Google calls, outbox writes, ...) to
``PROMETHEUS_MULTIPROC_DIR``; this process merges the files of every worker process of the
pod and serves them on ``CALSYNC_WORKER_METRICS_PORT`` (set by ``calsync worker
--metrics-port``). State metrics (queue depth, lag, ...) are the api's ``/metrics``.
"""

from __future__ import annotations

import os
import threading

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

PORT_VARIABLE = "CALSYNC_WORKER_METRICS_PORT"


def serve() -> int:
    """Serve the merged metrics until the Dramatiq main process stops this fork."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    port = int(os.environ[PORT_VARIABLE])
    server, thread = start_http_server(port, addr="0.0.0.0", registry=registry)  # noqa: S104
    try:
        threading.Event().wait()  # until SIGTERM: Dramatiq's handler exits the process
    finally:
        server.shutdown()
        thread.join(timeout=5)
    return 0
