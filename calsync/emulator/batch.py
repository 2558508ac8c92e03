"""``POST /batch/calendar/v3``: multipart/mixed batches as googleapiclient sends them.

Each part is ``Content-Type: application/http`` with a ``Content-ID`` and a whole HTTP
request (path-only request line). Parts run one after another through the full
emulator (faults, auth, rate limits, request log with ``batch: true``); headers of the
outer request apply to every part unless the part sets its own, as Google documents.
The answer is multipart/mixed, one ``application/http`` part per request in order, each
``Content-ID: <response-ID>`` where ``<ID>`` was the request part's id, with CRLF line
ends (googleapiclient splits headers from body on ``\\r\\n\\r\\n``). At most 1000 parts.
A ``reset`` fault on a part resets the whole batch connection.
"""

from __future__ import annotations

import email.policy
import secrets
from email.message import Message as MimeMessage
from email.parser import BytesParser
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message

from calsync.emulator import errors
from calsync.emulator.frontend import ABORTED_KEY, BATCH_SCOPE_KEY, RAW_SEND_KEY

MAX_PARTS = 1000
_INHERITED_SCOPE_KEYS = (
    "type",
    "asgi",
    "http_version",
    "scheme",
    "server",
    "client",
    "state",
    RAW_SEND_KEY,
)
BATCH_PATH = "/batch/calendar/v3"


def _split_http(raw: bytes) -> tuple[str, list[tuple[bytes, bytes]], bytes]:
    """Request line, headers and body of one ``application/http`` part."""
    text = raw.replace(b"\r\n", b"\n")
    head, _, body = text.partition(b"\n\n")
    lines = [line for line in head.split(b"\n") if line.strip()]
    if not lines:
        raise errors.bad_request("Empty batch part.")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers.append((name.strip().lower(), value.strip()))
    length = next((int(v) for k, v in headers if k == b"content-length"), None)
    if length is not None:
        body = body[:length]
    elif body.endswith(b"\n"):
        body = body.rstrip(b"\n")
    return lines[0].decode("latin-1"), headers, body


def _parts(content_type: str, raw: bytes) -> list[MimeMessage]:
    if not content_type.lower().startswith("multipart/mixed"):
        raise errors.bad_request("A batch request must be multipart/mixed.")
    document = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
    message = BytesParser(policy=email.policy.compat32).parsebytes(document)
    payload = message.get_payload()
    if not message.is_multipart() or not isinstance(payload, list):
        raise errors.bad_request("Could not parse the batch request.")
    if len(payload) > MAX_PARTS:
        raise errors.bad_request(f"A batch may hold at most {MAX_PARTS} requests.")
    return [part for part in payload if isinstance(part, MimeMessage)]


async def _run_part(
    request: Request, part: MimeMessage
) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """Run one part through the whole emulator; None when it reset the connection."""
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        raise errors.bad_request("Could not parse a batch part.")
    request_line, part_headers, body = _split_http(raw)
    pieces = request_line.split(" ")
    if len(pieces) < 2:
        raise errors.bad_request("Malformed request line in a batch part.")
    method, target = pieces[0].upper(), pieces[1]
    path, _, query = target.partition("?")
    own = {name for name, _ in part_headers}
    inherited = [
        (name, value)
        for name, value in request.scope["headers"]
        if not name.startswith(b"content-") and name not in own
    ]
    headers = [h for h in part_headers if h[0] != b"content-length"] + inherited
    headers.append((b"content-length", str(len(body)).encode()))
    scope: dict[str, Any] = {k: v for k, v in request.scope.items() if k in _INHERITED_SCOPE_KEYS}
    scope.update(
        {
            "method": method,
            "path": unquote(path),
            "raw_path": path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": headers,
            BATCH_SCOPE_KEY: True,
        }
    )
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = 500
    response_headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status, response_headers
        if message["type"] == "http.response.start":
            status = int(message["status"])
            response_headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await request.scope["app"](scope, receive, send)
    if scope.get(ABORTED_KEY):
        request.scope[ABORTED_KEY] = True
        return None
    return status, response_headers, b"".join(chunks)


def _response_part(
    content_id: str | None, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> bytes:
    lines = [b"Content-Type: application/http"]
    if content_id:
        inner = content_id.strip().removeprefix("<").removesuffix(">")
        lines.append(f"Content-ID: <response-{inner}>".encode("latin-1"))
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    lines += [b"", f"HTTP/1.1 {status} {phrase}".encode()]
    for name, value in headers:
        if name.lower() != b"content-length":
            lines.append(name + b": " + value)
    lines += [f"Content-Length: {len(body)}".encode(), b"", body]
    return b"\r\n".join(lines)


async def batch(request: Request) -> Response:
    try:
        parts = _parts(request.headers.get("content-type", ""), await request.body())
        answers = []
        for part in parts:
            answer = await _run_part(request, part)
            if answer is None:  # the connection is gone; nobody reads what follows
                return Response(status_code=500)
            answers.append(_response_part(part.get("Content-ID"), *answer))
    except errors.GoogleApiError as err:
        return err.to_response()
    boundary = "batch_" + secrets.token_urlsafe(12)
    delimiter = f"--{boundary}\r\n".encode()
    payload = b"".join(delimiter + answer + b"\r\n" for answer in answers)
    payload += f"--{boundary}--\r\n".encode()
    return Response(payload, media_type=f"multipart/mixed; boundary={boundary}")


def batch_routes() -> list[Route]:
    return [Route(BATCH_PATH, batch, methods=["POST"])]
