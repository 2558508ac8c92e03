"""Google's error answers -> calsync's error tree: the translation table, and no secrets."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httplib2
import pytest

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
from calsync.providers.google.errors import (
    TRANSPORT_ERRORS,
    HttpError,
    is_unauthorized,
    retry_after_seconds,
    translate_http_error,
    translate_transport_error,
)

ACCESS_TOKEN = "ya29.a0AfH6SMBx-secret-access-token"
SYNC_TOKEN = "CPDAlvWDx70CEPDAlvWDx70CGAU="


def google_error(
    status: int,
    reason: str | None = None,
    *,
    message: str = "Something went wrong",
    headers: dict[str, str] | None = None,
    uri: str = f"https://www.googleapis.com/calendar/v3/calendars/x/events?syncToken={SYNC_TOKEN}",
) -> HttpError:
    """An HttpError as googleapiclient raises it for Google's JSON error body."""
    errors = [{"domain": "global", "reason": reason, "message": message}] if reason else []
    body = {"error": {"code": status, "message": message, "errors": errors}}
    response = httplib2.Response({"status": str(status), **(headers or {})})
    response.reason = http.client.responses.get(status, "")
    return HttpError(response, json.dumps(body).encode(), uri=uri)


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (401, "authError", AuthRevoked),
        (410, "fullSyncRequired", SyncTokenExpired),
        (410, "updatedMinTooLongAgo", SyncTokenExpired),
        (410, "deleted", NotFound),
        (404, "notFound", NotFound),
        (409, "duplicate", Conflict),
        (412, "conditionNotMet", PreconditionFailed),
        (403, "rateLimitExceeded", RateLimited),
        (403, "userRateLimitExceeded", RateLimited),
        (429, "rateLimitExceeded", RateLimited),
        (429, None, RateLimited),
        (403, "quotaExceeded", QuotaExceeded),
        (403, "dailyLimitExceeded", QuotaExceeded),
        (403, "forbidden", Permanent),
        (403, "requiredAccessLevel", Permanent),
        (403, "insufficientPermissions", Permanent),
        (400, "invalid", Permanent),
        (400, "timeRangeEmpty", Permanent),
        (405, None, Permanent),
        (408, None, Transient),
        (500, "backendError", Transient),
        (502, None, Transient),
        (503, "backendError", Transient),
        (504, None, Transient),
    ],
)
def test_each_status_and_reason_has_its_class(
    status: int, reason: str | None, expected: type[ProviderError]
) -> None:
    error = translate_http_error(google_error(status, reason))

    assert type(error) is expected
    assert error.status == status
    assert error.reason == reason


@pytest.mark.parametrize(
    ("listing", "reason", "expected"),
    [
        (True, None, SyncTokenExpired),  # an expired cursor, whatever Google calls it
        (True, "deleted", NotFound),
        (False, None, NotFound),  # a single resource that is gone
        (False, "fullSyncRequired", SyncTokenExpired),
    ],
)
def test_a_410_depends_on_whether_a_cursor_was_sent(
    listing: bool, reason: str | None, expected: type[ProviderError]
) -> None:
    assert type(translate_http_error(google_error(410, reason), listing=listing)) is expected


def test_the_reason_may_come_from_error_info_details() -> None:
    body = {
        "error": {
            "code": 403,
            "message": "Quota exceeded",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "RATE_LIMIT_EXCEEDED",
                }
            ],
        }
    }
    response = httplib2.Response({"status": "403"})
    error = translate_http_error(HttpError(response, json.dumps(body).encode()))

    assert isinstance(error, RateLimited)


def test_a_body_that_is_not_json_still_translates_by_status() -> None:
    response = httplib2.Response({"status": "502"})
    error = translate_http_error(HttpError(response, b"<html>Bad Gateway</html>"))

    assert isinstance(error, Transient)
    assert error.reason is None
    assert "502" in error.message


@pytest.mark.parametrize("status", [403, 429])
def test_rate_limits_carry_retry_after_in_seconds(status: int) -> None:
    error = translate_http_error(
        google_error(status, "rateLimitExceeded", headers={"retry-after": "17"})
    )

    assert isinstance(error, RateLimited)
    assert error.retry_after == 17


def test_rate_limits_without_retry_after_leave_it_to_the_backoff() -> None:
    error = translate_http_error(google_error(429))

    assert isinstance(error, RateLimited)
    assert error.retry_after is None


def test_retry_after_as_an_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=90)
    seconds = retry_after_seconds({"retry-after": format_datetime(when, usegmt=True)})

    assert seconds is not None
    assert 85 <= seconds <= 90


@pytest.mark.parametrize("value", ["soon", "", "nan", "inf"])
def test_a_garbled_retry_after_is_ignored(value: str) -> None:
    assert retry_after_seconds({"retry-after": value}) is None


def test_a_retry_after_in_the_past_is_zero() -> None:
    assert retry_after_seconds({"retry-after": "-5"}) == 0


def test_only_401_asks_for_a_refresh() -> None:
    assert is_unauthorized(google_error(401, "authError"))
    assert not is_unauthorized(google_error(403, "forbidden"))


def test_messages_name_status_reason_and_google_message() -> None:
    error = translate_http_error(
        google_error(412, "conditionNotMet", message="Precondition Failed")
    )

    assert error.message == "Google answered 412 conditionNotMet: Precondition Failed"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 429, 500])
def test_messages_never_carry_tokens_or_the_request_uri(status: int) -> None:
    # Google's message echoes both tokens; the URI carries the sync token.
    echoed = f"Invalid value {SYNC_TOKEN} for Bearer {ACCESS_TOKEN}"
    error = translate_http_error(
        google_error(status, "invalid", message=echoed), redact=[SYNC_TOKEN]
    )

    for text in (str(error), repr(error), error.message):
        assert SYNC_TOKEN not in text
        assert ACCESS_TOKEN not in text
        assert "googleapis.com" not in text
        assert "[redacted]" in text


def test_long_google_messages_are_cut() -> None:
    error = translate_http_error(google_error(400, "invalid", message="x" * 5000))

    assert len(error.message) < 400


@pytest.mark.parametrize(
    "failure",
    [
        TimeoutError("timed out"),
        socket.gaierror(-2, "Name or service not known"),
        ConnectionResetError(104, "Connection reset by peer"),
        ConnectionRefusedError(111, "Connection refused"),
        ssl.SSLError("bad record"),
        OSError(101, "Network is unreachable"),
        httplib2.ServerNotFoundError("Unable to find the server at www.googleapis.com"),
        http.client.RemoteDisconnected("Remote end closed connection"),
        http.client.IncompleteRead(b"partial"),
    ],
)
def test_transport_failures_are_transient(failure: Exception) -> None:
    assert isinstance(failure, TRANSPORT_ERRORS)

    error = translate_transport_error(failure)

    assert isinstance(error, Transient)
    assert error.retryable
    assert error.status is None


def test_a_timeout_says_so() -> None:
    assert "timed out" in translate_transport_error(TimeoutError()).message
