"""``calsync dev``: the whole embedded stack in one process, as a user starts it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_healthy(base: str, process: subprocess.Popen[str], timeout: float = 120) -> None:
    """Wait for /healthz: a bound on start-up that catches a hang, generous because a
    machine shared with other jobs starts a process slowly (30 s once was not enough)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"calsync dev exited early with {process.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.fail("calsync dev did not answer /healthz in time")


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[str], Path]]:
    port, emulator_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    log = tmp_path / "dev.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "calsync.cli", "dev",
                "--port", str(port), "--emulator-port", str(emulator_port),
            ],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(base, process)
            yield base, f"http://127.0.0.1:{emulator_port}", process, log
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def test_dev_serves_health_readiness_and_a_working_token(
    dev: tuple[str, str, subprocess.Popen[str], Path],
) -> None:
    base, emulator, _process, log = dev

    assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
    banner = log.read_text()
    token = re.search(r"export TOKEN=(\S+)", banner)
    assert token is not None, banner
    me = httpx.get(f"{base}/me", headers={"Authorization": f"Bearer {token.group(1)}"})
    assert me.status_code == 200
    assert me.json()["role"] == "admin"
    # The in-process emulator answers as Google's discovery-compatible API would.
    assert httpx.get(f"{emulator}/calendar/v3/users/me/calendarList").status_code == 401
    assert (log.parent / "calsync.db").is_file()


def test_dev_stops_cleanly_on_interrupt(dev: tuple[str, str, subprocess.Popen[str], Path]) -> None:
    _base, _emulator, process, _log = dev

    process.send_signal(signal.SIGINT)

    assert process.wait(timeout=20) == 0


def test_the_dev_admin_can_create_an_event_that_reaches_the_emulator(
    dev: tuple[str, str, subprocess.Popen[str], Path],
) -> None:
    base, _emulator, _process, log = dev
    token = re.search(r"export TOKEN=(\S+)", log.read_text())
    assert token is not None
    headers = {"Authorization": f"Bearer {token.group(1)}"}
    # Given the admin's calendars were connected at start (as a Google sign-in would)
    deadline = time.monotonic() + 20
    while not httpx.get(f"{base}/calendars", headers=headers).json()["calendars"]:
        assert time.monotonic() < deadline, "the dev admin's calendars were never connected"
        time.sleep(0.1)
    # When the banner's POST is sent
    created = httpx.post(
        f"{base}/events",
        headers=headers,
        json={
            "title": "Hello",
            "start_time": "2026-12-01T09:00:00+01:00",
            "end_time": "2026-12-01T10:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    )
    assert created.status_code == 201, created.text
    # Then the worker threads write it to the emulator and the event becomes synced
    event_id = created.json()["id"]
    while (state := httpx.get(f"{base}/events/{event_id}", headers=headers).json())[
        "sync_state"
    ] != "synced":
        assert state["sync_state"] == "pending", state
        assert time.monotonic() < deadline + 10, "the event never reached the emulator"
        time.sleep(0.1)
