"""``calsync migrate`` and ``alembic upgrade head`` need the database URL and nothing else:
a Kubernetes migrate job must not need the Google secret, Redis or the JWT secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from calsync.store.db import make_engine
from calsync.store.migrate import is_at_head

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def bare_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any CALSYNC_ setting, plus `settings`."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    return kept | {f"CALSYNC_{k}": v for k, v in settings.items()}


@pytest.mark.parametrize("command", ["calsync", "alembic"])
def test_migrating_postgresql_needs_only_the_database_url(empty_pg_url: str, command: str) -> None:
    argv = (
        [sys.executable, "-m", "calsync.cli", "migrate"]
        if command == "calsync"
        else [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "head"]
    )
    done = subprocess.run(
        argv,
        env=bare_environment(DATABASE_URL=empty_pg_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    engine = make_engine(empty_pg_url)
    try:
        assert is_at_head(engine)
    finally:
        engine.dispose()


def test_migrating_the_embedded_file_writes_no_secrets(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "calsync.cli", "migrate"],
        env=bare_environment(STATE_DIR=str(tmp_path)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("calsync.db-")) == [
        "calsync.db"
    ]
    engine = make_engine(f"sqlite:///{tmp_path / 'calsync.db'}")
    try:
        assert is_at_head(engine)
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM users")).scalar_one() == 0
    finally:
        engine.dispose()
