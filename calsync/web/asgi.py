"""ASGI entry point for ``calsync serve`` and other ASGI servers.

``uvicorn --factory calsync.web.asgi:app_factory`` builds the app from the environment in
each server process; nothing is built at import.
"""

from __future__ import annotations

import gc

from starlette.applications import Starlette

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.logs import configure_logging
from calsync.store.db import api_pool
from calsync.tracing import configure_tracing
from calsync.web.app import create_app
from calsync.web.warm_up import prepare_within


def app_factory() -> Starlette:
    """The app for the settings in the environment, with this process's logging and
    tracing set up; its database pool is sized from ``CALSYNC_API_THREADS``. Its reads
    are prepared before it serves (`prepare_within`, decisions HZ1 and RX1), and what it has made
    so far is left out of the cyclic collector's full collections (decision HZ2)."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    configure_tracing("calsync-api")
    services = bootstrap(settings, pool=api_pool(settings.api_threads))
    prepare_within(services)  # bounded: a database that never answers must not stop it (RX1)
    app = create_app(services)
    # ~200,000 objects of imported code and set-up, alive for the process's life: a full
    # collection walked them all (50-100 ms of CPU, a page's answer stalled that long)
    # every few hundred pages; frozen, it walks only what requests made since (HZ2)
    gc.collect()
    gc.freeze()
    return app
