"""The request-id middleware's own ids and header handling (no server, no database)."""

from __future__ import annotations

import asyncio
import re

from starlette.types import Message, Receive, Scope, Send

from calsync.logs import bind_context, current_context, reset_context
from calsync.web.request_id import RequestIdMiddleware, id_source

GENERATED = re.compile(r"[0-9a-f]{32}")


def test_new_ids_are_32_hex_digits_and_never_repeat() -> None:
    # Given two processes' id sources
    first, second = id_source(), id_source()
    # When each gives many ids
    ids = [first() for _ in range(10_000)] + [second() for _ in range(10_000)]
    # Then every id has the documented form and none repeats, across sources too
    assert all(GENERATED.fullmatch(each) for each in ids)
    assert len(set(ids)) == len(ids)


def _answer(app_headers: list[tuple[bytes, bytes]], sent: list[tuple[bytes, bytes]]) -> Message:
    """The response start that `RequestIdMiddleware` sends for an inner app answering
    with `app_headers` to a request with `sent` headers."""
    seen: dict[str, object] = {}

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen["context"] = dict(current_context())
        await send({"type": "http.response.start", "status": 200, "headers": app_headers})
        await send({"type": "http.response.body", "body": b""})

    started: list[Message] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            started.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    scope: Scope = {"type": "http", "method": "GET", "path": "/", "headers": sent}
    token = bind_context(user_id="u-1")  # a field bound before the request stays
    try:
        asyncio.run(RequestIdMiddleware(inner)(scope, receive, send))
    finally:
        reset_context(token)
    message = started[0]
    message["context"] = seen["context"]
    return message


def test_the_answer_carries_the_id_once_replacing_one_the_app_set() -> None:
    # When the inner app sets its own X-Request-ID and another header
    message = _answer(
        [(b"content-type", b"text/plain"), (b"x-request-id", b"inner")],
        [(b"x-request-id", b"req-1")],
    )
    # Then the answer has the caller's id once, and the app's other header
    ids = [v for k, v in message["headers"] if k == b"x-request-id"]
    assert ids == [b"req-1"]
    assert (b"content-type", b"text/plain") in message["headers"]
    # And the log context inside had the id and kept what was bound before
    assert message["context"] == {"user_id": "u-1", "request_id": "req-1"}


def test_an_insane_id_is_replaced_by_a_new_one() -> None:
    message = _answer([], [(b"x-request-id", b"has spaces")])
    ids = [v.decode() for k, v in message["headers"] if k == b"x-request-id"]
    assert len(ids) == 1
    assert GENERATED.fullmatch(ids[0])
