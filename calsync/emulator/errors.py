"""Google's error body, and the reasons the emulator answers with.

Every Calendar API error leaves the emulator as::

    {"error": {"code": 404, "message": "Not Found",
               "errors": [{"domain": "global", "reason": "notFound", "message": "Not Found"}],
               "status": "NOT_FOUND"}}

See https://developers.google.com/workspace/calendar/api/guides/errors. OAuth endpoints
use OAuth's own ``{"error": ..., "error_description": ...}`` shape instead (``oauth.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    410: "FAILED_PRECONDITION",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}

# reason -> (domain, default message), as Google words them.
KNOWN_REASONS: dict[str, tuple[str, str]] = {
    "badRequest": ("global", "Bad Request"),
    "invalid": ("global", "Invalid Value"),
    "required": ("global", "Required"),
    "timeRangeEmpty": ("calendar", "The specified time range is empty."),
    "authError": ("global", "Invalid Credentials"),
    "forbidden": ("global", "Forbidden"),
    "insufficientPermissions": ("global", "Insufficient Permission"),
    "requiredAccessLevel": ("calendar", "You need to have writer access to this calendar."),
    "forbiddenForNonOrganizer": (
        "calendar",
        "Shared properties can only be changed by the organizer of the event.",
    ),
    "rateLimitExceeded": ("usageLimits", "Rate Limit Exceeded"),
    "userRateLimitExceeded": ("usageLimits", "User Rate Limit Exceeded"),
    "quotaExceeded": ("usageLimits", "Calendar usage limits exceeded."),
    "notFound": ("global", "Not Found"),
    "duplicate": ("global", "The requested identifier already exists."),
    "conflict": ("global", "Conflict"),
    "fullSyncRequired": ("calendar", "Sync token is no longer valid, a full sync is required."),
    "deleted": ("calendar", "Resource has been deleted"),
    "conditionNotMet": ("global", "Precondition Failed"),
    "backendError": ("global", "Backend Error"),
    "internalError": ("global", "Internal Error"),
}

# The reason a bare status code gets when a fault names none.
DEFAULT_REASONS: dict[int, str] = {
    400: "badRequest",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    409: "duplicate",
    410: "fullSyncRequired",
    412: "conditionNotMet",
    429: "rateLimitExceeded",
    500: "backendError",
    502: "backendError",
    503: "backendError",
}


class GoogleApiError(Exception):
    """An error answer in Google's shape; raise it anywhere below a route."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str | None = None,
        *,
        domain: str | None = None,
        location: str | None = None,
        location_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        known_domain, known_message = KNOWN_REASONS.get(reason, ("global", reason))
        self.status = status
        self.reason = reason
        self.message = message or known_message
        self.domain = domain or known_domain
        self.location = location
        self.location_type = location_type
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(f"{status} {reason}: {self.message}")

    def __repr__(self) -> str:
        return f"GoogleApiError(status={self.status}, reason={self.reason!r})"

    def body(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "domain": self.domain,
            "reason": self.reason,
            "message": self.message,
        }
        if self.location is not None:
            detail["location"] = self.location
            detail["locationType"] = self.location_type or "parameter"
        error: dict[str, Any] = {"code": self.status, "message": self.message, "errors": [detail]}
        if self.status in STATUS_NAMES:
            error["status"] = STATUS_NAMES[self.status]
        return {"error": error}

    def to_response(self) -> Response:
        headers = dict(self.headers)
        if self.status == 401:
            headers.setdefault(
                "WWW-Authenticate",
                'Bearer realm="https://accounts.google.com/", error="invalid_token"',
            )
        return Response(
            json.dumps(self.body(), indent=2),
            status_code=self.status,
            headers=headers,
            media_type="application/json; charset=UTF-8",
        )


def from_status(
    status: int,
    reason: str | None = None,
    message: str | None = None,
    *,
    domain: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> GoogleApiError:
    """The error a fault injection asks for; the reason defaults by status."""
    return GoogleApiError(
        status,
        reason or DEFAULT_REASONS.get(status, "backendError"),
        message,
        domain=domain,
        headers=headers,
    )


def invalid(message: str, location: str | None = None) -> GoogleApiError:
    return GoogleApiError(400, "invalid", message, location=location)


def required(message: str, location: str | None = None) -> GoogleApiError:
    return GoogleApiError(400, "required", message, location=location)


def bad_request(message: str, location: str | None = None) -> GoogleApiError:
    return GoogleApiError(400, "badRequest", message, location=location)


def login_required() -> GoogleApiError:
    return GoogleApiError(
        401, "required", "Login Required.", location="Authorization", location_type="header"
    )


def invalid_credentials() -> GoogleApiError:
    return GoogleApiError(401, "authError", location="Authorization", location_type="header")


def insufficient_scopes() -> GoogleApiError:
    return GoogleApiError(
        403,
        "insufficientPermissions",
        "Request had insufficient authentication scopes.",
    )


def writer_access_required() -> GoogleApiError:
    return GoogleApiError(403, "requiredAccessLevel")


def not_found() -> GoogleApiError:
    return GoogleApiError(404, "notFound")


def duplicate() -> GoogleApiError:
    return GoogleApiError(409, "duplicate")


def full_sync_required() -> GoogleApiError:
    return GoogleApiError(410, "fullSyncRequired", location="syncToken")


def deleted() -> GoogleApiError:
    return GoogleApiError(410, "deleted")


def condition_not_met() -> GoogleApiError:
    return GoogleApiError(412, "conditionNotMet", location="If-Match", location_type="header")
