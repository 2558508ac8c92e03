"""The API's error shape and the handlers that produce it.

Every error answer is ``{"error": {"code", "message", "details"}}`` with the right status;
nothing ever leaks a stack trace. A database that cannot be reached answers 503 with
``Retry-After`` rather than 500, so clients and load balancers back off and retry.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class APIError(Exception):
    """An error to answer with: raise it from a route and the handler renders it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.details = list(details)
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"APIError({self.status}, {self.code!r}, {self.message!r})"


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    details: Sequence[Mapping[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A response in the API's error shape."""
    body = {
        "error": {
            "code": code or _CODES.get(status, "error"),
            "message": message,
            "details": list(details),
        }
    }
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


async def handle_api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return error_response(
        exc.status, exc.message, code=exc.code, details=exc.details, headers=exc.headers
    )


async def handle_http_exception(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


async def handle_database_unavailable(_request: Request, exc: Exception) -> Response:
    log.warning("database unavailable: %s", type(exc).__name__)
    return error_response(
        503, "the database is unavailable; try again shortly", headers={"Retry-After": "5"}
    )


async def handle_unexpected(_request: Request, exc: Exception) -> Response:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return await handle_database_unavailable(_request, exc)
    log.exception("unhandled error")
    return error_response(500, "internal error")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    APIError: handle_api_error,
    HTTPException: handle_http_exception,
    OperationalError: handle_database_unavailable,
    Exception: handle_unexpected,
}
