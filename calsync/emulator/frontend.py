"""The emulator's front end: faults, latency, connection resets and the request log.

Wraps every Google-facing request (Calendar API, batch parts, OAuth) but not the
``/emulator/`` control API. Order per request: pick the faults that fire (consuming
them), wait out injected latency, expire the token if asked, then either answer with
the fault, reset the connection, or hand the request on; an ``after_write`` fault lets
the request complete and replaces a successful answer (an ``after_write`` latency holds
the handled request's answer back; a ``drop_items`` fault thins a successful answer's
``items`` out instead). Finally one log entry - unless the emulator was reset
meanwhile: a request held across a reset does not appear in the new log.

Connection resets: uvicorn gives ASGI apps no way to drop a connection, so
:func:`abort_connection` finds the transport behind uvicorn's ``send`` callable and
aborts it with SO_LINGER 0 (the client sees a TCP RST, ``ConnectionResetError``). Under
a server that hides its transport the reset degrades to an exception (500).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calsync.emulator import errors, timefmt
from calsync.emulator.faults import Fault
from calsync.emulator.request_log import LoggedRequest
from calsync.emulator.state import EmulatorState

BATCH_SCOPE_KEY = "calsync.emulator.batch"
USER_SCOPE_KEY = "calsync.emulator.user"
RAW_SEND_KEY = "calsync.emulator.raw_send"  # the server's own send, for resets in batches
ABORTED_KEY = "calsync.emulator.aborted"  # set once the connection has been reset
GENERATION_KEY = "calsync.emulator.generation"  # the state's generation when it began


class ConnectionAbort(Exception):
    """The server does not let the emulator reset a connection (answered as a 500)."""


def _transport_owner(send: Send) -> Any:
    owner = getattr(send, "__self__", None)
    transport = getattr(owner, "transport", None)
    return owner if transport is not None and hasattr(transport, "abort") else None


async def abort_connection(send: Send) -> None:
    """Close the client's connection without an answer (TCP RST)."""
    owner = _transport_owner(send)
    if owner is None:
        raise ConnectionAbort("this server does not expose its transport; cannot reset")
    transport = owner.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Without SO_LINGER the abort is still a close: the client then sees EOF, not RST.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    for _ in range(100):  # let uvicorn's connection_lost run so it sends nothing itself
        if getattr(owner, "disconnected", False):
            break
        await asyncio.sleep(0)


def _bearer(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            text = bytes(value).decode("latin-1")
            if text[:7].lower() == "bearer ":
                return text[7:].strip()
    return None


class FrontEnd:
    """ASGI wrapper around the Google-facing routes (see module docstring)."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/emulator"):
            await self.app(scope, receive, send)
            return
        state = self.state
        scope.setdefault(RAW_SEND_KEY, send)
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        token = _bearer(scope)
        with state.lock:
            generation = state.generation
            found = state.accounts.access_tokens.get(token) if token else None
            user = found.email if found is not None else None
            faults = state.faults.for_request(method, path, user)
        scope[GENERATION_KEY] = generation
        status: int | None = None
        fired = list(faults.fired)
        try:
            if faults.latency_ms:
                await _hold(faults.latency_ms)
            if faults.expire_token and token is not None:
                with state.lock:
                    state.accounts.expire_access(token, now=state.clock.now())
            if faults.before is not None:
                status = await self._fire(faults.before, scope, send)
            elif faults.after is not None:
                status = await self._after_write(faults.after, scope, receive, send, fired)
            else:
                status = await self._forward(scope, receive, send, faults.latency_after_ms)
        finally:
            self._log(scope, status, user, started, fired)

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, latency_after_ms: int = 0
    ) -> int | None:
        status: int | None = None

        async def watching_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if latency_after_ms:  # handled (written); hold the answer back
                    await _hold(latency_after_ms)
            await send(message)

        await self.app(scope, receive, watching_send)
        return None if scope.get(ABORTED_KEY) else status

    async def _after_write(
        self, fault: Fault, scope: Scope, receive: Receive, send: Send, fired: list[str]
    ) -> int | None:
        held: list[Message] = []

        async def holding_send(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, holding_send)
        status = next((int(m["status"]) for m in held if m["type"] == "http.response.start"), 500)
        if status < 400:
            with self.state.lock:
                fault.consume()
            fired.append(fault.id)
            if fault.kind == "drop_items":
                return await _send_thinned(held, fault.keep, send)
            return await self._fire(fault, scope, send)
        for message in held:
            await send(message)
        return status

    async def _fire(self, fault: Fault, scope: Scope, send: Send) -> int | None:
        if fault.kind == "reset":
            await abort_connection(scope.get(RAW_SEND_KEY, send))
            scope[ABORTED_KEY] = True
            return None
        error = errors.from_status(
            fault.status, fault.reason, fault.message, domain=fault.domain, headers=fault.headers
        )
        response = error.to_response()
        await response(scope, _no_receive, send)
        return fault.status

    def _log(
        self,
        scope: Scope,
        status: int | None,
        token_user: str | None,
        started: float,
        fired: list[str],
    ) -> None:
        state = self.state
        with state.lock:
            if scope.get(GENERATION_KEY, state.generation) != state.generation:
                return  # began before a reset: not part of the new log
            entry = LoggedRequest(
                method=scope["method"],
                path=scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
                status=status,
                user=scope.get(USER_SCOPE_KEY) or token_user,
                timestamp=timefmt.utc_millis(state.clock.now()),
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                batch=bool(scope.get(BATCH_SCOPE_KEY)),
                faults=tuple(fired),
            )
            state.requests.append(entry)


async def _send_thinned(held: list[Message], keep: int, send: Send) -> int:
    """Send a held JSON answer with only the first `keep` of its ``items``."""
    start = next(m for m in held if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
    document = json.loads(body)
    if isinstance(document, dict) and isinstance(document.get("items"), list):
        document["items"] = document["items"][:keep]
    thinned = json.dumps(document).encode()
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(thinned)).encode()))
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": thinned})
    return int(start["status"])


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


async def _hold(milliseconds: int) -> None:
    """Wait at least `milliseconds` by the clock the request log measures with: the event
    loop may wake a timer a little early, and a held answer logged as shorter than its
    fault's latency would mislead whoever reads the log."""
    deadline = time.perf_counter() + milliseconds / 1000
    while (remaining := deadline - time.perf_counter()) > 0:
        await asyncio.sleep(remaining)
