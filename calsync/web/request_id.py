"""``X-Request-ID``: every answer carries one, and every log line of its request too.

The caller's ``X-Request-ID`` is kept when it is a sane short token (1-64 characters of
letters, digits, ``.``, ``_``, ``-``, ``:``: what proxies and clients generate, UUIDs
included); anything else - missing, empty, too long, with spaces, quotes or control
characters that would end up in log lines and headers - is replaced by a new id (32 hex
digits: a random per-process prefix and a counter).
The id is bound to the log context (`calsync.logs`) for the whole request, so uvicorn's
access line has it too, and jobs queued while answering carry it on (the job middleware
puts it in the message's options).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calsync.logs import bind_request_id, reset_context

__all__ = ["HEADER", "RequestIdMiddleware", "id_source", "request_id_of"]

HEADER: Final = "X-Request-ID"
_NAME: Final = b"x-request-id"
_SANE: Final = re.compile(r"[A-Za-z0-9._:\-]{1,64}")


def request_id_of(sent: str | None, new_id: Callable[[], str] | None = None) -> str:
    """`sent` when it is a sane short token, else a new id from `new_id` (default: 32
    random hex digits)."""
    if sent is not None and _SANE.fullmatch(sent):
        return sent
    return new_id() if new_id is not None else os.urandom(16).hex()


def id_source() -> Callable[[], str]:
    """New request ids of one process: 32 hex digits, 64 random bits drawn once and a
    64-bit counter. Unique across processes as random ids are, without a system call
    per request (the webhook's intake answers thousands a second through here)."""
    prefix = os.urandom(8).hex()
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):016x}"


class RequestIdMiddleware:
    """Outermost: picks the request's id, binds it to the log context around everything
    inside, and adds it to the answer's headers (replacing one an inner app set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._new_id = id_source()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = [v for k, v in scope["headers"] if k == _NAME]
        request_id = request_id_of(
            sent[0].decode("latin-1") if len(sent) == 1 else None, self._new_id
        )
        scope.setdefault("state", {})["request_id"] = request_id
        header = (_NAME, request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # replaces an id an inner app set; header names in ASGI are lower-case
                headers = [h for h in message.get("headers", ()) if h[0].lower() != _NAME]
                headers.append(header)
                message["headers"] = headers
            await send(message)

        token = bind_request_id(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            reset_context(token)
