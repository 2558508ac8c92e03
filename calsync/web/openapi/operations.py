"""What each (method, path) of the API is: `OPERATIONS`, its summary, parameters and
answers, one entry per operation the app serves, and `ANSWERED_BEFORE_ROUTING`, the
operations the middleware answers before any route."""

from __future__ import annotations

from typing import Any, Final

from calsync.store.audit import AuditAction
from calsync.store.sync_logs import LogKind
from calsync.store.tables import DELIVERY_STATUSES, NOTICE_KINDS
from calsync.web.notification_intake import MAX_BODY_BYTES
from calsync.web.notification_intake import PATH as INTAKE_PATH
from calsync.web.openapi.parts import (
    AUTH_ERRORS,
    BODY_ERRORS,
    DATE_PARAM,
    EVENT_ID,
    IF_MATCH,
    PUBLIC,
    SCOPE,
    answer,
    body,
    error,
    goog_header,
    op,
    paging,
    path_id,
    query,
    ref,
)

OPERATIONS: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("GET", "/healthz"): op("Liveness", {"200": answer(ref("Health"))}, **PUBLIC),
    ("GET", "/readyz"): op(
        "Readiness (database, broker)",
        {"200": answer(ref("Readiness")), "503": answer(ref("Readiness"), "not ready")},
        **PUBLIC,
    ),
    ("GET", "/metrics"): op(
        "Prometheus metrics",
        {
            "200": {
                "description": "text exposition",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "401": error(
                "CALSYNC_METRICS_TOKEN is set and the request does not carry it as a bearer"
                " token (absent from this port when CALSYNC_METRICS_PORT is set)"
            ),
        },
        **PUBLIC,
    ),
    ("GET", "/openapi.json"): op(
        "This document", {"200": answer(ref("OpenAPIDocument"))}, **PUBLIC
    ),
    ("GET", "/auth/google"): op(
        "Start Google sign-in (authorization code, PKCE S256)",
        {"302": {"description": "redirect to Google's consent page"}, "400": error("bad request")},
        parameters=[
            query(
                "login_hint",
                "email passed on to Google",
                {"type": "string", "format": "email", "maxLength": 320},
            )
        ],
        **PUBLIC,
    ),
    ("GET", "/auth/google/callback"): op(
        "Finish Google sign-in; answers a calsync JWT",
        {
            "200": answer(ref("SignedIn")),
            "400": error("bad, replayed or denied state"),
            "403": answer(
                {"anyOf": [ref("Error"), ref("SignedInWithoutCalendar")]},
                "the Google account is a disabled user's (account_disabled), or calendar"
                " access was not granted (calendar_access_not_granted: the body also"
                " carries token and user, who is signed in but not connected)",
            ),
            "409": error(
                "the email belongs to a user bound to another Google account; refused and"
                " audited until an admin releases it (email_of_another_account)"
            ),
            "429": error("too many requests from this address"),
            "502": error("Google's token endpoint failed"),
        },
        parameters=[
            query("code", "the authorization code Google gave"),
            query("state", "the state sent with the redirect (bound to a cookie)"),
            query("error", "set by Google when consent was refused"),
        ],
        **PUBLIC,
    ),
    ("GET", "/me"): op("The caller", {"200": answer(ref("User")), **AUTH_ERRORS}),
    ("GET", "/me/preferences"): op(
        "Notice preferences", {"200": answer(ref("Preferences")), **AUTH_ERRORS}
    ),
    ("PUT", "/me/preferences"): op(
        "Change notice preferences",
        {
            "200": answer(ref("Preferences")),
            "422": error("invalid fields (every one named)"),
            **BODY_ERRORS,
            **AUTH_ERRORS,
        },
        requestBody=body("PreferencesUpdate"),
    ),
    ("POST", "/me/push-subscriptions"): op(
        "Register a Web Push subscription",
        {
            "201": answer(ref("PushSubscriptionSaved"), "registered"),
            "200": answer(ref("PushSubscriptionSaved"), "known endpoint, keys refreshed"),
            "422": error("invalid fields (every one named)"),
            **BODY_ERRORS,
            **AUTH_ERRORS,
        },
        requestBody=body("PushSubscription"),
    ),
    ("DELETE", "/me/push-subscriptions/{subscription_id}"): op(
        "Remove a Web Push subscription",
        {"204": {"description": "removed"}, "404": error("no such subscription"), **AUTH_ERRORS},
        parameters=[
            {
                "name": "subscription_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": "the id POST /me/push-subscriptions answered",
            }
        ],
    ),
    ("GET", "/me/notices"): op(
        "The caller's notices, newest first",
        {
            "200": answer(ref("NoticePage")),
            "422": error("bad parameter, limit or cursor"),
            **AUTH_ERRORS,
        },
        parameters=[
            *paging(),
            query(
                "status",
                "only notices in this delivery status",
                {"enum": list(DELIVERY_STATUSES)},
            ),
            query("kind", "only notices of this kind", {"enum": list(NOTICE_KINDS)}),
        ],
    ),
    ("GET", "/admin/users"): op(
        "Every user (admins)",
        {
            "200": answer(ref("UserPage")),
            "403": error("not an admin"),
            "422": error("bad parameter, limit or cursor"),
            **AUTH_ERRORS,
        },
        parameters=paging(),
    ),
    ("PATCH", "/admin/users/{user_id}"): op(
        "Change a user's role or status (admins); disabled stops their sync",
        {
            "200": answer(ref("User")),
            "403": error("not an admin"),
            "404": error("no such user"),
            "422": error("invalid role or status"),
            **BODY_ERRORS,
            **AUTH_ERRORS,
        },
        parameters=[path_id("user_id", "a user id from GET /admin/users")],
        requestBody=body("UserUpdate"),
    ),
    ("POST", "/admin/users/{user_id}/release-email"): op(
        "Detach a user from their email and disable them, keeping their data, so that the"
        " Google account refused with that email signs in as a new user (admins; audited)",
        {
            "200": answer(ref("User")),
            "403": error("not an admin"),
            "404": error("no such user"),
            "409": error("an admin's own account"),
            **AUTH_ERRORS,
        },
        parameters=[path_id("user_id", "a user id from GET /admin/users")],
    ),
    ("GET", "/admin/audit"): op(
        "The audit trail, newest first (admins)",
        {
            "200": answer(ref("AuditPage")),
            "403": error("not an admin"),
            "422": error("bad parameter, limit or cursor"),
            **AUTH_ERRORS,
        },
        parameters=[
            *paging(),
            query(
                "action",
                "only entries of this action",
                {"type": "string", "enum": sorted(a.value for a in AuditAction)},
            ),
        ],
    ),
    ("POST", "/webhooks/google"): op(
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
            "400": error("X-Goog-Channel-ID or X-Goog-Resource-State missing; nothing changed"),
            "413": error(
                f"a body over {MAX_BODY_BYTES // 1024} KiB (Google sends none); nothing changed"
            ),
            "503": {
                **error(
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
                "description": "the channel calsync opened (events.watch)",
            },
            {
                "name": "X-Goog-Resource-State",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "minLength": 1},
                "description": "sync, exists or not_exists; other values are acknowledged",
            },
            goog_header("X-Goog-Channel-Token", "the channel's secret; a wrong one is ignored"),
            goog_header("X-Goog-Resource-ID", "Google's id of the watched resource"),
            goog_header("X-Goog-Message-Number", "Google's message counter for the channel"),
        ],
        **PUBLIC,
    ),
    ("POST", "/sync"): op(
        "Sync the caller's calendars now: queue their pulls (none runs twice)",
        {
            "202": answer(ref("SyncQueued"), "pulls queued"),
            "404": error("no such calendar (calendar_id)"),
            "409": error("Google access was lost; sign in again (needs_reauth)"),
            "422": error("calendar_id is not an id, or a parameter the route does not take"),
            **AUTH_ERRORS,
        },
        parameters=[
            query(
                "calendar_id",
                "only this calendar (default: every selected calendar, and the calendar"
                " list is read again)",
                {"type": "string", "format": "uuid"},
            )
        ],
    ),
    ("GET", "/sync/logs"): op(
        "The caller's sync log, newest first (admins: anyone's)",
        {
            "200": answer(ref("SyncLogPage")),
            "404": error("user_id is another user's and the caller is not an admin"),
            "422": error("bad parameter, limit or cursor"),
            **AUTH_ERRORS,
        },
        parameters=[
            *paging(),
            query(
                "kind",
                "only rows of this kind",
                {"enum": sorted(kind.value for kind in LogKind)},
            ),
            query(
                "calendar_id", "only rows of this calendar", {"type": "string", "format": "uuid"}
            ),
            query(
                "user_id",
                "admins: another user's log (others: only their own id)",
                {"type": "string", "format": "uuid"},
            ),
        ],
    ),
    ("GET", "/calendars"): op(
        "The caller's calendars with access role and sync state",
        {"200": answer(ref("CalendarList")), **AUTH_ERRORS},
    ),
    ("PATCH", "/calendars/{calendar_id}"): op(
        "Set a calendar's own conflict policy (null: the installation's)",
        {
            "200": answer(ref("Calendar")),
            "404": error("no such calendar"),
            "422": error("invalid policy"),
            **BODY_ERRORS,
            **AUTH_ERRORS,
        },
        parameters=[
            path_id("calendar_id", "a calendar id from GET /calendars; another user's is 404")
        ],
        requestBody=body("CalendarUpdate"),
    ),
    ("POST", "/events"): op(
        "Create an event or series (answers at once, sync_state pending)",
        {
            "201": answer(ref("Event"), "created (or the first answer to this Idempotency-Key)"),
            "403": error("calendar is read-only"),
            "404": error("no such calendar"),
            "409": error("just signed in: the calendars are not listed yet; try again"),
            "422": error(
                "invalid fields or query parameters (it takes none), or Idempotency-Key"
                " reused with another body"
            ),
            **BODY_ERRORS,
            **AUTH_ERRORS,
        },
        parameters=[
            {
                "name": "Idempotency-Key",
                "in": "header",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": "per user: a repeat with the same body gets the first answer,"
                " nothing created; with another body 422 idempotency_key_reused",
            }
        ],
        requestBody=body("EventCreate"),
    ),
    ("GET", "/events"): op(
        "The caller's events by start, paged by cursor",
        {"200": answer(ref("EventPage")), "422": error("bad parameter"), **AUTH_ERRORS},
        parameters=[
            query(
                "start_date",
                "YYYY-MM-DD (caller's zone) or date-time with offset; with end_date. The range"
                " is cut to 0001-01-08..9999-12-25 UTC; one wholly past an end is a 422",
                DATE_PARAM,
            ),
            query(
                "end_date", "inclusive date, or exclusive date-time; with start_date", DATE_PARAM
            ),
            query("category", "only this category"),
            query(
                "calendar_id",
                "only this calendar (empty: every calendar)",
                {"anyOf": [{"type": "string", "format": "uuid"}, {"const": ""}]},
            ),
            query(
                "recurring", "true: series (instances); false: single events", {"type": "boolean"}
            ),
            query(
                "expand", "true: series expanded into instances in the range", {"type": "boolean"}
            ),
            *paging(),
        ],
    ),
    ("GET", "/events/{event_id}"): op(
        "One event, series or instance (ETag header)",
        {"200": answer(ref("Event")), "404": error("no such event"), **AUTH_ERRORS},
        parameters=[EVENT_ID],
    ),
    ("PUT", "/events/{event_id}"): op(
        "Change an event; fields left out keep their values",
        {
            "200": answer(ref("Event")),
            "403": error("not the organizer, or calendar read-only"),
            "404": error("no such event"),
            "412": error("If-Match does not match the current etag"),
            "422": error("invalid fields or scope"),
            **BODY_ERRORS,
            **AUTH_ERRORS,
        },
        parameters=[EVENT_ID, SCOPE, IF_MATCH],
        requestBody=body("EventUpdate"),
    ),
    ("PATCH", "/events/{event_id}"): op(
        "The same as PUT: change an event; fields left out keep their values",
        {
            "200": answer(ref("Event")),
            "403": error("not the organizer, or calendar read-only"),
            "404": error("no such event"),
            "412": error("If-Match does not match the current etag"),
            "422": error("invalid fields or scope"),
            **BODY_ERRORS,
            **AUTH_ERRORS,
        },
        parameters=[EVENT_ID, SCOPE, IF_MATCH],
        requestBody=body("EventUpdate"),
    ),
    ("DELETE", "/events/{event_id}"): op(
        "Delete an event or series, cancel an instance, or end a series (scope=following)",
        {
            "204": {"description": "deleted locally; Google follows"},
            "403": error("not the organizer, or calendar read-only"),
            "404": error("no such event"),
            "412": error("If-Match does not match the current etag"),
            "422": error("invalid scope"),
            **AUTH_ERRORS,
        },
        parameters=[EVENT_ID, SCOPE, IF_MATCH],
    ),
}


#: What the API answers before routing: `NotificationIntakeMiddleware`, which every API app
#: carries, answers ``POST /webhooks/google`` itself (no route serves it).
ANSWERED_BEFORE_ROUTING: Final = (("POST", INTAKE_PATH),)
