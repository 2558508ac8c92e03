"""The deployment files stay consistent with the code they run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
