"""Liveness, readiness and metrics routes."""

from __future__ import annotations

import functools
import hmac
import os
from datetime import timedelta

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from calsync.bootstrap import Services
from calsync.metric_tally import flush_all
from calsync.readiness import dependency_checks
from calsync.sync.polling import budget_report
from calsync.web.errors import error_response
from calsync.web.state_metrics import StateCollector, StateSnapshots, collect_state


async def healthz(_request: Request) -> Response:
    """The process is up and answering. Touches nothing else."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready to serve: the database answers and is migrated to head, the broker answers."""
    services: Services = request.app.state.services
    checks = await run_in_threadpool(readiness_checks, services)
    ready = all(check == "ok" for check in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
        headers={} if ready else {"Retry-After": "5"},
    )


def readiness_checks(services: Services) -> dict[str, str]:
    """Each dependency's state (`calsync.readiness.dependency_checks`)."""
    return dependency_checks(services.engine, getattr(services.broker, "client", None))


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus exposition: the event metrics of every process sharing
    ``PROMETHEUS_MULTIPROC_DIR`` (or of this process when it is unset), then the state
    metrics (:mod:`calsync.web.state_metrics`), computed at most once per
    ``CALSYNC_STATE_METRICS_CACHE_SECONDS`` by this process (the app's
    :func:`state_snapshots`).

    With ``CALSYNC_METRICS_TOKEN`` set, a request without ``Authorization: Bearer <token>``
    is answered 401 before anything is read.
    """
    services: Services = request.app.state.services
    expected = services.settings.metrics_token
    if expected is not None and not _bearer_is(request, expected):
        return error_response(
            401, "the metrics token is missing or wrong", headers={"WWW-Authenticate": "Bearer"}
        )
    snapshots: StateSnapshots = request.app.state.state_snapshots
    families = await run_in_threadpool(snapshots.get)
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector(families))
    flush_all()  # the counts hot paths keep in bulk (`calsync.metric_tally`)
    body = generate_latest(event_registry()) + generate_latest(state)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def state_snapshots(services: Services) -> StateSnapshots:
    """The state metrics of ``services``, computed once per the configured interval; one
    per app (``app.state.state_snapshots``), so per process."""
    poll_period = timedelta(seconds=services.settings.safety_net_interval_seconds)
    return StateSnapshots(
        lambda now: collect_state(
            services.sessions,
            services.broker,
            now,
            poll_period=poll_period,
            budget=functools.partial(budget_report, services),
        ),
        max_age=timedelta(seconds=services.settings.state_metrics_cache_seconds),
        clock=services.clock,
    )


def _bearer_is(request: Request, expected: str) -> bool:
    """Whether the request's bearer token is ``expected``, compared in constant time."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


def event_registry() -> CollectorRegistry:
    """The registry of the event metrics (calsync.metrics): in multi-process mode a fresh
    one that merges the files of every process in ``PROMETHEUS_MULTIPROC_DIR``, else the
    default registry of this process."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry
