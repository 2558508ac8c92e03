"""``calsync serve`` with ``CALSYNC_METRICS_PORT`` and ``CALSYNC_METRICS_TOKEN``: the API port
has no ``/metrics``; the metrics port serves, to the token's bearer only, the counts of every
API process and the state metrics."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.e2e.test_shutdown import ROOT, free_port
from tests.e2e.test_worker_metrics import production_env
from tests.integration.sync.conftest import wait_until

pytestmark = pytest.mark.e2e

TOKEN = "scrape-" + "s" * 40


def test_metrics_are_served_on_their_own_port_to_the_token_only(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = production_env(pg_url, redis_url, tmp_path / "metrics")
    api_port, metrics_port = free_port(), free_port()
    env |= {"CALSYNC_METRICS_PORT": str(metrics_port), "CALSYNC_METRICS_TOKEN": TOKEN}
    command = [sys.executable, "-m", "calsync.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(api_port), "--workers", "2"]
    log = tmp_path / "api.log"
    with log.open("wb") as output:
        api = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    base, metrics = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{metrics_port}"
    try:

        def up() -> bool:
            assert api.poll() is None, log.read_text()
            try:
                return httpx.get(f"{base}/healthz").status_code == 200 and (
                    httpx.get(f"{metrics}/metrics").status_code == 401
                )
            except httpx.TransportError:
                return False

        wait_until(up, timeout=60, what="the api and its metrics port")
        # When the API answers 10 probes (either process)
        for _ in range(10):
            with httpx.Client() as client:
                assert client.get(f"{base}/readyz").status_code == 200

        # Then the API port has no /metrics, and the metrics port needs the token
        assert httpx.get(f"{base}/metrics").status_code == 404
        assert httpx.get(f"{metrics}/metrics").status_code == 401
        scraped = httpx.get(f"{metrics}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert scraped.status_code == 200
        # And it counts the probes of both processes, with the state metrics
        line = 'calsync_http_requests_total{method="GET",route="/readyz",status="200"} 10.0'
        assert line in scraped.text
        assert 'calsync_state_source_up{source="database"} 1.0' in scraped.text
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(timeout=90)
