"""One database connection per request, and a bounded number of requests holding one.

`RequestConnectionMiddleware` gives each HTTP request a `RequestConnection` (decision
U1): authentication checks it out for its read (`calsync.web.auth.principal`), and the
route's sessions run on the same connection; it goes back to the pool when the answer is
sent. A request takes a permit (`ConnectionPermits`, as many as the pool keeps open)
before it checks out, waiting on the event loop rather than in a worker thread: a thread
never waits for a connection that a request waiting for a thread holds.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from calsync.store.db import RequestConnection, held_connection, holding

__all__ = ["ConnectionPermits", "RequestConnectionMiddleware", "use_request_connection"]


class ConnectionPermits:
    """`count` permits to hold a request connection, for the running event loop (a new
    loop, as each test client starts, gets fresh permits)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None

    def _current(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._loop, self._semaphore = loop, asyncio.Semaphore(self.count)
        return self._semaphore

    async def acquire(self) -> None:
        await self._current().acquire()

    def release(self) -> None:
        self._current().release()


class _Held(RequestConnection):
    """A request's connection with the permits it may take one from."""

    def __init__(self, engine: Engine, permits: ConnectionPermits) -> None:
        super().__init__(engine)
        self.permits = permits


async def use_request_connection(engine: Engine) -> RequestConnection | None:
    """The current request's connection for `engine`, with its permit taken (waiting for
    one if need be); None outside `RequestConnectionMiddleware`."""
    held = held_connection(engine)
    if held is None:
        return None
    if not held.permitted and isinstance(held, _Held):
        await held.permits.acquire()
        held.permitted = True
    return held


class RequestConnectionMiddleware:
    """Holds the request's connection (see the module docstring) and returns it, with its
    permit, once the request is answered."""

    def __init__(self, app: ASGIApp, *, engine: Engine, permits: ConnectionPermits) -> None:
        self.app = app
        self.engine = engine
        self.permits = permits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held = _Held(self.engine, self.permits)
        try:
            with holding(held):
                await self.app(scope, receive, send)
        finally:
            try:
                if held.needs_io_to_close():
                    await run_in_threadpool(held.close)
                else:
                    held.close()  # back to the pool: no I/O (RequestConnection)
            finally:
                if held.permitted:
                    self.permits.release()
