"""The Starlette application factory.

``create_app(services)`` builds the API and webhook receiver for one process. The web layer
never calls the Calendar API: it records intent in the database and enqueues jobs.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Final

import redis.asyncio
from anyio import to_thread
from opentelemetry import trace
from starlette.applications import Starlette
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from calsync import metrics, tracing
from calsync.bootstrap import Services
from calsync.config import Settings
from calsync.logs import log_context, redact
from calsync.web import openapi
from calsync.web.auth.principal import JWTAuthBackend, authentication_failed, caller_id
from calsync.web.connections import ConnectionPermits, RequestConnectionMiddleware
from calsync.web.errors import EXCEPTION_HANDLERS, UnavailableDependencyMiddleware
from calsync.web.health import healthz, metrics_endpoint, readyz, state_snapshots
from calsync.web.limits import (
    UNLIMITED_PATHS,
    BodySizeLimitMiddleware,
    InMemoryRateLimitBackend,
    RateLimit,
    RateLimitBackend,
    RedisRateLimitBackend,
    client_address_key,
)
from calsync.web.notification_intake import IntakeFirst
from calsync.web.request_id import RequestIdMiddleware
from calsync.web.request_limits import AddressLimitMiddleware, UserLimitMiddleware
from calsync.web.routes import admin, auth, calendars, dev, events, me, sync
from calsync.web.routes import preferences as notice_routes
from calsync.web.warm_up import prepare_pipeline

#: Paths that are never rate limited per user: probes, metrics and Google's pushes.


def create_app(services: Services) -> IntakeFirst:
    """The ASGI app serving calsync's HTTP interface for ``services``."""
    settings = services.settings
    limiter_backend, limiter_client = _rate_limit_backend(services)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # The thread pool that runs requests' blocking work (run_in_threadpool), sized
        # with the database pool (calsync.store.db.api_pool; docs/operations.md).
        to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        await prepare_pipeline()  # the pool's first thread (IY1)
        yield
        await services.google_oauth.aclose()
        if limiter_client is not None:
            await limiter_client.aclose()

    app = IntakeFirst(
        lifespan=lifespan,
        routes=_routes(settings),
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.services = services
    app.state.state_snapshots = state_snapshots(services)
    _add_middleware(app, services, limiter_backend)
    # in front of everything, Starlette's error middleware included (decisions W1, I3)
    app.put_intake_in_front(services)
    return app


def _routes(settings: Settings) -> list[BaseRoute]:
    """The API's routes (the webhook intake answers in front of them, `IntakeFirst`)."""
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *([] if settings.metrics_port else [_metrics_route()]),
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
        Route("/auth/google", auth.start_google_sign_in, methods=["GET"]),
        Route("/auth/google/callback", auth.finish_google_sign_in, methods=["GET"]),
        Route("/me", me.get_me, methods=["GET"]),
        *notice_routes.ROUTES,
        Route("/admin/users", admin.list_users, methods=["GET"]),
        Route("/admin/users/{user_id}", admin.update_user, methods=["PATCH"]),
        Route("/admin/users/{user_id}/release-email", admin.release_email, methods=["POST"]),
        Route("/admin/audit", admin.list_audit_events, methods=["GET"]),
        Route("/calendars", calendars.list_calendars, methods=["GET"]),
        Route("/calendars/{calendar_id}", calendars.update_calendar, methods=["PATCH"]),
        Route("/events", events.create_event, methods=["POST"]),
        Route("/events", events.list_events, methods=["GET"]),
        Route("/events/{event_id}", events.get_event, methods=["GET"]),
        Route("/events/{event_id}", events.update_event, methods=["PUT"]),
        # PATCH is PUT: both are partial updates (decisions E1, P5)
        Route("/events/{event_id}", events.update_event, methods=["PATCH"]),
        Route("/events/{event_id}", events.delete_event, methods=["DELETE"]),
        Route("/sync", sync.trigger_sync, methods=["POST"]),
        Route("/sync/logs", sync.list_sync_logs, methods=["GET"]),
        *_dev_routes(settings),
    ]


def _add_middleware(app: Starlette, services: Services, limiter_backend: RateLimitBackend) -> None:
    """The request pipeline around the routes, in its order (each added one wraps the
    ones before it)."""
    settings = services.settings
    # Added innermost first: metrics see every answer, the body limit acts before anything
    # reads the body, each client address is limited before authentication (a request
    # with a token carries its address bucket to the user limit, one hit for both; a
    # refused token takes it before its audit write: a flood of bad tokens is 429s, not
    # audit writes), and the per-user limit and the log context use the user that
    # authentication found (decision HB1).
    app.add_middleware(UserLogContextMiddleware)
    # Both limits in one hit for a request with a token (decision HB1).
    app.add_middleware(
        UserLimitMiddleware,
        backend=limiter_backend,
        limit=RateLimit(settings.api_rate_limit_per_minute, timedelta(minutes=1)),
        key=rate_limit_key,
    )
    backend = JWTAuthBackend(services, account_in_route=ACCOUNT_IN_ROUTE)
    app.add_middleware(AuthenticationMiddleware, backend=backend, on_error=authentication_failed)
    # Outside authentication, whose read checks out the one connection the route reuses.
    app.add_middleware(
        RequestConnectionMiddleware,
        engine=services.engine,
        permits=ConnectionPermits(settings.api_threads),
    )
    app.add_middleware(
        AddressLimitMiddleware,
        backend=limiter_backend,
        limit=RateLimit(settings.address_rate_limit_per_minute, timedelta(minutes=1)),
        key=address_rate_limit_key,
    )
    if settings.trusted_proxies:  # before anything reads the client's address
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    app.add_middleware(UnavailableDependencyMiddleware)  # 503, keeping the connection
    app.add_middleware(RequestMetricsMiddleware)
    if tracing.enabled():
        add_tracing_middleware(app)
    app.add_middleware(RequestIdMiddleware)  # every answer and log line has it


#: Routes that read their caller's account in their own worker thread (`read_caller`):
#: one thread hop a request instead of two (decision HU1). The week reads and month
#: pages of issues 19 and 21.
ACCOUNT_IN_ROUTE: Final = frozenset({("GET", "/events")})


def _dev_routes(settings: Settings) -> list[Route]:
    """Routes of ``calsync dev`` only, outside the API contract."""
    if settings.notice_sink_dir is None:
        return []
    return [Route("/dev/notices", dev.list_kept_notices, methods=["GET"])]


def create_metrics_app(services: Services) -> Starlette:
    """The app that serves only ``GET /metrics``, on ``CALSYNC_METRICS_PORT`` (``calsync
    serve`` runs it beside the API, whose app then has no ``/metrics``): the port can be
    kept off the public network. ``CALSYNC_METRICS_TOKEN`` applies here too."""
    app = Starlette(routes=[_metrics_route()], exception_handlers=EXCEPTION_HANDLERS)
    app.state.services = services
    app.state.state_snapshots = state_snapshots(services)
    app.add_middleware(RequestIdMiddleware)
    return app


def _metrics_route() -> Route:
    return Route("/metrics", metrics_endpoint, methods=["GET"])


def add_tracing_middleware(app: Starlette) -> None:
    """One server span per HTTP request (OpenTelemetry's ASGI middleware, outermost), named
    ``METHOD /route/{template}`` once routing is done; probes and ``/metrics`` are not
    traced. Continues a ``traceparent`` the caller sent. Secrets in the query string (the
    OAuth callback's code and state) are redacted from the recorded URL."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    app.add_middleware(
        OpenTelemetryMiddleware,
        excluded_urls=",".join(TRACE_EXCLUDED_PATHS),
        default_span_details=_span_details,
        server_request_hook=_redact_url_attributes,
        exclude_spans=["receive", "send"],
    )


#: Paths that never get a server span.
TRACE_EXCLUDED_PATHS = ("/healthz", "/readyz", "/metrics")


#: Span attributes that hold the request's query string.
URL_ATTRIBUTES = ("http.url", "http.target", "url.full", "url.query")


def _redact_url_attributes(span: trace.Span, _scope: Scope) -> None:
    attributes = getattr(span, "attributes", None) or {}
    for name in URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str):
            span.set_attribute(name, redact(value))


def _span_details(scope: Scope) -> tuple[str, dict[str, str]]:
    # Named by the route template later (RequestMetricsMiddleware): raw paths hold ids.
    return str(scope.get("method") or "HTTP"), {}


def rate_limit_key(scope: Scope) -> str | None:
    """One bucket per signed-in user; anonymous requests and probes are not limited here
    (the address limit before authentication covers the anonymous ones)."""
    if scope["path"] in UNLIMITED_PATHS:
        return None
    user_id = caller_id(scope.get("user"))
    return f"user:{user_id}" if user_id is not None else None


def address_rate_limit_key(scope: Scope) -> str | None:
    """One bucket per client address (an IPv6 /64), before authentication; probes,
    metrics and Google's pushes are not limited."""
    if scope["path"] in UNLIMITED_PATHS:
        return None
    return client_address_key(scope)


def _rate_limit_backend(
    services: Services,
) -> tuple[RateLimitBackend, redis.asyncio.Redis | None]:
    """Shared across API processes through Redis in production; in-process otherwise."""
    if services.settings.redis_url:
        client = redis.asyncio.Redis.from_url(services.settings.redis_url)
        return RedisRateLimitBackend(client), client
    return InMemoryRateLimitBackend(), None


class UserLogContextMiddleware:
    """Records logged while answering a signed-in caller carry their ``user_id``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user_id = caller_id(scope.get("user"))
        if user_id is None:
            await self.app(scope, receive, send)
            return
        with log_context(user_id=user_id):
            await self.app(scope, receive, send)


class RequestMetricsMiddleware:
    """Counts and times every request by route template (not raw path) and status; names
    the current server span after the route template when tracing is on."""

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
                if tracing.enabled():  # before the answer goes out, which ends the span
                    _name_server_span(scope)
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(template, method, str(status)).inc()
            metrics.HTTP_LATENCY.labels(template, method).observe(time.perf_counter() - started)


def _name_server_span(scope: Scope) -> None:
    span = trace.get_current_span()
    template = getattr(scope.get("route"), "path", None)
    if template is not None and span.is_recording():
        span.update_name(f"{scope['method']} {template}")
        span.set_attribute("http.route", template)
