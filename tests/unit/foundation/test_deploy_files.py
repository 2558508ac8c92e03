"""The deployment files stay consistent with the code they run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from calsync.config import Mode, Settings

ROOT = Path(__file__).resolve().parents[3]


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_runs_every_process_of_the_stack() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "api", "worker", "scheduler", "emulator"} <= services.keys()
    assert services["api"]["command"][:2] == ["calsync", "serve"]
    assert services["worker"]["command"][:2] == ["calsync", "worker"]
    assert services["scheduler"]["command"] == ["calsync", "scheduler"]


def test_compose_environment_is_a_valid_production_configuration() -> None:
    environment = compose()["services"]["api"]["environment"]
    settings = Settings.from_env({str(k): str(v) for k, v in environment.items()})
    assert settings.mode is Mode.PRODUCTION
    assert settings.uses_emulator


def test_image_runs_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in dockerfile if line.startswith("USER ")]
    assert users
    assert users[-1] not in {"root", "0"}


def _host_port(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    assert parts.hostname is not None, url
    assert parts.port is not None, url
    return parts.hostname, parts.port


def test_compose_urls_work_from_the_hosts_browser_and_inside_the_network() -> None:
    """CALSYNC_PUBLIC_URL (the OAuth redirect) and GOOGLE_OAUTH_BASE (the consent page)
    are opened by a browser on the host, and also used by the containers (the emulator
    pushes to the first, the api exchanges codes at the second): each name must be a
    loopback name for the host (``localhost`` or ``*.localhost``, RFC 6761) with its port
    published there, and a network alias of the service that serves it."""
    services = compose()["services"]
    environment = services["api"]["environment"]
    for variable, service, port in [
        ("CALSYNC_PUBLIC_URL", "api", 8000),
        ("CALSYNC_GOOGLE_OAUTH_BASE", "emulator", 8765),
        ("CALSYNC_GOOGLE_API_BASE", "emulator", 8765),
    ]:
        host, url_port = _host_port(str(environment[variable]))
        assert host.endswith(".localhost"), (variable, host)
        assert url_port == port
        published = [str(p).split(":") for p in services[service]["ports"]]
        assert any(h.split("-")[0] == str(port) and c == str(port) for h, c in published)
        aliases = services[service]["networks"]["default"]["aliases"]
        assert host in aliases, (variable, aliases)


def test_the_worker_healthcheck_asks_its_metrics_process() -> None:
    worker = compose()["services"]["worker"]
    command = worker["command"]
    assert command[command.index("--metrics-port") + 1] == "9191"
    assert "http://127.0.0.1:9191/readyz" in " ".join(worker["healthcheck"]["test"])


@pytest.mark.parametrize(("age", "alive"), [(5, True), (299, True), (301, False), (None, False)])
def test_the_scheduler_healthcheck_reads_the_age_of_its_liveness_file(
    tmp_path: Path, age: float | None, alive: bool
) -> None:
    scheduler = compose()["services"]["scheduler"]
    path = scheduler["environment"]["CALSYNC_SCHEDULER_ALIVE_FILE"]
    test = scheduler["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    assert path in test[3]
    assert scheduler["environment"]["CALSYNC_DATABASE_URL"]  # the shared settings are kept
    ours = tmp_path / "scheduler.alive"
    if age is not None:
        ours.touch()
        os.utime(ours, (time.time() - age, time.time() - age))
    check = subprocess.run(
        [sys.executable, "-c", test[3].replace(path, str(ours))], capture_output=True
    )
    assert (check.returncode == 0) is alive
