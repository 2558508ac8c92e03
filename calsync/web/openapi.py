"""``GET /openapi.json``: the API's OpenAPI 3.1 document, generated from the app's routes.

The paths come from the routes the app really serves (`build_document(app.routes)`), so a
route cannot be left out; each (method, path) is described by an entry of `OPERATIONS`.
A route without an entry is still listed, marked ``x-undocumented``, and
`undocumented` names it: a test fails while any exists. Schemas of the events and
calendars routes are exact (``additionalProperties: false``); the others describe the
shapes their modules answer with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from calsync.store.audit import AuditAction
from calsync.web.push_intake import MAX_BODY_BYTES

__all__ = ["OPERATIONS", "build_document", "openapi_json", "undocumented"]

_REF = "#/components/schemas/"
_NULLABLE_STRING: Final = {"type": ["string", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _object(
    properties: dict[str, Any], *, closed: bool = True, required: Sequence[str] = ()
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if closed:
        schema["additionalProperties"] = False
    if required:
        schema["required"] = list(required)
    return schema


_ATTENDEE_OUT = _object(
    {
        "email": {"type": "string"},
        "display_name": _NULLABLE_STRING,
        "response_status": {"enum": ["needsAction", "declined", "tentative", "accepted"]},
        "optional": {"type": "boolean"},
        "organizer": {"type": "boolean"},
    },
    required=("email", "display_name", "response_status", "optional", "organizer"),
)
_ATTENDEE_IN = {
    "oneOf": [
        {"type": "string", "format": "email"},
        _object(
            {
                "email": {"type": "string"},
                "display_name": _NULLABLE_STRING,
                "optional": {"type": "boolean"},
            },
            required=("email",),
        ),
    ]
}
_DATE_PARAM = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
        {"const": ""},
    ],
    "description": "empty: not given",
}
_TIME = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
    ],
    "description": "YYYY-MM-DD for all-day events (end exclusive), else ISO 8601 date-time",
}
_EVENT_TYPES = ["default", "outOfOffice", "focusTime", "workingLocation", "birthday", "fromGmail"]
_DECLINE_MODES = {
    "enum": [
        "declineNone",
        "declineAllConflictingInvitations",
        "declineOnlyNewConflictingInvitations",
    ]
}
_PROPERTY_TEXT = {"type": "string", "maxLength": 1024}
_TYPE_PROPERTIES: dict[str, Any] = {
    "out_of_office": _object(
        {"auto_decline_mode": _DECLINE_MODES, "decline_message": _PROPERTY_TEXT}
    ),
    "focus_time": _object(
        {
            "auto_decline_mode": _DECLINE_MODES,
            "decline_message": _PROPERTY_TEXT,
            "chat_status": {"enum": ["available", "doNotDisturb"]},
        }
    ),
    "working_location": _object(
        {
            "type": {"enum": ["homeOffice", "officeLocation", "customLocation"]},
            "custom_location": _object({"label": _PROPERTY_TEXT}),
            "office_location": _object(
                {
                    key: _PROPERTY_TEXT
                    for key in ("building_id", "floor_id", "floor_section_id", "desk_id", "label")
                }
            ),
        },
        required=("type",),
    ),
}
#: Event types (decisions K1-K4): writable on create, read-only after.
_TYPE_FIELDS_IN: dict[str, Any] = {
    "event_type": {
        "enum": _EVENT_TYPES,
        "description": "Google's event type, set on create (default: default) and read-only"
        " after (a PUT may repeat it); calsync creates default and the status types"
        " (outOfOffice, focusTime, workingLocation: only on the user's primary calendar,"
        " without attendees); birthday and fromGmail come from Google",
    },
    **{
        name: {"anyOf": [schema, {"type": "null"}], "description": f"properties of {kind}"}
        for (name, schema), kind in zip(
            _TYPE_PROPERTIES.items(), ("outOfOffice", "focusTime", "workingLocation"), strict=True
        )
    },
}
_TYPE_FIELDS_OUT: dict[str, Any] = {
    "event_type": {
        "type": "string",
        "description": f"one of {', '.join(_EVENT_TYPES)}, or a newer type Google added"
        " (read-only in calsync)",
    },
    # Google's own objects, as pulled: any keys, none required.
    **{
        name: {k: v for k, v in schema.items() if k != "required"} | {"additionalProperties": True}
        for name, schema in _TYPE_PROPERTIES.items()
    },
    "birthday": _object(
        {
            "type": {"type": "string"},
            "custom_type_name": {"type": "string"},
            "contact": {"type": "string"},
        },
        closed=False,
    ),
}
_EVENT_FIELDS_IN: dict[str, Any] = {
    "title": _NULLABLE_STRING | {"maxLength": 1024},
    "description": _NULLABLE_STRING | {"maxLength": 8192},
    "location": _NULLABLE_STRING | {"maxLength": 1024},
    "category": _NULLABLE_STRING | {"maxLength": 64},
    "start_time": _TIME,
    "end_time": _TIME,
    "timezone": _NULLABLE_STRING
    | {"description": "IANA zone, such as Europe/Berlin (not localtime, posixrules, Factory)"},
    "all_day": {"type": "boolean"},
    "calendar_id": {"type": "string", "format": "uuid"},
    "recurrence": {
        "type": ["array", "null"],
        "items": {"type": "string"},
        "maxItems": 20,
        "description": "RRULE, EXDATE and RDATE lines; their dates (UNTIL, RDATE, EXDATE)"
        " lie from 0002-01-01 to 9998-12-31 (leave UNTIL out for a series without end)",
    },
    "attendees": {"type": ["array", "null"], "items": _ATTENDEE_IN, "maxItems": 200},
    "reminders": {
        "type": ["array", "null"],
        "items": {"type": "integer", "minimum": 0, "maximum": 40320},
        "maxItems": 5,
        "description": "minutes before the start; null = the calendar's default reminders",
    },
    "metadata": {
        "type": ["object", "null"],
        "additionalProperties": {"type": "string", "maxLength": 1024},
        "maxProperties": 32,
    },
}
_PROPS_IN: dict[str, Any] = {
    "transparency": {
        "enum": ["opaque", "transparent", None],
        "description": "busy (opaque, the default) or free (transparent); null: the default",
    },
    "visibility": {
        "enum": ["default", "public", "private", "confidential", None],
        "description": "Google's visibility; null: default (the calendar's)",
    },
    "color_id": {
        "enum": [*(str(n) for n in range(1, 12)), None],
        "description": "Google's event colour id (colors.get, event palette); null: none",
    },
    "conference": {
        "oneOf": [
            _object({"create": {"const": "meet"}}, required=("create",)),
            {"type": "null"},
        ],
        "description": '{"create": "meet"} asks Google for a Meet link (no change when the'
        " event has a conference that did not fail); null removes the conference",
    },
}
_EVENT_FIELDS_IN.update(_PROPS_IN)
_EVENT_OUT = _object(
    {
        "id": {"type": "string", "description": "uuid, or <seriesId>_<instance> for instances"},
        "calendar_id": {"type": "string", "format": "uuid"},
        "series_id": _NULLABLE_STRING,
        "original_start_time": _NULLABLE_STRING,
        "title": {"type": "string"},
        "description": {"type": "string"},
        "location": {"type": "string"},
        "category": _NULLABLE_STRING,
        "start_time": {"type": "string"},
        "end_time": {"type": "string"},
        "timezone": _NULLABLE_STRING,
        "all_day": {"type": "boolean"},
        "recurrence": {"type": "array", "items": {"type": "string"}},
        "recurrence_error": _NULLABLE_STRING
        | {
            "description": "why the series is not expanded (a rule Google holds that calsync"
            " refuses, such as one over the work limit): it is shown as its master alone"
        },
        "attendees": {"type": "array", "items": _ATTENDEE_OUT},
        "reminders": {"type": ["array", "null"], "items": {"type": "integer"}},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "status": {"enum": ["confirmed", "tentative", "cancelled"]},
        "transparency": {"enum": ["opaque", "transparent"]},
        "visibility": {"enum": ["default", "public", "private", "confidential"]},
        "color_id": _NULLABLE_STRING,
        "conference": {
            "oneOf": [
                _object(
                    {
                        "status": {"enum": ["pending", "success", "failure"]},
                        "uri": _NULLABLE_STRING
                        | {"description": "the address to join by video, once created"},
                        "solution": _NULLABLE_STRING
                        | {"description": "Google's solution type, such as hangoutsMeet"},
                    },
                    required=("status", "uri", "solution"),
                ),
                {"type": "null"},
            ]
        },
        "organizer": _NULLABLE_STRING,
        "sync_state": {"enum": ["synced", "pending", "conflict", "error"]},
        "sync_error": _NULLABLE_STRING,
        "conflict": {
            "type": ["object", "null"],
            "description": "policy, fields, and both versions, while a manual conflict waits",
        },
        "etag": {"type": "string"},
        "google_event_id": _NULLABLE_STRING,
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
)
_EVENT_OUT["required"] = list(_EVENT_OUT["properties"])
_EVENT_FIELDS_IN.update(_TYPE_FIELDS_IN)
_EVENT_OUT["properties"].update(_TYPE_FIELDS_OUT)
_EVENT_OUT["required"].append("event_type")  # the properties field shows for its type only
_CALENDAR = _object(
    {
        "id": {"type": "string", "format": "uuid"},
        "google_calendar_id": {"type": "string"},
        "summary": {"type": "string"},
        "timezone": {"type": "string"},
        "access_role": {"enum": ["owner", "writer", "reader", "freeBusyReader"]},
        "writable": {"type": "boolean"},
        "primary": {"type": "boolean"},
        "selected": {"type": "boolean"},
        "conflict_policy": {
            "enum": ["last_updated_wins", "remote_wins", "local_wins", "manual", None]
        },
        "sync": _object(
            {
                "last_synced_at": _NULLABLE_STRING,
                "status": _NULLABLE_STRING,
                "dirty": {"type": "boolean"},
                "poll_only": {"type": "boolean"},
            },
            required=("last_synced_at", "status", "dirty", "poll_only"),
        ),
    },
)
_CALENDAR["required"] = list(_CALENDAR["properties"])

SCHEMAS: Final[dict[str, Any]] = {
    "Error": _object(
        {
            "error": _object(
                {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "array", "items": {"type": "object"}},
                },
                required=("code", "message", "details"),
            )
        },
        required=("error",),
    ),
    "Event": _EVENT_OUT,
    "EventCreate": _object(_EVENT_FIELDS_IN, required=("start_time", "end_time")),
    "EventUpdate": _object(_EVENT_FIELDS_IN),
    "EventPage": _object(
        {"events": {"type": "array", "items": _ref("Event")}, "next_cursor": _NULLABLE_STRING},
        required=("events", "next_cursor"),
    ),
    "Calendar": _CALENDAR,
    "CalendarList": _object(
        {"calendars": {"type": "array", "items": _ref("Calendar")}}, required=("calendars",)
    ),
    "CalendarUpdate": _object(
        {
            "conflict_policy": {
                "enum": ["last_updated_wins", "remote_wins", "local_wins", "manual", None]
            }
        }
    ),
    "User": _object(
        {
            "id": {"type": "string", "format": "uuid"},
            "email": {"type": "string"},
            "display_name": _NULLABLE_STRING,
            "role": {"enum": ["admin", "user"]},
            "status": {"enum": ["active", "needs_reauth", "disabled"]},
            "timezone": {"type": "string"},
            "calendar_access": {
                "type": "boolean",
                "description": "GET /me and sign-in only: the stored Google tokens grant"
                " calendar access (false: not connected)",
            },
        },
        required=("id", "email", "role", "status"),
    ),
    "UserUpdate": {
        **_object(
            {"role": {"enum": ["admin", "user"]}, "status": {"enum": ["active", "disabled"]}}
        ),
        "minProperties": 1,
    },
    "PreferencesUpdate": _object(
        {
            "reminder_minutes": {
                "type": ["array", "null"],
                "items": {"type": "integer", "minimum": 0, "maximum": 40320},
                "maxItems": 5,
            },
            "channels": {
                "type": "array",
                "items": {"enum": ["email", "push", "webhook"]},
                "uniqueItems": True,
            },
            "webhook_url": {"type": ["string", "null"], "format": "uri"},
            "change_notices": {"type": "boolean"},
            "quiet_hours": {
                "type": ["object", "null"],
                "properties": {
                    "start": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
                    "end": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
                    "timezone": _NULLABLE_STRING,
                },
                "required": ["start", "end"],
                "additionalProperties": False,
            },
        }
    ),
    "PushSubscription": _object(
        {
            "endpoint": {"type": "string", "format": "uri"},
            "keys": _object(
                {
                    "p256dh": {"type": "string", "description": "uncompressed P-256 key"},
                    "auth": {"type": "string", "description": "16-byte secret"},
                },
                required=("p256dh", "auth"),
            ),
            "expirationTime": {"type": ["number", "null"]},
        },
        required=("endpoint", "keys"),
    ),
    "Object": {"type": "object"},
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


_LOOSE = _json(_ref("Object"))
_PUBLIC: dict[str, Any] = {"security": []}

OPERATIONS: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("GET", "/healthz"): _op("Liveness", {"200": _LOOSE}, **_PUBLIC),
    ("GET", "/readyz"): _op(
        "Readiness (database, broker)",
        {"200": _LOOSE, "503": _json(_ref("Object"), "not ready")},
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
    ("GET", "/openapi.json"): _op("This document", {"200": _LOOSE}, **_PUBLIC),
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
            "200": _json(
                _object({"token": {"type": "string"}, "user": _ref("User")}, closed=False)
            ),
            "400": _error("bad, replayed or denied state"),
            "403": _json(
                {
                    "anyOf": [
                        _ref("Error"),
                        _object(
                            {
                                "error": {"type": "object"},
                                "token": {"type": "string"},
                                "user": _ref("User"),
                            },
                            required=("error", "token", "user"),
                        ),
                    ]
                },
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
    ("GET", "/me/preferences"): _op("Notice preferences", {"200": _LOOSE, **_AUTH_ERRORS}),
    ("PUT", "/me/preferences"): _op(
        "Change notice preferences",
        {"200": _LOOSE, "422": _error("invalid fields"), **_BODY_ERRORS, **_AUTH_ERRORS},
        requestBody=_body("PreferencesUpdate"),
    ),
    ("POST", "/me/push-subscriptions"): _op(
        "Register a Web Push subscription",
        {
            "201": _LOOSE,
            "200": _LOOSE,
            "422": _error("invalid fields"),
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
            "200": _LOOSE,
            "422": _error("bad parameter, limit or cursor"),
            **_AUTH_ERRORS,
        },
        parameters=[
            *_paging(),
            _query("status", "only notices in this delivery status"),
            _query("kind", "only notices of this kind"),
        ],
    ),
    ("GET", "/admin/users"): _op(
        "Every user (admins)",
        {
            "200": _json(
                _object(
                    {
                        "users": {"type": "array", "items": _ref("User")},
                        "next_cursor": {"type": ["string", "null"]},
                    }
                )
            ),
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
            "200": _LOOSE,
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
    ("POST", "/sync"): _op("Sync the caller's calendars now", {"202": _LOOSE, **_AUTH_ERRORS}),
    ("GET", "/sync/logs"): _op(
        "The caller's sync log (admins: anyone's)",
        {"200": _LOOSE, "422": _error("bad parameter, limit or cursor"), **_AUTH_ERRORS},
        parameters=[
            *_paging(),
            _query("kind", "only rows of this kind"),
            _query("calendar_id", "only rows of this calendar"),
            _query("user_id", "admins: another user's log"),
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


def _operations(routes: Iterable[BaseRoute]) -> Iterable[tuple[str, str]]:
    for route in routes:
        if isinstance(route, Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield method, route.path


def undocumented(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """The (method, path) the app serves that `OPERATIONS` does not describe."""
    return [key for key in _operations(routes) if key not in OPERATIONS]


def build_document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of exactly the app's routes."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in _operations(routes):
        operation = OPERATIONS.get(
            (method, path),
            {"responses": {"default": {"description": "undocumented"}}, "x-undocumented": True},
        )
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "calsync", "version": "1", "description": "Google Calendar two-way sync"},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
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
