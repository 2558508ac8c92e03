"""An ASGI app served by uvicorn on a daemon thread (the emulator, tests, benchmarks)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn

START_TIMEOUT_SECONDS = 10.0


class ThreadedServer:
    """Serves `app` on `host:port` (0: a free port) from a daemon thread; a context manager.

    `start` blocks until the socket listens; `url` is then ``http://host:port``. Idle
    keep-alive connections are closed after `keep_alive_seconds` (uvicorn's default is 5).
    With `sock` (already bound, e.g. by :func:`bind`), uvicorn serves on it instead of
    binding `host:port` itself.
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str = "calsync-http",
        keep_alive_seconds: int = 5,
        sock: socket.socket | None = None,
    ) -> None:
        self.app = app
        self.sock = sock
        self.keep_alive_seconds = keep_alive_seconds
        self.host = host
        self.port = port
        self.name = name
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` without a trailing slash (valid once started)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
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
            timeout_keep_alive=self.keep_alive_seconds,
        )
        server = uvicorn.Server(config)
        sockets = [self.sock] if self.sock is not None else None
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": sockets}, name=self.name, daemon=True
        )
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"{self.name} could not start on {self.host}:{self.port}")
            if time.monotonic() > deadline:
                server.should_exit = True
                raise TimeoutError(f"{self.name} did not start listening in time")
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class PortInUse(Exception):
    """The address is taken; the message is one line naming it."""


def bind(host: str, port: int, *, what: str) -> socket.socket:
    """A TCP socket bound to ``host:port`` for a server to listen on (as uvicorn binds:
    ``SO_REUSEADDR``, so a port in TIME_WAIT is free, one that listens is not).

    Raises:
        PortInUse: naming ``what`` should have listened there.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise PortInUse(f"{what} cannot listen on {host}:{port}: {err.strerror}") from None
    return sock
