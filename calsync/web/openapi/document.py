"""The OpenAPI document of an app: `build_document` (its routes, each described by
`OPERATIONS` and completed with what the middleware adds to every answer),
`undocumented` (the routes `OPERATIONS` misses) and the ``GET /openapi.json`` endpoint
(`openapi_json`)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from calsync.web.limits import UNLIMITED_PATHS
from calsync.web.models import component_schemas
from calsync.web.openapi.operations import ANSWERED_BEFORE_ROUTING, OPERATIONS
from calsync.web.openapi.parts import error


def _operations(routes: Iterable[BaseRoute]) -> Iterable[tuple[str, str]]:
    yield from ANSWERED_BEFORE_ROUTING
    for route in routes:
        if isinstance(route, Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield method, route.path


def undocumented(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """The (method, path) the app serves that `OPERATIONS` does not describe."""
    return [key for key in _operations(routes) if key not in OPERATIONS]


@cache
def schemas() -> dict[str, Any]:
    """``components.schemas``, generated from `calsync.web.models`."""
    return component_schemas()


_HEADERS: Final[dict[str, Any]] = {
    "X-Request-ID": {
        "description": "the request's X-Request-ID when it sent a sane one (1-64 letters,"
        " digits, '.', '_', '-', ':'), else a new one; every log line of the request"
        " carries it",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"},
    },
    "RateLimit-Limit": {
        "description": "requests the tighter of the caller's buckets holds (per address,"
        " then per user; absent while the limiter's store is unreachable)",
        "schema": {"type": "integer", "minimum": 1},
    },
    "RateLimit-Remaining": {
        "description": "requests left in that bucket now",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    },
    "ETag": {
        "description": "the event's etag, for If-Match",
        "required": True,
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "the new event's path, /events/{id}",
        "required": True,
        "schema": {"type": "string"},
    },
}
#: Answers that carry the event's ETag (and, for a create, its Location).
_ETAG_ANSWERS: Final = {
    ("POST", "/events"): "201",
    ("GET", "/events/{event_id}"): "200",
    ("PUT", "/events/{event_id}"): "200",
    ("PATCH", "/events/{event_id}"): "200",
}
_UNAVAILABLE: Final = (
    "PostgreSQL or Redis cannot be reached: nothing was changed; retry after Retry-After"
)


_REQUEST_ID: Final = {
    "name": "X-Request-ID",
    "in": "header",
    "schema": {"type": "string"},
    "description": "kept and answered when 1-64 letters, digits, '.', '_', '-' or ':'"
    " (else a new id is answered); every log line of the request carries it",
}


def _headers(*names: str) -> dict[str, Any]:
    return {name: _HEADERS[name] for name in names}


def _complete(method: str, path: str, operation: dict[str, Any]) -> dict[str, Any]:
    """`operation` with what every answer of the app may be and carries, from the
    middleware rather than the route: X-Request-ID on every answer; the rate-limit
    headers and a 429 where a limit applies; a 503 with Retry-After anywhere (the
    database or Redis down); ETag and Location where the route sets them."""
    limited = path not in UNLIMITED_PATHS
    responses = dict(operation["responses"])
    if limited:
        responses.setdefault("429", error("rate limited"))
    responses.setdefault("503", error(_UNAVAILABLE))
    completed: dict[str, Any] = {}
    for status, response in responses.items():
        names = ["X-Request-ID"]
        if limited:
            names += ["RateLimit-Limit", "RateLimit-Remaining"]
        if status in ("429", "503"):
            names.append("Retry-After")
        if _ETAG_ANSWERS.get((method, path)) == status:
            names.append("ETag")
            if method == "POST":
                names.append("Location")
        completed[status] = {
            **response,
            "headers": {**response.get("headers", {}), **_headers(*names)},
        }
    parameters = [*operation.get("parameters", []), _REQUEST_ID]
    return {**operation, "parameters": parameters, "responses": completed}


def build_document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of exactly the app's routes."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in _operations(routes):
        operation = OPERATIONS.get(
            (method, path),
            {"responses": {"default": {"description": "undocumented"}}, "x-undocumented": True},
        )
        paths.setdefault(path, {})[method.lower()] = _complete(method, path, operation)
    return {
        "openapi": "3.1.0",
        "info": {"title": "calsync", "version": "1", "description": "Google Calendar two-way sync"},
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "security": [{"bearer": []}],
    }


async def openapi_json(request: Request) -> Response:
    """The document for the app serving this request."""
    document = getattr(request.app.state, "openapi", None)
    if document is None:
        document = build_document(request.app.routes)
        request.app.state.openapi = document
    return JSONResponse(document)
