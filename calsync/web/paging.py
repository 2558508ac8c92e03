"""Page sizes and opaque cursors for list routes.

A cursor is the URL-safe base64 of a small JSON value the route chooses (the keyset of
the last item). It is opaque to clients and checked on the way back: a cursor that does
not decode is a 400, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Final

from starlette.requests import Request

from calsync.web.errors import APIError

__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "decode_cursor", "encode_cursor", "page_size"]

DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 200


def page_size(request: Request, *, default: int = DEFAULT_PAGE, maximum: int = MAX_PAGE) -> int:
    """The ``limit`` query parameter, between 1 and `maximum` (422 otherwise)."""
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise APIError(
            422,
            f"limit must be a whole number from 1 to {maximum}",
            code="validation_error",
            details=[{"field": "limit", "message": f"must be from 1 to {maximum}"}],
        )
    return int(raw)


def encode_cursor(value: Any) -> str:
    """An opaque cursor for `value` (anything JSON can hold)."""
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(request: Request) -> Any | None:
    """The value of the ``cursor`` query parameter, or `None` without one (400 if bad)."""
    cursor = request.query_params.get("cursor")
    if not cursor:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise APIError(400, "the cursor is not one this API gave out", code="bad_cursor") from None
