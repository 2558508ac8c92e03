"""``calsync worker`` as a real process: every line it writes is one JSON object (Dramatiq's
main process included), each job ends with one line of its own, and the pod's readiness
endpoint answers on the metrics port."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from tests.e2e.test_shutdown import ROOT, free_port
from tests.e2e.test_worker_metrics import production_env
from tests.integration.sync.conftest import wait_until

pytestmark = pytest.mark.e2e


def test_every_worker_line_is_json_and_jobs_log_one_line_each(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = production_env(pg_url, redis_url, tmp_path / "metrics")
    port = free_port()
    command = [sys.executable, "-m", "calsync.cli", "worker", "--processes", "1"]
    command += ["--threads", "1", "--metrics-port", str(port)]
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)
    try:
        # Given a worker that ran a heartbeat job
        services = bootstrap(Settings.from_env(env))
        try:
            services.jobs.heartbeat.send(datetime.now(UTC).isoformat())
        finally:
            services.close()

        def heartbeat_line() -> dict[str, Any] | None:
            assert worker.poll() is None, log.read_text()
            for line in log.read_text().splitlines():
                if '"job finished"' in line and '"heartbeat"' in line:
                    entry: dict[str, Any] = json.loads(line)
                    return entry
            return None

        done = wait_until(heartbeat_line, timeout=60, what="a heartbeat job")
        assert done["outcome"] == "ok"
        assert done["attempt"] == 1
        assert done["duration_ms"] >= 0
        # When the readiness endpoint is asked, again and again
        for _ in range(5):
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {
                "database": "ok",
                "migrations": "ok",
                "broker": "ok",
            }
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    # Then every line is JSON, Dramatiq's main process's too
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    loggers = {entry["logger"] for entry in entries}
    assert "dramatiq.MainProcess" in loggers
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    # And the readiness probes left no line behind (Alembic logged two per check)
    assert [entry for entry in entries if entry["logger"].startswith("alembic")] == []
