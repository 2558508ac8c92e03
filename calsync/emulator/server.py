"""Running the emulator: in a background thread (tests, ``calsync dev``) or in front.

``EmulatorServer`` starts uvicorn on a daemon thread and returns once it listens;
port 0 picks a free port (read it back from ``.url``). ``run`` serves in the foreground
for ``calsync emulator --port 8765``.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn

from calsync.emulator.app import create_emulator_app
from calsync.emulator.state import EmulatorState

START_TIMEOUT_SECONDS = 10.0


class EmulatorServer:
    """An emulator served by uvicorn on a daemon thread; a context manager."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, state: EmulatorState | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.state = state or EmulatorState()
        self.app = create_emulator_app(self.state)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` without a trailing slash (valid once started)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmulatorServer:
        """Start serving and block until the socket listens.

        Raises RuntimeError if uvicorn stops during start-up (e.g. the port is taken),
        TimeoutError if it does not listen within 10 s.
        """
        if self._thread is not None:
            return self
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="calsync-emulator", daemon=True)
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the emulator could not start on {self.host}:{self.port}")
            if time.monotonic() > deadline:
                server.should_exit = True
                raise TimeoutError("the emulator did not start listening in time")
            time.sleep(0.005)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread (idempotent)."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(START_TIMEOUT_SECONDS)
        self._server, self._thread = None, None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run(host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the emulator in the foreground until interrupted (``calsync emulator``)."""
    print(
        f"calsync emulator on http://{host}:{port}\n"
        f"  api_endpoint: http://{host}:{port}/calendar/v3/\n"
        f"  OAuth:        http://{host}:{port}/o/oauth2/auth, /token\n"
        f"  control API:  http://{host}:{port}/emulator/"
    )
    uvicorn.run(create_emulator_app(), host=host, port=port, log_level="info")
