"""The Starlette application factory.

``create_app(services)`` builds the API and webhook receiver for one process. The web layer
never calls the Calendar API: it records intent in the database and enqueues jobs.
"""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calsync import metrics
from calsync.bootstrap import Services
from calsync.web.errors import EXCEPTION_HANDLERS
from calsync.web.health import healthz, metrics_endpoint, readyz


def create_app(services: Services) -> Starlette:
    """The ASGI app serving calsync's HTTP interface for ``services``."""
    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.services = services
    app.add_middleware(RequestMetricsMiddleware)
    return app


class RequestMetricsMiddleware:
    """Counts and times every request by route template (not raw path) and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(template, method, str(status)).inc()
            metrics.HTTP_LATENCY.labels(template, method).observe(time.perf_counter() - started)
