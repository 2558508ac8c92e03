"""``calsync dev`` as a person runs it: a real process in a state folder, and a browser's
sign-in against it. Shared by the e2e tests of dev mode."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import httpx2 as httpx
import pytest

START_SECONDS = 90  # a bound that catches a hang; a loaded machine starts slowly
SETTLE_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any ``CALSYNC_`` setting (embedded mode), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    return env | extra


def eventually(check: Callable[[], Any], what: str, timeout: float = SETTLE_SECONDS) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen in {timeout} s")
        time.sleep(0.1)


class DevProcess:
    """One run of ``calsync dev --port P --emulator-port E`` in ``folder``; its output
    (banner and logs) goes to ``folder/dev-<n>.log``."""

    runs = 0

    def __init__(self, folder: Path, *, port: int, emulator_port: int) -> None:
        self.folder = folder
        self.port = port
        self.emulator_port = emulator_port
        self.base = f"http://127.0.0.1:{port}"
        self.emulator = f"http://127.0.0.1:{emulator_port}"
        DevProcess.runs += 1
        self.log = folder / f"dev-{DevProcess.runs}.log"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> Self:
        with self.log.open("w") as output:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "calsync.cli", "dev",
                    "--port", str(self.port), "--emulator-port", str(self.emulator_port),
                ],
                cwd=self.folder,
                env=clean_env(),
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_SECONDS
        while "export TOKEN=" not in self.output():
            if self.process.poll() is not None:
                pytest.fail(f"calsync dev exited with {self.process.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"calsync dev printed no banner in time:\n{self.output()}")
            time.sleep(0.1)
        eventually(self._healthy, "calsync dev answering /healthz")
        return self

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def admin_token(self) -> str:
        found = re.search(r"export TOKEN=(\S+)", self.output())
        assert found is not None, self.output()
        return found.group(1)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send ``sig`` and wait for the exit status."""
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=30)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def sign_in(base: str, email: str | None, *, host: str = "127.0.0.1") -> httpx.Response:
    """A browser's Google sign-in, starting at ``http://<host>:<port>/auth/google``: it
    follows every redirect and keeps cookies per host, as a browser does."""
    port = base.rsplit(":", 1)[1]
    params = {"login_hint": email} if email else {}
    with httpx.Client(follow_redirects=True, timeout=20) as browser:
        return browser.get(f"http://{host}:{port}/auth/google", params=params)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
