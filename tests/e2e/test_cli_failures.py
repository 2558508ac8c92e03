"""``calsync`` as a real process: a failure the operator must fix is one line on stderr and
a non-zero status, never a traceback; ``--help`` shows defaults; a key rotation shows
progress."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.store.credentials import save_tokens
from calsync.store.secrets import Secret
from calsync.store.tables import utcnow
from calsync.store.users import ensure_user
from tests.e2e.test_cli import calsync
from tests.e2e.test_rotate_keys import NEW_KEY, OLD_KEY, env_for

pytestmark = pytest.mark.e2e

#: A database that refuses connections, with a password that must never be echoed.
DOWN_DATABASE = "postgresql://calsync:pa55word-never-shown@127.0.0.1:9/calsync"


def _one_line_failure(result: subprocess.CompletedProcess[str], status: int) -> str:
    assert result.returncode == status, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("calsync: ")
    return lines[0]


def test_a_configuration_error_is_one_line_naming_every_setting(tmp_path: Path) -> None:
    env = {"CALSYNC_DATABASE_URL": "postgresql://x@127.0.0.1/x"}
    line = _one_line_failure(calsync("token", "--email", "a@b.c", cwd=tmp_path, env=env), 2)
    for name in ("CALSYNC_REDIS_URL", "CALSYNC_PUBLIC_URL", "CALSYNC_ENCRYPTION_KEYS"):
        assert name in line


@pytest.mark.parametrize(
    "args",
    [("migrate",), ("token", "--email", "a@b.c"), ("rotate-keys",)],
    ids=["migrate", "token", "rotate-keys"],
)
def test_an_unreachable_database_is_one_line_without_the_password(
    production_settings: Settings, tmp_path: Path, args: tuple[str, ...]
) -> None:
    env = env_for(replace(production_settings, database_url=DOWN_DATABASE), OLD_KEY)
    line = _one_line_failure(calsync(*args, cwd=tmp_path, env=env), 1)
    assert "CALSYNC_DATABASE_URL" in line
    assert "pa55word" not in line


def test_a_missing_key_file_is_one_line(production_settings: Settings, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "jwt.pem"
    env = env_for(production_settings, OLD_KEY) | {
        "CALSYNC_JWT_ALGORITHM": "RS256",
        "CALSYNC_JWT_PRIVATE_KEY_FILE": str(missing),
        "CALSYNC_JWT_PUBLIC_KEY_FILE": str(missing),
    }
    result = calsync("token", "--email", "a@b.c", cwd=tmp_path, env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "CALSYNC_JWT_PRIVATE_KEY_FILE" in result.stderr


def _stored_under_old_key(settings: Settings, users: int) -> None:
    old = bootstrap(replace(settings, encryption_keys=(OLD_KEY,)))
    try:
        with old.sessions.begin() as session:
            for n in range(users):
                user = ensure_user(session, f"user{n}@example.com")
                save_tokens(
                    session,
                    old.secrets,
                    user_id=user.id,
                    access_token=Secret(f"access-{n}"),
                    refresh_token=Secret(f"refresh-{n}"),
                    expires_at=utcnow(),
                    scopes="calendar",
                )
    finally:
        old.close()


def test_a_secret_no_key_decrypts_is_one_line(
    production_settings: Settings, tmp_path: Path
) -> None:
    # Given tokens stored under a key the operator then dropped from the list
    _stored_under_old_key(production_settings, 1)
    env = env_for(production_settings, NEW_KEY)
    line = _one_line_failure(calsync("rotate-keys", cwd=tmp_path, env=env), 1)
    assert "CALSYNC_ENCRYPTION_KEYS" in line


def test_a_key_rotation_shows_its_progress(production_settings: Settings, tmp_path: Path) -> None:
    _stored_under_old_key(production_settings, 3)
    env = env_for(production_settings, f"{NEW_KEY},{OLD_KEY}")
    result = calsync("rotate-keys", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "calsync: rows checked: 3/3" in result.stderr.splitlines()
    assert "re-encrypted 6 stored secret(s)" in result.stdout


def test_a_migration_shows_each_revision_as_it_runs(empty_pg_url: str, tmp_path: Path) -> None:
    result = calsync("migrate", cwd=tmp_path, env={"CALSYNC_DATABASE_URL": empty_pg_url})
    assert result.returncode == 0, result.stderr
    steps = [line for line in result.stderr.splitlines() if "Running upgrade" in line]
    revisions = list(
        (Path(__file__).resolve().parents[2] / "migrations" / "versions").glob("0*.py")
    )
    assert len(steps) == len(revisions), result.stderr
    assert all(line.startswith("calsync: migrate: Running upgrade") for line in steps)


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("serve", ["(default: 8000)", "(default: 0.0.0.0)", "(default: 2048)", "(default: 75)"]),
        ("serve-webhooks", ["(default: 8001)", "(default: 0.0.0.0)", "(default: 75)"]),
        ("worker", ["(default: 2)", "(default: 8)", "(default: 9191)"]),
        ("dev", ["(default: 8000)", "(default: 127.0.0.1)"]),
        ("migrate", ["(default: head)"]),
        ("emulator", ["(default: 8765)"]),
    ],
)
def test_help_shows_defaults(tmp_path: Path, command: str, shown: list[str]) -> None:
    result = calsync(command, "--help", cwd=tmp_path)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for default in shown:
        assert default in text, text


def test_help_names_only_files_that_exist(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    text = calsync("--help", cwd=tmp_path).stdout
    named = [word.strip("().,:;`") for word in text.split() if ".md" in word]
    assert named, text
    for name in named:
        assert (root / name).is_file() or (root / "docs" / name).is_file(), name


def test_the_cli_module_runs_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "calsync.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("calsync ")
