"""ASGI entry point for ``calsync serve`` and other ASGI servers.

``uvicorn --factory calsync.web.asgi:app_factory`` builds the app from the environment in
each server process; nothing is built at import.
"""

from __future__ import annotations

from starlette.applications import Starlette

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.logs import configure_logging
from calsync.store.db import api_pool
from calsync.tracing import configure_tracing
from calsync.web.app import create_app


def app_factory() -> Starlette:
    """The app for the settings in the environment, with this process's logging and
    tracing set up; its database pool is sized from ``CALSYNC_API_THREADS``."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    configure_tracing("calsync-api")
    return create_app(bootstrap(settings, pool=api_pool(settings.api_threads)))
