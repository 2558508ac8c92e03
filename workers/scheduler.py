"""The scheduler process entry point: ``python -m workers.scheduler`` (or ``calsync scheduler``)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.logs import configure_logging
from calsync.scheduler import build_scheduler
from calsync.tracing import configure_tracing

log = logging.getLogger("calsync.scheduler")


def main(settings: Settings | None = None) -> None:
    """Run the scheduler until SIGTERM or SIGINT, with `settings` (default: read from the
    environment; ``calsync scheduler`` passes them, refusing embedded mode, JD4).

    ``CALSYNC_SCHEDULER_ALIVE_FILE`` (``Settings.scheduler_alive_file``), when set, names
    a file whose modification time is set after every tick, for a liveness probe that
    compares it with the clock (compose.yaml, docs/decisions.md L7).
    """
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    configure_tracing("calsync-scheduler")
    services = bootstrap(settings)
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s received, stopping the scheduler", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log.info("scheduler started")
    try:
        build_scheduler(services).run_forever(stop, alive_file=settings.scheduler_alive_file)
    finally:
        services.close()


if __name__ == "__main__":
    main()
