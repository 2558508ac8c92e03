"""A wheel built from the repository migrates and answers readiness from any folder: the
migrations travel inside it (the repository's migrations/ as calsync.migrations), and
every package folder is listed in pyproject.toml."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_for_the_wheel() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("calsync", "workers")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert on_disk <= listed, sorted(on_disk - listed)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy of what the wheel is made of: setuptools keeps a build/ folder in
    # the source tree, which could hand a stale build to this test.
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("calsync", "workers", "migrations"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("calsync-*.whl")
    return built


def test_the_wheel_holds_every_migration(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"calsync/migrations/versions/{p.name}" for p in (ROOT / "migrations/versions").glob("*.py")
    }
    assert expected
    assert expected <= names
    assert {"calsync/migrations/env.py", "calsync/migrations/script.py.mako"} <= names


def test_an_installed_wheel_migrates_and_is_ready_from_another_folder(
    wheel: Path, tmp_path: Path
) -> None:
    # Given the wheel installed on its own (its dependencies are this environment's)
    target, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    env |= {"PYTHONPATH": str(target), "CALSYNC_STATE_DIR": str(elsewhere)}

    def calsync(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "import sys, calsync.cli; sys.exit(calsync.cli.main())", *args],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    where = subprocess.run(
        [sys.executable, "-c", "import calsync; print(calsync.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(target)), where.stdout
    # When it migrates the embedded database in a folder with no migrations/ beside it
    migrated = calsync("migrate")
    assert migrated.returncode == 0, migrated.stderr
    # Then readiness (database, migrations at head, broker) holds
    ready = calsync("ready")
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert json.loads(ready.stdout.strip().splitlines()[-1]) == {
        "database": "ok",
        "migrations": "ok",
        "broker": "ok",
    }
