"""The webhook intake alone: ``calsync serve-webhooks`` (decision U4).

Google's push notifications must be answered fast whatever the API is doing: Google
treats a slow receiver as failing and slows down or drops its deliveries. In the API
process they share one event loop and one interpreter lock with every API request, so a
saturated API delays them. This app serves only ``POST /webhooks/google`` (the same
`NotificationIntakeMiddleware` as the API, same answers) plus ``/healthz``, ``/readyz`` and, unless
``CALSYNC_METRICS_PORT`` is set, ``/metrics``, in processes of its own; the ingress routes
``/webhooks/google`` to them (docs/operations.md, "Webhook intake"). The API keeps
answering the path too, for single-process installations.
"""

from __future__ import annotations

from starlette.routing import Route

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.logs import configure_logging
from calsync.tracing import configure_tracing
from calsync.web.errors import EXCEPTION_HANDLERS
from calsync.web.health import healthz, metrics_endpoint, readyz, state_snapshots
from calsync.web.notification_intake import IntakeFirst
from calsync.web.request_id import RequestIdMiddleware


def create_webhook_app(services: Services) -> IntakeFirst:
    """The app of a webhook intake process for ``services``."""
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if not services.settings.metrics_port:
        routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
    app = IntakeFirst(routes=routes, exception_handlers=EXCEPTION_HANDLERS)
    app.state.services = services
    app.state.state_snapshots = state_snapshots(services)
    app.add_middleware(RequestIdMiddleware)
    app.put_intake_in_front(services)
    return app


def app_factory() -> IntakeFirst:
    """The webhook intake app for the settings in the environment (``uvicorn --factory
    calsync.web.webhook_app:app_factory``), with this process's logging and tracing."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    configure_tracing("calsync-webhooks")
    return create_webhook_app(bootstrap(settings))
