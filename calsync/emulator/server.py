"""Running the emulator: in a background thread (tests, ``calsync dev``) or in front.

``EmulatorServer`` starts uvicorn on a daemon thread and returns once it listens;
port 0 picks a free port (read it back from ``.url``); a state file keeps the world
across restarts. ``run`` serves in the foreground
for ``calsync emulator --port 8765``.
"""

from __future__ import annotations

import socket
from pathlib import Path

import uvicorn

from calsync.emulator.app import create_emulator_app
from calsync.emulator.persistence import StateFile
from calsync.emulator.state import EmulatorState
from calsync.threaded_server import ThreadedServer

#: Google's front ends keep idle connections open for minutes; uvicorn's 5 s default made
#: clients that pause between requests (building a 1,000-part batch on a busy machine) send
#: into a connection the emulator had just closed (BrokenPipeError).
KEEP_ALIVE_SECONDS = 120


class EmulatorServer(ThreadedServer):
    """An emulator served by uvicorn on a daemon thread; a context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        state: EmulatorState | None = None,
        state_file: Path | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        """With ``state_file``, the world is loaded from that file (when it exists) and
        every change is saved there (:mod:`calsync.emulator.persistence`).

        Raises:
            StateFileError: the file exists but cannot be used.
        """
        self.state = state or EmulatorState()
        persisted = StateFile(state_file) if state_file is not None else None
        if persisted is not None:
            persisted.load_into(self.state)
        super().__init__(
            create_emulator_app(self.state, state_file=persisted),
            host,
            port,
            name="calsync-emulator",
            keep_alive_seconds=KEEP_ALIVE_SECONDS,
            sock=sock,
        )


def run(host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the emulator in the foreground until interrupted (``calsync emulator``)."""
    print(
        f"calsync emulator on http://{host}:{port}\n"
        f"  api_endpoint: http://{host}:{port}/calendar/v3/\n"
        f"  OAuth:        http://{host}:{port}/o/oauth2/auth, /token\n"
        f"  control API:  http://{host}:{port}/emulator/"
    )
    uvicorn.run(
        create_emulator_app(),
        host=host,
        port=port,
        log_level="info",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
