"""``calsync worker`` as a real process that a test can kill -9 and start again."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import sqlalchemy as sa

from calsync.bootstrap import Services
from calsync.config import Settings
from calsync.store.tables import QueueHeartbeat


def env_for(settings: Settings) -> dict[str, str]:
    """The ``CALSYNC_*`` environment under which a process reads `settings` back."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    base.update(
        {
            "CALSYNC_DATABASE_URL": settings.database_url,
            "CALSYNC_REDIS_URL": settings.redis_url or "",
            "CALSYNC_PUBLIC_URL": settings.public_url,
            "CALSYNC_GOOGLE_API_BASE": settings.google_api_base,
            "CALSYNC_GOOGLE_OAUTH_BASE": settings.google_oauth_base or "",
            "CALSYNC_GOOGLE_CLIENT_ID": settings.google_client_id,
            "CALSYNC_GOOGLE_CLIENT_SECRET": settings.google_client_secret,
            "CALSYNC_JWT_SECRET": settings.jwt_secret or "",
            "CALSYNC_ENCRYPTION_KEYS": ",".join(settings.encryption_keys),
            "CALSYNC_SYNC_LEASE_SECONDS": str(settings.sync_lease_seconds),
            "CALSYNC_SYNC_MIN_INTERVAL_SECONDS": str(int(settings.sync_min_interval_seconds)),
            "CALSYNC_OUTBOX_MAX_ATTEMPTS": str(settings.outbox_max_attempts),
            "CALSYNC_LOG_LEVEL": "WARNING",
        }
    )
    return base


class WorkerProcess:
    """``calsync worker --processes 1 --threads N`` in a session of its own.

    `kill` sends SIGKILL to that session's process group - the Dramatiq main process and
    its worker child, nothing else - as a crashed machine or an OOM kill would.
    """

    def __init__(self, settings: Settings, log_file: Path, *, threads: int = 2) -> None:
        self.settings = settings
        self.log_file = log_file
        self.threads = threads
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        calsync = Path(sys.executable).with_name("calsync")
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [str(calsync), "worker", "--processes", "1", "--threads", str(self.threads)],
                env=env_for(self.settings),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, services: Services, timeout: float = 60.0) -> None:
        """Block until the worker consumed a heartbeat job sent through `services`' broker
        (so it is connected and consuming)."""
        sent_at = services.clock()
        services.jobs.heartbeat.send(sent_at.isoformat())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the worker exited; see {self.log_file}")
            with services.sessions() as session:
                seen = session.scalar(
                    sa.select(QueueHeartbeat.sent_at).where(QueueHeartbeat.name == "queue")
                )
            if seen is not None and seen >= sent_at:
                return
            time.sleep(0.1)
        raise TimeoutError(f"the worker did not consume a job in {timeout} s; see {self.log_file}")

    def kill(self) -> None:
        """SIGKILL the worker's process group and reap it."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
