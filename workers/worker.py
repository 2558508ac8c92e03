"""The worker process entry point: ``dramatiq workers.worker`` (or ``calsync worker``).

Dramatiq imports this module in every worker process and consumes the broker it leaves as
the global one. This is a process entry point, so building the services here is its job;
nothing in the ``calsync`` package does work at import.
"""

from __future__ import annotations

import dramatiq

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.logs import configure_logging
from calsync.tracing import configure_tracing

settings = Settings.from_env()
configure_logging(settings.log_level)
configure_tracing("calsync-worker")
services = bootstrap(settings)
dramatiq.set_broker(services.broker)
broker = services.broker
