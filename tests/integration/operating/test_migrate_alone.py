"""``calsync migrate`` and ``alembic upgrade head`` need the database URL and nothing else:
a Kubernetes migrate job must not need the Google secret, Redis or the JWT secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from calsync.store.db import make_engine
from calsync.store.migrate import alembic_config, is_at_head, upgrade

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


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migrating_to_an_older_revision_is_refused_and_changes_nothing(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    """Alembic's upgrade to a revision the database is past does nothing and says so
    nowhere: ``calsync migrate --revision <older>`` must say it is refused, exit 1, and
    leave the database at head."""
    url = (
        f"sqlite:///{tmp_path / 'calsync.db'}"
        if kind == "sqlite"
        else request.getfixturevalue("empty_pg_url")
    )
    engine = make_engine(url)
    try:
        upgrade(engine)
        scripts = ScriptDirectory.from_config(alembic_config())
        head = scripts.get_revision(scripts.get_current_head())
        older = head.down_revision
        assert isinstance(older, str)
        done = subprocess.run(
            [sys.executable, "-m", "calsync.cli", "migrate", "--revision", older],
            env=bare_environment(DATABASE_URL=url),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip() == (
            f"calsync: migration refused: the database is at revision {head.revision}, past"
            f" {older}: migrate only upgrades; a downgrade is Alembic's `alembic downgrade`"
            " from a checkout (docs/operations.md). Nothing was changed."
        )
        assert "migrated" not in done.stdout
        assert is_at_head(engine)
    finally:
        engine.dispose()
