"""The simulation's processes: the emulator, ``calsync dev`` and ``calsync serve``.

Each runs in a session of its own, so that `ServiceProcess.kill` (SIGKILL to that
process group) hits it and its children and nothing else. Workers are
`tests.faults.processes.WorkerProcess`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx2 as httpx

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0

#: The emulator on uvicorn without access logs (``calsync emulator`` logs every request,
#: which costs the simulation's 2 cores more than the emulator's work).
EMULATOR = (
    "import sys, uvicorn\n"
    "from calsync.emulator.app import create_emulator_app\n"
    "from calsync.emulator.server import KEEP_ALIVE_SECONDS\n"
    "uvicorn.run(create_emulator_app(), host='127.0.0.1', port=int(sys.argv[1]),\n"
    "            log_level='warning', access_log=False, timeout_keep_alive=KEEP_ALIVE_SECONDS)\n"
)


class ServiceProcess:
    """A command that serves HTTP at `url`; `start` returns once `url` + `probe` answers."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        url: str,
        log_file: Path,
        env: Mapping[str, str] | None = None,
        probe: str = "/healthz",
    ) -> None:
        self.argv = list(argv)
        self.url = url
        self.log_file = log_file
        self.env = dict(env if env is not None else os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO), self.env.get("PYTHONPATH", "")) if p
        )
        self.probe = probe
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.argv[:3]} exited; see {self.log_file}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url + self.probe).status_code < 500:
                        return self
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.argv[:3]} did not answer; see {self.log_file}")
                time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the process group and reap it."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """Ask it to stop (SIGINT, as Ctrl-C), SIGKILL after 30 s."""
        self._signal(signal.SIGINT, wait=30.0)

    def _signal(self, number: int, wait: float = 10.0) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, number)
        try:
            self.process.wait(wait)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None


def emulator_process(port: int, log_file: Path) -> ServiceProcess:
    return ServiceProcess(
        [sys.executable, "-c", EMULATOR, str(port)],
        url=f"http://127.0.0.1:{port}",
        log_file=log_file,
        probe="/emulator/config",
    )


def calsync_command(*args: str) -> list[str]:
    """``calsync <args>`` from this interpreter's environment."""
    return [str(Path(sys.executable).with_name("calsync")), *args]
