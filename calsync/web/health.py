"""Liveness, readiness and metrics routes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from calsync import metrics
from calsync.bootstrap import Services
from calsync.store.migrate import schema_state
from calsync.store.tables import QueueHeartbeat
from calsync.sync.channels import calendars_without_channel


async def healthz(_request: Request) -> Response:
    """The process is up and answering. Touches nothing else."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready to serve: the database answers and is migrated to head, the broker answers."""
    services: Services = request.app.state.services
    checks = await run_in_threadpool(_readiness_checks, services)
    ready = all(check == "ok" for check in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
        headers={} if ready else {"Retry-After": "5"},
    )


def _readiness_checks(services: Services) -> dict[str, str]:
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
    """Prometheus exposition of calsync's metrics."""
    services: Services = request.app.state.services
    await run_in_threadpool(_refresh_gauges, services)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _refresh_gauges(services: Services) -> None:
    try:
        with services.sessions() as session:
            beat = session.get(QueueHeartbeat, "queue")
            unwatched = calendars_without_channel(session, services.clock())
    except sa.exc.SQLAlchemyError:
        return
    metrics.CALENDARS_WITHOUT_CHANNEL.set(len(unwatched))
    if beat is not None:
        metrics.QUEUE_LAG.set((beat.processed_at - beat.sent_at).total_seconds())
        metrics.QUEUE_HEARTBEAT_AGE.set((services.clock() - beat.processed_at).total_seconds())
