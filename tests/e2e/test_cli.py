"""The ``calsync`` command, run as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from calsync.bootstrap import jwt_config
from calsync.config import Settings
from calsync.web.auth.tokens import verify_token

pytestmark = pytest.mark.e2e


def calsync(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "calsync.cli", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_token_mints_a_jwt_the_server_accepts_for_a_new_user(tmp_path: Path) -> None:
    result = calsync("token", "--email", "Ops@Example.com", "--role", "admin", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    claims = verify_token(jwt_config(Settings.embedded(tmp_path)), token)
    assert claims.email == "ops@example.com"
    assert claims.role == "admin"


def test_token_for_the_same_email_keeps_the_same_user(tmp_path: Path) -> None:
    first = calsync("token", "--email", "a@example.com", cwd=tmp_path).stdout.strip()
    second = calsync("token", "--email", "A@example.com", cwd=tmp_path).stdout.strip()
    config = jwt_config(Settings.embedded(tmp_path))

    assert verify_token(config, first).subject == verify_token(config, second).subject
    assert verify_token(config, second).role == "user"


def test_missing_production_settings_stop_the_command_with_their_names(tmp_path: Path) -> None:
    # (migrate needs the database URL alone: tests/integration/operating/test_migrate_alone.py)
    result = calsync(
        "token",
        "--email",
        "ops@example.com",
        cwd=tmp_path,
        env={"CALSYNC_DATABASE_URL": "postgresql://x@127.0.0.1/x"},
    )

    assert result.returncode == 2
    assert "CALSYNC_REDIS_URL" in result.stderr
    assert "CALSYNC_JWT_SECRET" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_then_token_in_production_mode(tmp_path: Path, pg_url: str, redis_url: str) -> None:
    env = {
        "CALSYNC_DATABASE_URL": pg_url,
        "CALSYNC_REDIS_URL": redis_url,
        "CALSYNC_PUBLIC_URL": "http://127.0.0.1:8000",
        "CALSYNC_GOOGLE_API_BASE": "http://127.0.0.1:8765",
        "CALSYNC_JWT_SECRET": "s" * 40,
        "CALSYNC_ENCRYPTION_KEYS": "7zKQtQd7b3uX7VdV6pr2t3Wn5yq8ZrEw0m9u9xQ2JwE=",
        "CALSYNC_GOOGLE_CLIENT_ID": "id",
        "CALSYNC_GOOGLE_CLIENT_SECRET": "secret",
    }
    assert calsync("migrate", cwd=tmp_path, env=env).returncode == 0

    result = calsync("token", "--email", "ops@example.com", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.count(".") == 2


def test_budget_prints_the_days_spend_from_redis(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    import json
    from datetime import UTC, datetime

    import redis

    from calsync.providers.budget import quota_day

    env = {
        "CALSYNC_DATABASE_URL": pg_url,
        "CALSYNC_REDIS_URL": redis_url,
        "CALSYNC_PUBLIC_URL": "http://127.0.0.1:8000",
        "CALSYNC_GOOGLE_API_BASE": "http://127.0.0.1:8765",
        "CALSYNC_JWT_SECRET": "s" * 40,
        "CALSYNC_ENCRYPTION_KEYS": "7zKQtQd7b3uX7VdV6pr2t3Wn5yq8ZrEw0m9u9xQ2JwE=",
        "CALSYNC_GOOGLE_CLIENT_ID": "id",
        "CALSYNC_GOOGLE_CLIENT_SECRET": "secret",
        "CALSYNC_GOOGLE_DAILY_BUDGET": "5000",
    }
    # Given other processes spent today's budget (as the workers' limiter records it)
    client = redis.Redis.from_url(redis_url)
    day = quota_day(datetime.now(UTC)).isoformat()
    client.hset(f"calsync:google-budget:{day}", mapping={"write": 7, "poll": 40})
    client.close()

    result = calsync("budget", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["budget"] == 5000
    assert report["spent"] == {"write": 7, "interactive": 0, "notification": 0, "poll": 40}
    assert report["ceilings"]["poll"] == 3000
    assert report["forecast_scheduled"] == 47


@pytest.mark.parametrize("command", [["worker", "--metrics-port", "0"], ["scheduler"]])
def test_a_background_process_without_production_settings_stops_at_once(
    tmp_path: Path, command: list[str]
) -> None:
    # Given none of the production settings (the operator forgot the worker's environment)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    # When the worker or the scheduler starts
    try:
        result = subprocess.run(
            [sys.executable, "-m", "calsync.cli", *command],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"calsync {command[0]} ran on in embedded mode, serving no queue (JD4)")
    # Then it stops with one line naming what to set (decision JD4), and made nothing:
    # no SQLite file of its own, which it would sweep (the scheduler) or no queue of its
    # own nobody sends to (the worker)
    assert result.returncode == 2, result.stderr
    assert "CALSYNC_DATABASE_URL" in result.stderr
    assert "CALSYNC_REDIS_URL" in result.stderr
    assert "calsync dev" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
