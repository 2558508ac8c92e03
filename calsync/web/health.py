"""Liveness, readiness and metrics routes."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from calsync.bootstrap import Services
from calsync.store.migrate import schema_state
from calsync.web.state_metrics import StateCollector, collect_state


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
    """Each dependency's state: ``ok`` or why not (``behind``, ``unavailable (...)``)."""
    checks: dict[str, str] = {}
    try:
        with services.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
        state = schema_state(services.engine)
        checks["migrations"] = "ok" if state in {"current", "ahead"} else state
    except sa.exc.SQLAlchemyError as exc:
        checks["database"] = f"unavailable ({type(exc).__name__})"
        checks["migrations"] = "unknown"
    checks["broker"] = _broker_check(services.broker)
    return checks


def _broker_check(broker: Any) -> str:
    client = getattr(broker, "client", None)
    if client is None:  # the in-process broker is always there
        return "ok"
    try:
        client.ping()
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"
    return "ok"


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus exposition: the event metrics of every process sharing
    ``PROMETHEUS_MULTIPROC_DIR`` (or of this process when it is unset), then the state
    metrics read from the database and the broker now (:mod:`calsync.web.state_metrics`)."""
    services: Services = request.app.state.services
    families = await run_in_threadpool(
        collect_state,
        services.sessions,
        services.broker,
        services.clock(),
        poll_period=timedelta(seconds=services.settings.safety_net_interval_seconds),
    )
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector(families))
    body = generate_latest(event_registry()) + generate_latest(state)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def event_registry() -> CollectorRegistry:
    """The registry of the event metrics (calsync.metrics): in multi-process mode a fresh
    one that merges the files of every process in ``PROMETHEUS_MULTIPROC_DIR``, else the
    default registry of this process."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry
