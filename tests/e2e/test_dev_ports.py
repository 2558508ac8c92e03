"""``calsync dev`` on a port that is taken: one line naming it and a non-zero exit, before
any banner or token is printed."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.dev_process import clean_env, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def taken() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def run_dev(folder: Path, *, port: int, emulator_port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-m", "calsync.cli", "dev",
            "--port", str(port), "--emulator-port", str(emulator_port),
        ],
        cwd=folder,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize("which", ["api", "emulator"])
def test_a_busy_port_is_one_line_and_a_failure_before_any_banner(
    tmp_path: Path, taken: int, which: str
) -> None:
    ports = {"port": taken, "emulator_port": free_port()}
    if which == "emulator":
        ports = {"port": free_port(), "emulator_port": taken}

    result = run_dev(tmp_path, **ports)

    assert result.returncode == 1
    assert result.stdout == ""  # no banner, no token
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    what = "the API" if which == "api" else "the emulator"
    assert lines[0].startswith(f"calsync: {what} cannot listen on 127.0.0.1:{taken}"), lines
    assert not (tmp_path / "calsync.db").exists()  # nothing was started
