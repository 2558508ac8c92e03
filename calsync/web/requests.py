"""Reading request bodies: JSON objects only, unknown fields refused with 422."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request

from calsync.web.errors import APIError


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object.

    Raises:
        APIError: 415 when not sent as JSON, 400 when not valid JSON, 422 when not an object.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise APIError(415, "send the body as application/json")
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        # ValueError: malformed JSON or bytes, and integers past Python's digit limit;
        # RecursionError: arrays or objects nested deeper than the parser's stack.
        raise APIError(400, "the body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise APIError(422, "the body must be a JSON object")
    return body


def reject_unknown_fields(
    body: dict[str, Any], *, allowed: Iterable[str], forbidden: Iterable[str] = ()
) -> None:
    """Refuse fields the client may not set (named) and fields that do not exist.

    Raises:
        APIError: 422 naming each offending field.
    """
    allowed_set = set(allowed)
    forbidden_set = set(forbidden)
    details = [
        {"field": name, "issue": "read_only" if name in forbidden_set else "unknown"}
        for name in body
        if name not in allowed_set
    ]
    if details:
        names = ", ".join(d["field"] for d in details)
        raise APIError(422, f"these fields cannot be set: {names}", details=details)
