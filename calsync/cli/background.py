"""The subcommands that run the background processes: ``worker`` (Dramatiq's worker
processes over `workers.worker`) and ``scheduler`` (the periodic scheduler)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from calsync.config import Settings
from calsync.logs import configure_logging


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``worker`` and ``scheduler`` to `commands`."""
    worker = commands.add_parser("worker", help="run Dramatiq worker processes")
    worker.add_argument("--processes", type=int, default=2, help="worker processes")
    worker.add_argument("--threads", type=int, default=8, help="threads per worker process")
    worker.add_argument(
        "--queues", nargs="*", default=None, help="only these queues (default: all of them)"
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=9191,
        help="serve the worker processes' metrics and the pod's /readyz here when "
        "PROMETHEUS_MULTIPROC_DIR is set "
        "(0: off)",
    )
    worker.add_argument(
        "--shutdown-timeout",
        type=float,
        default=150.0,
        help="seconds in-flight jobs get to finish after SIGTERM; unfinished ones are "
        "redelivered to another worker (keep it below the pod's grace period)",
    )
    worker.set_defaults(run=_worker)

    scheduler = commands.add_parser("scheduler", help="run the periodic scheduler")
    scheduler.set_defaults(run=_scheduler)


def _worker(args: argparse.Namespace) -> int:
    """Dramatiq's CLI. On SIGTERM each worker process stops taking messages, hands back
    (requeues) the prefetched ones and lets the running jobs finish for up to
    ``--shutdown-timeout``; a job cut off then (or by SIGKILL) is not acknowledged, so the
    broker redelivers it once the process's heartbeat is gone, and its sync lease expires
    (``CALSYNC_SYNC_LEASE_SECONDS``)."""
    import os

    from dramatiq.cli import main as dramatiq_main

    from calsync.runtime import prepare_metrics_dir
    from workers.metrics_server import PORT_VARIABLE

    settings = Settings.production_from_env("worker")
    # Dramatiq's main process would log its own lines (booting, process exits) as plain
    # text into the stream its worker processes write JSON to: calsync's JSON handler
    # instead, and each worker process sets its own up (workers/worker.py).
    configure_logging(settings.log_level)
    metrics_dir = prepare_metrics_dir()
    argv = [
        "--skip-logging",
        "workers.worker",
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
        "--worker-shutdown-timeout",
        str(round(args.shutdown_timeout * 1000)),
    ]
    if args.queues:
        argv += ["--queues", *args.queues]
    if metrics_dir is not None and args.metrics_port:
        os.environ[PORT_VARIABLE] = str(args.metrics_port)
        argv += ["--fork-function", "workers.metrics_server:serve"]
    sys.argv = ["dramatiq", *argv]
    return int(dramatiq_main() or 0)  # type: ignore[no-untyped-call]


def _scheduler(_args: argparse.Namespace) -> int:
    from workers.scheduler import main as scheduler_main

    scheduler_main(Settings.production_from_env("scheduler"))
    return 0
