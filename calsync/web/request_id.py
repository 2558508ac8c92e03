"""``X-Request-ID``: every answer carries one, and every log line of its request too.

The caller's ``X-Request-ID`` is kept when it is a sane short token (1-64 characters of
letters, digits, ``.``, ``_``, ``-``, ``:``: what proxies and clients generate, UUIDs
included); anything else - missing, empty, too long, with spaces, quotes or control
characters that would end up in log lines and headers - is replaced by a new random id.
The id is bound to the log context (`calsync.logs`) for the whole request, so uvicorn's
access line has it too, and jobs queued while answering carry it on (the job middleware
puts it in the message's options).
"""

from __future__ import annotations

import re
import uuid
from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calsync.logs import bind_context, reset_context

__all__ = ["HEADER", "RequestIdMiddleware", "request_id_of"]

HEADER: Final = "X-Request-ID"
_SANE: Final = re.compile(r"[A-Za-z0-9._:\-]{1,64}")


def request_id_of(sent: str | None) -> str:
    """`sent` when it is a sane short token, else a new random id (32 hex digits)."""
    if sent is not None and _SANE.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Outermost: picks the request's id, binds it to the log context around everything
    inside, and adds it to the answer's headers (replacing one an inner app set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = [v for k, v in scope["headers"] if k == b"x-request-id"]
        request_id = request_id_of(sent[0].decode("latin-1") if len(sent) == 1 else None)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        token = bind_context(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            reset_context(token)
