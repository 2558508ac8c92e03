"""Page sizes of list routes (their cursors are `calsync.store.keyset` positions)."""

from __future__ import annotations

from typing import Final

from starlette.requests import Request

from calsync.web.errors import APIError

__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "page_size"]

DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 200


def page_size(request: Request, *, default: int = DEFAULT_PAGE, maximum: int = MAX_PAGE) -> int:
    """The ``limit`` query parameter, between 1 and `maximum` (422 otherwise)."""
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    # isdigit alone also takes "³" and other digits int() refuses
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        message = f"must be a whole number from 1 to {maximum}"
        raise APIError(
            422,
            f"limit {message}",
            details=[{"field": "limit", "issue": "invalid", "message": message}],
        )
    return int(raw)
