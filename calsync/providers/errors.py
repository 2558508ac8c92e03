"""The errors every calendar provider raises, whatever its API (design.md section 1).

A provider client translates its API's failures into exactly these, in one place, with
`raise ... from err`. Callers decide on the class, never on status codes: jobs retry
`retryable` errors (honouring `RateLimited.retry_after`), re-read and merge on
`PreconditionFailed`, treat `Conflict` on a client-id insert as "already created", drop
the cursor on `SyncTokenExpired`, treat `NotFound` on delete as done, pause the account
on `AuthRevoked` and the user's writes on `QuotaExceeded`, and give up on `Permanent`.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

__all__ = [
    "AccountNeedsReauth",
    "AccountNotConnected",
    "AuthRevoked",
    "Conflict",
    "NotFound",
    "Permanent",
    "PreconditionFailed",
    "ProviderError",
    "QuotaExceeded",
    "RateLimited",
    "SyncTokenExpired",
    "Transient",
]


class ProviderError(Exception):
    """Base of all provider failures. `status`/`reason` are the provider's, for logs."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str = "", *, status: int | None = None, reason: str | None = None):
        super().__init__(message or type(self).__name__)
        self.message = message or type(self).__name__
        self.status = status
        self.reason = reason

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status={self.status}, reason={self.reason!r})"
        )


class AuthRevoked(ProviderError):
    """The user's grant is gone (`invalid_grant`, revoked token): re-consent is needed."""


class AccountNeedsReauth(AuthRevoked):
    """The user's grant is gone; nothing can be done for them until they sign in. Raised
    by the token source a provider is given (`calsync.sync.access_tokens`)."""

    def __init__(self, user_id: uuid.UUID) -> None:
        super().__init__(f"user {user_id} must sign in with Google again", reason="invalid_grant")
        self.user_id = user_id


class AccountNotConnected(Exception):
    """The user never connected a Google account, or their stored tokens lack calendar
    access (they left it unticked on Google's granular consent screen): nothing calls
    Google for them until they sign in again and grant it. Not ``needs_reauth``: their
    grant is alive, it just does not cover calendars. Raised by the token source."""


class SyncTokenExpired(ProviderError):
    """The incremental sync cursor is no longer valid (410): do a full sync."""


class PreconditionFailed(ProviderError):
    """The `If-Match` etag is stale (412): re-read, merge and try again."""


class Conflict(ProviderError):
    """The resource already exists (409), e.g. an insert with a client id that was retried."""


class NotFound(ProviderError):
    """The resource does not exist or was deleted (404; 410 `deleted` for single resources)."""


class RateLimited(ProviderError):
    """Too many requests (403 rateLimitExceeded/userRateLimitExceeded, 429): back off.

    `retry_after` is the provider's Retry-After in seconds, if it gave one.
    """

    retryable = True

    def __init__(
        self,
        message: str = "",
        *,
        retry_after: float | None = None,
        status: int | None = None,
        reason: str | None = None,
    ):
        super().__init__(message, status=status, reason=reason)
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, retry_after={self.retry_after})"


class QuotaExceeded(ProviderError):
    """The daily or project quota is used up (403 quotaExceeded): pause the user's writes."""


class Transient(ProviderError):
    """A failure that may pass by itself (5xx, timeouts, connection errors): retry."""

    retryable = True


class Permanent(ProviderError):
    """A request the provider will never accept as sent (other 4xx): do not retry."""

    def __init__(self, message: str = "", *, status: int | None = None, reason: str | None = None):
        super().__init__(message, status=status, reason=reason)
