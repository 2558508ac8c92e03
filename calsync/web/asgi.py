"""ASGI entry point for ``calsync serve`` and other ASGI servers.

``uvicorn --factory calsync.web.asgi:app_factory`` builds the app from the environment in
each server process; nothing is built at import.
"""

from __future__ import annotations

import gc
import logging

from starlette.applications import Starlette

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.domain.timezones import iana_zone_names
from calsync.events.listing import warm_up
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
    services = bootstrap(settings, pool=api_pool(settings.api_threads))
    app = create_app(services)
    _settle(services)
    return app


def _settle(services: Services) -> None:
    """What a process's first requests would otherwise pay, paid before it serves
    (decision HN1): the zone names, the list pages' statements (`warm_up`; skipped with a
    warning when the database cannot answer yet), then one full garbage collection, after
    which everything alive is frozen out of later collections (`gc.freeze`): the
    collector no longer walks the ~230,000 objects of the imported code, which cost a
    first request ~100 ms and any later one that met a full collection as much."""
    iana_zone_names()
    try:
        warm_up(services.sessions, services.clock())
    except Exception:  # the database not reachable or not migrated yet: serve anyway
        logging.getLogger(__name__).warning("list pages not warmed up", exc_info=True)
    gc.collect()
    gc.freeze()
