"""The worker process entry point: ``dramatiq workers.worker`` (or ``calsync worker``).

Dramatiq imports this module in every worker process and consumes the broker it leaves as
the global one. This is a process entry point, so building the services here is its job;
nothing in the ``calsync`` package does work at import.
"""

from __future__ import annotations

from collections.abc import Callable

import dramatiq

from calsync import collector_pause
from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.logs import configure_logging
from calsync.store import pull_leases
from calsync.tracing import configure_tracing
from workers.handback import HandBack


def _lease_releaser(services: Services) -> Callable[[], int]:
    def release() -> int:
        with services.sessions.begin() as session:
            return pull_leases.release_held_by_process(session, services.process_name)

    return release


settings = Settings.from_env()
configure_logging(settings.log_level)
configure_tracing("calsync-worker")
services = bootstrap(settings)
services.broker.add_middleware(HandBack(_lease_releaser(services)))
# This process only runs jobs: the actors that ask may pause its garbage collector.
collector_pause.activate(services.broker)
dramatiq.set_broker(services.broker)
broker = services.broker
