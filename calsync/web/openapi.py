"""``GET /openapi.json``: the API's OpenAPI 3.1 document, generated from the app's routes
and from the models of its bodies.

The paths come from the routes the app really serves (`build_document(app.routes)`) and
from what its middleware answers before routing (`ANSWERED_BEFORE_ROUTING`), so a route
cannot be left out; each (method, path) is described by an entry of `OPERATIONS`
(its summary, parameters and statuses). A route without an entry is still listed, marked
``x-undocumented``, and `undocumented` names it: a test fails while any exists. Every
body's schema is generated from the pydantic models of `calsync.web.models` (request
bodies closed, ``additionalProperties: false``; error ``details`` typed). What the
middleware adds to every answer is added to every operation here (`_complete`):
``X-Request-ID``, the ``RateLimit-*`` headers and a 429 where a limit applies, a 503 with
``Retry-After``; ``ETag`` and ``Location`` where the events routes set them.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from calsync.store.audit import AuditAction
from calsync.store.sync_logs import LogKind
from calsync.store.tables import DELIVERY_STATUSES, NOTICE_KINDS
from calsync.web.limits import UNLIMITED_PATHS
from calsync.web.models import component_schemas
from calsync.web.push_intake import MAX_BODY_BYTES
from calsync.web.push_intake import PATH as INTAKE_PATH

__all__ = ["OPERATIONS", "build_document", "openapi_json", "undocumented"]

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_DATE_PARAM = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
        {"const": ""},
    ],
    "description": "empty: not given",
}
_AUTH_ERRORS = {"401": _error("no or invalid token"), "429": _error("rate limited")}
#: What any operation with a JSON body can also answer: a body that is not JSON, one over
#: the size limit, one sent as another media type.
_BODY_ERRORS = {
    "400": _error("the body is not valid JSON"),
    "413": _error("body too large"),
    "415": _error("the body is not sent as application/json"),
}
_EVENT_ID = {
    "name": "event_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "an event id, or an instance id <seriesId>_<YYYYMMDDTHHMMSSZ|YYYYMMDD>",
}
_SCOPE = {
    "name": "scope",
    "in": "query",
    "schema": {"enum": ["this", "following"], "default": "this"},
    "description": "on an instance id: this instance, or this and the following (split)",
}
_IF_MATCH = {"name": "If-Match", "in": "header", "schema": {"type": "string"}}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "schema": schema or {"type": "string"},
        "description": description,
    }


def _paging() -> list[dict[str, Any]]:
    """``limit`` and ``cursor``, the same on every list (`calsync.web.paging`)."""
    return [
        _query(
            "limit",
            "page size, 1-200 (default 50); anything else is 422",
            {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
        ),
        _query(
            "cursor",
            "next_cursor of the previous page of this list with the same filters; any other is 422",
        ),
    ]


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": responses, **extra}


def _body(schema_name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema_name)}}}


_PUBLIC: dict[str, Any] = {"security": []}

OPERATIONS: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("GET", "/healthz"): _op("Liveness", {"200": _json(_ref("Health"))}, **_PUBLIC),
    ("GET", "/readyz"): _op(
        "Readiness (database, broker)",
        {"200": _json(_ref("Readiness")), "503": _json(_ref("Readiness"), "not ready")},
        **_PUBLIC,
    ),
    ("GET", "/metrics"): _op(
        "Prometheus metrics",
        {
            "200": {
                "description": "text exposition",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "401": _error(
                "CALSYNC_METRICS_TOKEN is set and the request does not carry it as a bearer"
                " token (absent from this port when CALSYNC_METRICS_PORT is set)"
            ),
        },
        **_PUBLIC,
    ),
    ("GET", "/openapi.json"): _op(
        "This document", {"200": _json(_ref("OpenAPIDocument"))}, **_PUBLIC
    ),
    ("GET", "/auth/google"): _op(
        "Start Google sign-in (authorization code, PKCE S256)",
        {"302": {"description": "redirect to Google's consent page"}, "400": _error("bad request")},
        parameters=[
            _query(
                "login_hint",
                "email passed on to Google",
                {"type": "string", "format": "email", "maxLength": 320},
            )
        ],
        **_PUBLIC,
    ),
    ("GET", "/auth/google/callback"): _op(
        "Finish Google sign-in; answers a calsync JWT",
        {
            "200": _json(_ref("SignedIn")),
            "400": _error("bad, replayed or denied state"),
            "403": _json(
                {"anyOf": [_ref("Error"), _ref("SignedInWithoutCalendar")]},
                "the Google account is a disabled user's (account_disabled), or calendar"
                " access was not granted (calendar_access_not_granted: the body also"
                " carries token and user, who is signed in but not connected)",
            ),
            "409": _error(
                "the email belongs to a user bound to another Google account; refused and"
                " audited until an admin releases it (email_of_another_account)"
            ),
            "429": _error("too many requests from this address"),
            "502": _error("Google's token endpoint failed"),
        },
        parameters=[
            _query("code", "the authorization code Google gave"),
            _query("state", "the state sent with the redirect (bound to a cookie)"),
            _query("error", "set by Google when consent was refused"),
        ],
        **_PUBLIC,
    ),
    ("GET", "/me"): _op("The caller", {"200": _json(_ref("User")), **_AUTH_ERRORS}),
    ("GET", "/me/preferences"): _op(
        "Notice preferences", {"200": _json(_ref("Preferences")), **_AUTH_ERRORS}
    ),
    ("PUT", "/me/preferences"): _op(
        "Change notice preferences",
        {
            "200": _json(_ref("Preferences")),
            "422": _error("invalid fields (every one named)"),
            **_BODY_ERRORS,
            **_AUTH_ERRORS,
        },
        requestBody=_body("PreferencesUpdate"),
    ),
    ("POST", "/me/push-subscriptions"): _op(
        "Register a Web Push subscription",
        {
            "201": _json(_ref("PushSubscriptionSaved"), "registered"),
            "200": _json(_ref("PushSubscriptionSaved"), "known endpoint, keys refreshed"),
            "422": _error("invalid fields (every one named)"),
            **_BODY_ERRORS,
            **_AUTH_ERRORS,
        },
        requestBody=_body("PushSubscription"),
    ),
    ("DELETE", "/me/push-subscriptions/{subscription_id}"): _op(
        "Remove a Web Push subscription",
        {"204": {"description": "removed"}, "404": _error("no such subscription"), **_AUTH_ERRORS},
        parameters=[
            {
                "name": "subscription_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
            }
        ],
    ),
    ("GET", "/me/notices"): _op(
        "The caller's notices, newest first",
        {
            "200": _json(_ref("NoticePage")),
            "422": _error("bad parameter, limit or cursor"),
            **_AUTH_ERRORS,
        },
        parameters=[
            *_paging(),
            _query(
                "status",
                "only notices in this delivery status",
                {"enum": list(DELIVERY_STATUSES)},
            ),
            _query("kind", "only notices of this kind", {"enum": list(NOTICE_KINDS)}),
        ],
    ),
    ("GET", "/admin/users"): _op(
        "Every user (admins)",
        {
            "200": _json(_ref("UserPage")),
            "403": _error("not an admin"),
            "422": _error("bad parameter, limit or cursor"),
            **_AUTH_ERRORS,
        },
        parameters=_paging(),
    ),
    ("PATCH", "/admin/users/{user_id}"): _op(
        "Change a user's role or status (admins); disabled stops their sync",
        {
            "200": _json(_ref("User")),
            "403": _error("not an admin"),
            "404": _error("no such user"),
            "422": _error("invalid role or status"),
            **_BODY_ERRORS,
            **_AUTH_ERRORS,
        },
        parameters=[
            {"name": "user_id", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        requestBody=_body("UserUpdate"),
    ),
    ("POST", "/admin/users/{user_id}/release-email"): _op(
        "Detach a user from their email and disable them, keeping their data, so that the"
        " Google account refused with that email signs in as a new user (admins; audited)",
        {
            "200": _json(_ref("User")),
            "403": _error("not an admin"),
            "404": _error("no such user"),
            "409": _error("an admin's own account"),
            **_AUTH_ERRORS,
        },
        parameters=[
            {"name": "user_id", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
    ),
    ("GET", "/admin/audit"): _op(
        "The audit trail, newest first (admins)",
        {
            "200": _json(_ref("AuditPage")),
            "403": _error("not an admin"),
            "422": _error("bad parameter, limit or cursor"),
            **_AUTH_ERRORS,
        },
        parameters=[
            *_paging(),
            _query(
                "action",
                "only entries of this action",
                {"type": "string", "enum": sorted(a.value for a in AuditAction)},
            ),
        ],
    ),
    ("POST", "/webhooks/google"): _op(
        "Google push channel receiver (X-Goog-* headers, empty body)",
        {
            "200": {
                "description": "acknowledged or ignored, empty body: the sync handshake, a"
                " stopped channel, an unknown or forged one (no oracle for channel ids)"
            },
            "202": {
                "description": "a change recorded, empty body: its calendar marked dirty and"
                " a pull queued (or one already pending)"
            },
            "400": _error("X-Goog-Channel-ID or X-Goog-Resource-State missing; nothing changed"),
            "413": _error(
                f"a body over {MAX_BODY_BYTES // 1024} KiB (Google sends none); nothing changed"
            ),
            "503": {
                **_error(
                    "PostgreSQL or Redis cannot record the notification: nothing was recorded;"
                    " Google retries (Retry-After says when)"
                ),
                "headers": {
                    "Retry-After": {
                        "description": "seconds to wait before retrying",
                        "schema": {"type": "integer"},
                    }
                },
            },
        },
        parameters=[
            {
                "name": "X-Goog-Channel-ID",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "minLength": 1},
            },
            {
                "name": "X-Goog-Resource-State",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "minLength": 1},
                "description": "sync, exists or not_exists; other values are acknowledged",
            },
            {"name": "X-Goog-Channel-Token", "in": "header", "schema": {"type": "string"}},
            {"name": "X-Goog-Resource-ID", "in": "header", "schema": {"type": "string"}},
            {"name": "X-Goog-Message-Number", "in": "header", "schema": {"type": "string"}},
        ],
        **_PUBLIC,
    ),
    ("POST", "/sync"): _op(
        "Sync the caller's calendars now: queue their pulls (none runs twice)",
        {
            "202": _json(_ref("SyncQueued"), "pulls queued"),
            "404": _error("no such calendar (calendar_id)"),
            "409": _error("Google access was lost; sign in again (needs_reauth)"),
            "422": _error("calendar_id is not an id"),
            **_AUTH_ERRORS,
        },
        parameters=[
            _query(
                "calendar_id",
                "only this calendar (default: every selected calendar, and the calendar"
                " list is read again)",
                {"type": "string", "format": "uuid"},
            )
        ],
    ),
    ("GET", "/sync/logs"): _op(
        "The caller's sync log, newest first (admins: anyone's)",
        {
            "200": _json(_ref("SyncLogPage")),
            "404": _error("user_id is another user's and the caller is not an admin"),
            "422": _error("bad parameter, limit or cursor"),
            **_AUTH_ERRORS,
        },
        parameters=[
            *_paging(),
            _query(
                "kind",
                "only rows of this kind",
                {"enum": sorted(kind.value for kind in LogKind)},
            ),
            _query(
                "calendar_id", "only rows of this calendar", {"type": "string", "format": "uuid"}
            ),
            _query(
                "user_id",
                "admins: another user's log (others: only their own id)",
                {"type": "string", "format": "uuid"},
            ),
        ],
    ),
    ("GET", "/calendars"): _op(
        "The caller's calendars with access role and sync state",
        {"200": _json(_ref("CalendarList")), **_AUTH_ERRORS},
    ),
    ("PATCH", "/calendars/{calendar_id}"): _op(
        "Set a calendar's own conflict policy (null: the installation's)",
        {
            "200": _json(_ref("Calendar")),
            "404": _error("no such calendar"),
            "422": _error("invalid policy"),
            **_BODY_ERRORS,
            **_AUTH_ERRORS,
        },
        parameters=[
            {"name": "calendar_id", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        requestBody=_body("CalendarUpdate"),
    ),
    ("POST", "/events"): _op(
        "Create an event or series (answers at once, sync_state pending)",
        {
            "201": _json(_ref("Event"), "created (or the first answer to this Idempotency-Key)"),
            "403": _error("calendar is read-only"),
            "404": _error("no such calendar"),
            "422": _error("invalid fields, or Idempotency-Key reused with another body"),
            **_BODY_ERRORS,
            **_AUTH_ERRORS,
        },
        parameters=[
            {
                "name": "Idempotency-Key",
                "in": "header",
                "schema": {"type": "string", "maxLength": 255},
            }
        ],
        requestBody=_body("EventCreate"),
    ),
    ("GET", "/events"): _op(
        "The caller's events by start, paged by cursor",
        {"200": _json(_ref("EventPage")), "422": _error("bad parameter"), **_AUTH_ERRORS},
        parameters=[
            _query(
                "start_date",
                "YYYY-MM-DD (caller's zone) or date-time with offset; with end_date. The range"
                " is cut to 0001-01-08..9999-12-25 UTC; one wholly past an end is a 422",
                _DATE_PARAM,
            ),
            _query(
                "end_date", "inclusive date, or exclusive date-time; with start_date", _DATE_PARAM
            ),
            _query("category", "only this category"),
            _query(
                "calendar_id",
                "only this calendar (empty: every calendar)",
                {"anyOf": [{"type": "string", "format": "uuid"}, {"const": ""}]},
            ),
            _query(
                "recurring", "true: series (instances); false: single events", {"type": "boolean"}
            ),
            _query(
                "expand", "true: series expanded into instances in the range", {"type": "boolean"}
            ),
            *_paging(),
        ],
    ),
    ("GET", "/events/{event_id}"): _op(
        "One event, series or instance (ETag header)",
        {"200": _json(_ref("Event")), "404": _error("no such event"), **_AUTH_ERRORS},
        parameters=[_EVENT_ID],
    ),
    ("PUT", "/events/{event_id}"): _op(
        "Change an event; fields left out keep their values",
        {
            "200": _json(_ref("Event")),
            "403": _error("not the organizer, or calendar read-only"),
            "404": _error("no such event"),
            "412": _error("If-Match does not match the current etag"),
            "422": _error("invalid fields or scope"),
            **_BODY_ERRORS,
            **_AUTH_ERRORS,
        },
        parameters=[_EVENT_ID, _SCOPE, _IF_MATCH],
        requestBody=_body("EventUpdate"),
    ),
    ("PATCH", "/events/{event_id}"): _op(
        "The same as PUT: change an event; fields left out keep their values",
        {
            "200": _json(_ref("Event")),
            "403": _error("not the organizer, or calendar read-only"),
            "404": _error("no such event"),
            "412": _error("If-Match does not match the current etag"),
            "422": _error("invalid fields or scope"),
            **_BODY_ERRORS,
            **_AUTH_ERRORS,
        },
        parameters=[_EVENT_ID, _SCOPE, _IF_MATCH],
        requestBody=_body("EventUpdate"),
    ),
    ("DELETE", "/events/{event_id}"): _op(
        "Delete an event or series, cancel an instance, or end a series (scope=following)",
        {
            "204": {"description": "deleted locally; Google follows"},
            "403": _error("not the organizer, or calendar read-only"),
            "404": _error("no such event"),
            "412": _error("If-Match does not match the current etag"),
            "422": _error("invalid scope"),
            **_AUTH_ERRORS,
        },
        parameters=[_EVENT_ID, _SCOPE, _IF_MATCH],
    ),
}


#: What the API answers before routing: `PushIntakeMiddleware`, which every API app
#: carries, answers ``POST /webhooks/google`` itself (no route serves it).
ANSWERED_BEFORE_ROUTING: Final = (("POST", INTAKE_PATH),)


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
        responses.setdefault("429", _error("rate limited"))
    responses.setdefault("503", _error(_UNAVAILABLE))
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
