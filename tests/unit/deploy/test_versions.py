"""One version everywhere: the package's, `calsync --version`'s and the deploy files'
image tags; and every dependency pinned by constraints.txt."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import calsync

ROOT = Path(__file__).resolve().parents[3]
DEPLOY_FILES = [ROOT / "compose.yaml", *sorted((ROOT / "docs/deploy/kubernetes").glob("*.yaml"))]


def test_calsync_version_prints_the_package_version() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "calsync.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == f"calsync {calsync.__version__}"


def test_every_calsync_image_in_the_deploy_files_is_the_package_version() -> None:
    tags = {
        (path.name, tag)
        for path in DEPLOY_FILES
        for tag in re.findall(r"image:\s*\S*calsync:(\S+)", path.read_text())
    }
    assert tags, "no calsync image found in the deploy files"
    assert {tag for _, tag in tags} == {calsync.__version__}, tags


def test_the_docker_base_image_is_pinned_to_an_exact_release() -> None:
    bases = re.findall(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert bases
    assert all(re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", b) for b in bases), bases


def test_constraints_pin_every_line_to_one_version() -> None:
    lines = [
        line
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert len(lines) > 50
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.+!-]+", line) for line in lines), [
        line for line in lines if "==" not in line
    ]
    pinned = {line.split("==")[0].lower().replace("_", "-") for line in lines}
    assert {"sqlalchemy", "starlette", "dramatiq", "psycopg", "pytest"} <= pinned
