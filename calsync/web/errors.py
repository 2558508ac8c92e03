"""The API's error shape and the handlers that produce it.

Every error answer is ``{"error": {"code", "message", "details"}}`` with the right status;
nothing ever leaks a stack trace. A dependency that cannot be reached - the database
(SQLAlchemy ``OperationalError``, a connection-level ``DBAPIError``, a pool timeout) or
Redis (a connection or timeout error, directly or through Dramatiq's broker) - answers 503
with ``Retry-After`` rather than 500, so clients, Google and load balancers back off and
retry. That holds wherever the error is raised: in a route (``ExceptionMiddleware``) or in
a middleware such as authentication, which loads the caller from the database
(:class:`UnavailableDependencyMiddleware`; and as a last resort Starlette's
``ServerErrorMiddleware`` calls :func:`handle_unexpected`, though it then re-raises, and
uvicorn closes the client's keep-alive connection).

It is also the one place that turns the use cases' domain errors
(`calsync.domain.errors`) into answers (decision HE2): `NotFound` 404, `Forbidden` 403,
`Stale` 412, `IdempotencyKeyReused` 422 ``idempotency_key_reused``, and a
`ValidationError` (several: `FieldErrors`) 422 ``validation_failed`` whose message names
every offending field and whose ``details`` hold one ``{field, issue, message}`` each.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from dramatiq.errors import BrokerConnectionError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calsync.domain.errors import (
    FieldErrors,
    Forbidden,
    IdempotencyKeyReused,
    NotConnectedYet,
    NotFound,
    Refused,
    Stale,
    ValidationError,
)

log = logging.getLogger(__name__)

#: Seconds a client should wait before retrying after a 503 for an unreachable dependency.
RETRY_AFTER_SECONDS = 5

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


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return error_response(exc.status_code, str(exc.detail), headers=headers)


def unprocessable(details: Sequence[Mapping[str, Any]]) -> APIError:
    """The 422 for `details` (``{field, issue, message}`` each); the message names every
    offending field."""
    names = ", ".join(dict.fromkeys(str(d["field"]) for d in details))
    return APIError(422, f"invalid fields: {names}", details=details)


def problem_details(problems: Sequence[ValidationError]) -> list[dict[str, str]]:
    """The API's ``details`` entries of domain problems, in their order."""
    return [{"field": p.field, "issue": p.issue, "message": p.message} for p in problems]


#: The status (and code, when not the status's own) of each refusal of a use case.
REFUSALS: dict[type[Refused], tuple[int, str | None]] = {
    NotFound: (404, None),
    Forbidden: (403, None),
    NotConnectedYet: (409, "calendars_connecting"),
    Stale: (412, None),
    IdempotencyKeyReused: (422, "idempotency_key_reused"),
}


def domain_error(exc: ValidationError | Refused) -> APIError:
    """The answer to a use case's domain error (see the module docstring)."""
    if isinstance(exc, ValidationError):
        problems = exc.problems if isinstance(exc, FieldErrors) else [exc]
        return unprocessable(problem_details(problems))
    for kind in type(exc).__mro__:
        if kind in REFUSALS:
            status, code = REFUSALS[kind]
            return APIError(status, exc.message, code=code, details=problem_details(exc.problems))
    raise TypeError(f"no status for {type(exc).__name__}")  # a new Refused needs its entry


async def handle_domain_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError | Refused)
    answer = domain_error(exc)
    return error_response(answer.status, answer.message, code=answer.code, details=answer.details)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at the request's path (RFC 9110 15.5.6).

    Starlette's router answers 405 from the first route whose path matched, so with one
    route per method (``GET /events`` and ``POST /events``) its ``Allow`` names only that
    route's methods."""
    methods: set[str] = set()
    path = request.scope.get("path", "")
    for route in getattr(request.app, "routes", ()):
        path_regex = getattr(route, "path_regex", None)
        route_methods = getattr(route, "methods", None)
        if path_regex is not None and route_methods and path_regex.match(path):
            methods.update(route_methods)
    return sorted(methods)


def unavailable_dependency(exc: BaseException) -> str | None:
    """``"database"`` or ``"queue"`` when ``exc``, or an error it was explicitly raised
    from (``raise ... from``), says that PostgreSQL or Redis cannot be reached right now;
    ``None`` for anything else (an error merely raised *while handling* one is a bug)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OperationalError | DisconnectionError | PoolTimeout) or (
            isinstance(current, DBAPIError) and current.connection_invalidated
        ):
            return "database"
        if isinstance(current, RedisConnectionError | RedisTimeoutError | BrokerConnectionError):
            return "queue"
        current = current.__cause__
    return None


def unavailable_response(what: str) -> JSONResponse:
    """503 with ``Retry-After`` in the API's error shape; names the dependency, nothing more."""
    return error_response(
        503,
        f"the {what} is unavailable; try again shortly",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def handle_database_unavailable(_request: Request, exc: Exception) -> Response:
    log.warning("database unavailable: %s", type(exc).__name__)
    return unavailable_response("database")


async def handle_queue_unavailable(_request: Request, exc: Exception) -> Response:
    log.warning("queue unavailable: %s", type(exc).__name__)
    return unavailable_response("queue")


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """The last resort: 503 for an unreachable dependency (also when raised in a
    middleware), else a logged 500 without details."""
    what = unavailable_dependency(exc)
    if what == "database":
        response = await handle_database_unavailable(request, exc)
    elif what == "queue":
        response = await handle_queue_unavailable(request, exc)
    else:
        log.exception("unhandled error")
        response = error_response(500, "internal error")
    # Starlette answers this from outside every middleware, the request id's included.
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id:
        response.headers["X-Request-ID"] = request_id
    return response


class UnavailableDependencyMiddleware:
    """Answer 503 + ``Retry-After`` for an unreachable database or Redis raised anywhere
    inside it (middleware included), before an answer started; other errors pass on,
    but a client that disconnected before its body was read is only logged (info).

    Unlike Starlette's ``ServerErrorMiddleware`` it does not re-raise once it answered,
    so the server keeps the client's connection open: an outage costs the client a 503,
    not also a connection reset on its next request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except ClientDisconnect:
            # The client left before its body was read (a load generator stopping, a
            # closed tab): nobody waits for an answer and nothing was written. Not an
            # error of ours; the server closes the connection.
            log.info("client disconnected before its request was read: %s", scope.get("path"))
        except Exception as exc:
            what = unavailable_dependency(exc)
            if what is None or started:
                raise
            log.warning("%s unavailable: %s", what, type(exc).__name__)
            await unavailable_response(what)(scope, receive, send)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    APIError: handle_api_error,
    ValidationError: handle_domain_error,
    Refused: handle_domain_error,
    HTTPException: handle_http_exception,
    OperationalError: handle_database_unavailable,
    DisconnectionError: handle_database_unavailable,
    PoolTimeout: handle_database_unavailable,
    RedisConnectionError: handle_queue_unavailable,
    RedisTimeoutError: handle_queue_unavailable,
    BrokerConnectionError: handle_queue_unavailable,
    Exception: handle_unexpected,
}
