"""``calsync worker`` with ``PROMETHEUS_MULTIPROC_DIR``: the counters of its worker
processes are served on ``--metrics-port``, and the directory starts empty."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx2 as httpx
import pytest
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from tests.e2e.test_shutdown import ROOT, free_port
from tests.integration.sync.conftest import wait_until

pytestmark = pytest.mark.e2e


def heartbeats_done(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "calsync_jobs_total"
        and sample.labels == {"actor": "heartbeat", "outcome": "ok"}
    )


def production_env(pg_url: str, redis_url: str, directory: Path) -> dict[str, str]:
    """The environment of a production-mode process sharing `directory` for its metrics
    files (created, with a stale file an earlier run might have left)."""
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"left by an earlier run")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALSYNC_", "PROMETHEUS_"))}
    return env | {
        "CALSYNC_DATABASE_URL": pg_url,
        "CALSYNC_REDIS_URL": redis_url,
        "CALSYNC_PUBLIC_URL": "https://calsync.example.com",
        "CALSYNC_JWT_SECRET": "w" * 48,
        "CALSYNC_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "CALSYNC_GOOGLE_CLIENT_ID": "client",
        "CALSYNC_GOOGLE_CLIENT_SECRET": "secret",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }


def test_worker_processes_counters_are_served_on_the_metrics_port(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "metrics"
    env = production_env(pg_url, redis_url, directory)
    port = free_port()
    command = [sys.executable, "-m", "calsync.cli", "worker", "--processes", "2"]
    command += ["--threads", "1", "--metrics-port", str(port)]
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    services = bootstrap(Settings.from_env(env))
    try:
        # Given a running worker whose directory held a stale file
        def scrape() -> str | None:
            assert worker.poll() is None, log.read_text()
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/metrics")
            except httpx.TransportError:
                return None
            assert response.status_code == 200
            return response.text

        wait_until(lambda: scrape() is not None, timeout=60, what="the worker's metrics port")
        assert not (directory / "counter_999999.db").exists()

        # When it runs four heartbeat jobs (spread over its two processes)
        for _ in range(4):
            services.jobs.heartbeat.send(datetime.now(UTC).isoformat())

        # Then its metrics port counts all four
        wait_until(lambda: heartbeats_done(scrape() or "") == 4, timeout=60, what="4 heartbeats")
    finally:
        services.close()
        worker.send_signal(signal.SIGTERM)
        status = worker.wait(timeout=90)
    assert status == 0, log.read_text()


def test_api_processes_share_one_count_on_metrics(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "metrics"
    env = production_env(pg_url, redis_url, directory)
    port = free_port()
    command = [sys.executable, "-m", "calsync.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "2"]
    log = tmp_path / "api.log"
    with log.open("wb") as output:
        api = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        # Given two uvicorn processes, both up (each has written its files)
        def up() -> bool:
            assert api.poll() is None, log.read_text()
            try:
                answered = httpx.get(f"{base}/healthz").status_code == 200
            except httpx.TransportError:
                return False
            return answered and len(list(directory.glob("counter_*.db"))) >= 2

        wait_until(up, timeout=60, what="two api processes")
        assert not (directory / "counter_999999.db").exists()

        # When /readyz is asked 20 times on fresh connections (either process answers)
        for _ in range(20):
            with httpx.Client() as client:
                assert client.get(f"{base}/readyz").status_code == 200

        # Then /metrics, from whichever process, counts all 20
        for _ in range(3):
            text = httpx.get(f"{base}/metrics").text
            line = 'calsync_http_requests_total{method="GET",route="/readyz",status="200"} 20.0'
            assert line in text
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(timeout=90)
