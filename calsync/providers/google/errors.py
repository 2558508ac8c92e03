"""Google Calendar API failures -> calsync's provider error tree: the one translation point.

Only this module (and the client that calls it) imports ``googleapiclient.errors``. The
table follows Google's guide (https://developers.google.com/calendar/api/guides/errors):

| Google | calsync |
| --- | --- |
| 401 (after the client's one refresh and retry) | `AuthRevoked` |
| 410 `fullSyncRequired`, `updatedMinTooLongAgo`, other 410s on a cursor | `SyncTokenExpired` |
| 410 `deleted`, 404 | `NotFound` |
| 409 | `Conflict` |
| 412 | `PreconditionFailed` |
| 403 `rateLimitExceeded` / `userRateLimitExceeded`, 429 | `RateLimited` (Retry-After) |
| 403 `quotaExceeded` / `dailyLimitExceeded` | `QuotaExceeded` |
| 5xx, 408, timeouts, connection and TLS errors | `Transient` |
| any other 4xx | `Permanent` |

Messages name the status, Google's reason and Google's message, never a URI, a header
or a token: the values the caller passes as ``redact`` (access, sync and page tokens)
are blanked out of Google's message too, should it echo one.
"""

from __future__ import annotations

import http.client
import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httplib2
from googleapiclient.errors import HttpError

from calsync.providers.errors import (
    AuthRevoked,
    Conflict,
    NotFound,
    Permanent,
    PreconditionFailed,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    SyncTokenExpired,
    Transient,
)

__all__ = [
    "TRANSPORT_ERRORS",
    "HttpError",
    "is_unauthorized",
    "retry_after_seconds",
    "translate_http_error",
    "translate_transport_error",
]

#: What httplib2 and the socket layer raise when a request never got an answer.
TRANSPORT_ERRORS: Final[tuple[type[Exception], ...]] = (
    OSError,  # timeouts, refused/reset connections, DNS, ssl.SSLError
    httplib2.HttpLib2Error,
    http.client.HTTPException,  # IncompleteRead, BadStatusLine, ...
)

RATE_LIMIT_REASONS: Final = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"}
)
QUOTA_REASONS: Final = frozenset(
    {"quotaExceeded", "dailyLimitExceeded", "dailyLimitExceededUnreg", "variableTermLimitExceeded"}
)
CURSOR_EXPIRED_REASONS: Final = frozenset({"fullSyncRequired", "updatedMinTooLongAgo"})
DELETED_REASON: Final = "deleted"
MESSAGE_LIMIT: Final = 300
REDACTED: Final = "[redacted]"
# Google's OAuth access tokens, in case a message ever echoes one we were not told about.
_BEARER: Final = re.compile(r"ya29\.[\w.\-]+")


def is_unauthorized(err: HttpError) -> bool:
    """Whether Google refused the access token (401): refresh it once and retry."""
    return _status(err) == 401


def translate_http_error(
    err: HttpError, *, listing: bool = False, redact: Iterable[str] = ()
) -> ProviderError:
    """The calsync error for Google's answer ``err``; raise it ``from err``.

    ``listing`` says the request carried a sync or page cursor (events.list), so that a
    410 without a known reason means the cursor expired rather than a deleted resource.
    ``redact`` lists secret values to blank out of Google's message.
    """
    status = _status(err)
    body = _error_body(err)
    reasons = _reasons(body)
    reason = reasons[0] if reasons else None
    text = _message(status, reason, body, redact)
    if status == 401:
        return AuthRevoked(text, status=status, reason=reason)
    if status == 410:
        cursor_expired = bool(CURSOR_EXPIRED_REASONS & set(reasons)) or (
            listing and DELETED_REASON not in reasons
        )
        if cursor_expired:
            return SyncTokenExpired(text, status=status, reason=reason)
        return NotFound(text, status=status, reason=reason)
    if status == 404:
        return NotFound(text, status=status, reason=reason)
    if status == 409:
        return Conflict(text, status=status, reason=reason)
    if status == 412:
        return PreconditionFailed(text, status=status, reason=reason)
    if status == 429 or (status == 403 and RATE_LIMIT_REASONS & set(reasons)):
        retry_after = retry_after_seconds(err.resp)
        return RateLimited(text, retry_after=retry_after, status=status, reason=reason)
    if status == 403 and QUOTA_REASONS & set(reasons):
        return QuotaExceeded(text, status=status, reason=reason)
    if status >= 500 or status == 408:
        return Transient(text, status=status, reason=reason)
    return Permanent(text, status=status, reason=reason)


def translate_transport_error(err: Exception) -> Transient:
    """The `Transient` for a request that got no answer: one of `TRANSPORT_ERRORS`."""
    kind = "timed out" if isinstance(err, TimeoutError) else "failed"
    return Transient(f"Google request {kind}: {type(err).__name__}", reason=type(err).__name__)


def retry_after_seconds(headers: Mapping[str, Any] | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date), if any."""
    if not headers:
        return None
    raw = headers.get("retry-after") or headers.get("Retry-After")
    if raw is None:
        return None
    value = str(raw).strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _status(err: HttpError) -> int:
    try:
        return int(err.resp.status)
    except (AttributeError, TypeError, ValueError):
        return 0


def _error_body(err: HttpError) -> Mapping[str, Any]:
    try:
        data = json.loads(err.content.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, AttributeError):
        return {}
    if isinstance(data, list) and data:  # batch answers wrap errors in a list
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _reasons(body: Mapping[str, Any]) -> list[str]:
    """Google's reasons: `errors[].reason` (v3), then `details[].reason` (ErrorInfo)."""
    found: list[str] = []
    for key in ("errors", "details"):
        for item in body.get(key) or ():
            if isinstance(item, dict) and isinstance(item.get("reason"), str):
                found.append(item["reason"])
    return found


def _message(
    status: int, reason: str | None, body: Mapping[str, Any], redact: Iterable[str]
) -> str:
    google = body.get("message")
    text = str(google) if isinstance(google, str) else http.client.responses.get(status, "")
    for secret in redact:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _BEARER.sub(REDACTED, text)
    if len(text) > MESSAGE_LIMIT:
        text = text[: MESSAGE_LIMIT - 3] + "..."
    label = f"Google answered {status}" + (f" {reason}" if reason else "")
    return f"{label}: {text}" if text else label
