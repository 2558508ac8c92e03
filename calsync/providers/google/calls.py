"""One call to Google Calendar as one user: quota, token, retries, translation.

`GoogleCalls.execute` is the one way a request built from `api.CalendarApi` reaches
Google. Per attempt it spends the shared quota, authenticates with the user's access
token (one refresh and one more attempt on a 401), counts the request in ``api_calls``
and in the metrics, in a client span. Transient failures and rate limits are retried a
few times within the call; every failure leaves as a `ProviderError`
(:mod:`calsync.providers.google.errors`). The resource modules (`event_listing`,
`event_calls`, `calendar_calls`, `channel_calls`) build the requests and read the answers.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any, Final, Protocol

import httplib2
from opentelemetry.trace import SpanKind
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_random_exponential

from calsync import metrics, tracing
from calsync.domain.secret import Secret
from calsync.providers.errors import AccountNotConnected, AuthRevoked, RateLimited, Transient
from calsync.providers.google.api import CalendarApi, HttpPool
from calsync.providers.google.errors import (
    TRANSPORT_ERRORS,
    HttpError,
    is_unauthorized,
    translate_http_error,
    translate_transport_error,
)
from calsync.providers.google.oauth import OAuthUnavailable
from calsync.providers.quota import QuotaWaitExceeded

__all__ = ["DEFAULT_ATTEMPTS", "MAX_RETRY_AFTER", "GoogleCalls", "QuotaGate", "TokenSource"]

DEFAULT_ATTEMPTS: Final = 4
MAX_RETRY_AFTER: Final = 30.0  # longer waits go back to the job queue
TOKEN_RECHECK: Final = 60.0  # seconds a client reuses a token before asking the store again


class TokenSource(Protocol):
    """Valid access tokens for a user: the port by which the provider gets a token (the
    service is `calsync.sync.access_tokens.AccessTokens`; the provider knows no store)."""

    def for_user(self, user_id: uuid.UUID) -> Secret: ...

    def after_unauthorized(self, user_id: uuid.UUID, rejected: Secret) -> Secret: ...


class QuotaGate(Protocol):
    """Spends one request of a user's quota (`calsync.providers.quota.QuotaLimiter`)."""

    def acquire(self, user_id: uuid.UUID) -> None: ...

    def close(self) -> None: ...


class GoogleCalls:
    """Sends one user's calls to Google; one job on one thread at a time.

    ``api_calls`` counts the HTTP requests sent, retries included, for the sync log.
    ``sleep`` is the only way it waits (retry backoff), so tests inject it. Connections
    come from ``http`` (this thread's); the caller owns the pool.
    """

    def __init__(
        self,
        *,
        user_id: uuid.UUID,
        api: CalendarApi,
        tokens: TokenSource,
        quota: QuotaGate,
        http: HttpPool,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = DEFAULT_ATTEMPTS,
        max_retry_after: float = MAX_RETRY_AFTER,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.user_id = user_id
        self.api_calls = 0
        self._api = api
        self._tokens = tokens
        self._quota = quota
        self._http = http
        self._monotonic = monotonic
        self._token: Secret | None = None
        self._token_at = 0.0
        self._max_retry_after = max_retry_after
        self._retrying = Retrying(
            stop=self._should_stop(max_attempts),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            sleep=sleep,
            reraise=True,
        )

    def execute(
        self,
        make_request: Callable[[CalendarApi], Any],
        *,
        if_match: str | None = None,
        cursor: str | None = None,
        secrets: tuple[str | None, ...] = (),
    ) -> Any:
        """Send one API call; returns Google's decoded JSON answer.

        Every attempt spends quota and counts in ``api_calls``; a 401 leads to one token
        refresh and one more attempt per call. ``cursor`` (a page or sync token) marks a
        listing, whose expired token translates to a full resync; ``secrets`` are
        redacted from error messages. Raises `ProviderError`s only.
        """
        refreshed = False

        def attempt() -> Any:
            nonlocal refreshed
            while True:
                token = self._current_token()
                self._quota.acquire(self.user_id)
                request = make_request(self._api)
                request.headers["authorization"] = "Bearer " + token.reveal()
                if if_match:
                    request.headers["if-match"] = if_match
                self.api_calls += 1
                http = self._http.get()
                try:
                    return self._send(request, http)
                except HttpError as err:
                    if is_unauthorized(err) and not refreshed:
                        self._refresh(token)  # a Transient here leaves the refresh to retry
                        refreshed = True
                        continue
                    redact = (token.reveal(), *(s for s in secrets if s))
                    raise translate_http_error(
                        err, listing=cursor is not None, redact=redact
                    ) from err
                except TRANSPORT_ERRORS as err:
                    http.close()  # drop a connection that may be half-broken
                    raise translate_transport_error(err) from err
                except ValueError as err:  # a 2xx whose body is not the JSON it should be
                    raise Transient("Google answered with a body calsync cannot read") from err

        try:
            return self._retrying(attempt)
        except AuthRevoked:
            self._token = None  # the next call asks the store, which knows the grant is gone
            raise

    def _send(self, request: Any, http: httplib2.Http) -> Any:
        """Execute one request in a client span; count and time it by method and status
        (``network`` when no answer came). Raises what ``execute`` raises."""
        method = _method_name(request)
        status = "network"
        decode = request.postproc

        def postproc(response: Any, content: Any) -> Any:
            nonlocal status
            status = str(response.status)
            return decode(response, content)

        request.postproc = postproc
        attributes = {"calsync.google.method": method, "http.request.method": request.method}
        started = time.perf_counter()
        with tracing.span(f"Google {method}", kind=SpanKind.CLIENT, attributes=attributes) as span:
            try:
                return request.execute(http=http, num_retries=0)
            except HttpError as err:
                status = str(err.resp.status)
                raise
            finally:
                metrics.GOOGLE_CALLS.labels(method, status).inc()
                metrics.GOOGLE_CALL_DURATION.labels(method).observe(time.perf_counter() - started)
                if status.isdigit():
                    span.set_attribute("http.response.status_code", int(status))

    # --- the user's access token ------------------------------------------------------

    def _current_token(self) -> Secret:
        now = self._monotonic()
        if self._token is None or now - self._token_at > TOKEN_RECHECK:
            self._token = self._from_store(lambda: self._tokens.for_user(self.user_id))
            self._token_at = now
        return self._token

    def _refresh(self, rejected: Secret) -> None:
        self._token = self._from_store(
            lambda: self._tokens.after_unauthorized(self.user_id, rejected)
        )
        self._token_at = self._monotonic()

    def _from_store(self, fetch: Callable[[], Secret]) -> Secret:
        try:
            return fetch()
        except AccountNotConnected as err:
            # The store's reason: no tokens, or tokens without calendar access.
            raise AuthRevoked(str(err), reason="not_connected") from err
        except OAuthUnavailable as err:
            raise Transient("Google's token endpoint is unavailable", reason="oauth") from err

    # --- retry policy ----------------------------------------------------------------

    def _should_stop(self, max_attempts: int) -> Callable[[RetryCallState], bool]:
        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= max_attempts:
                return True
            error = state.outcome.exception() if state.outcome else None
            # Google asks for a longer pause than a worker should hold a call open.
            return (
                isinstance(error, RateLimited)
                and error.retry_after is not None
                and error.retry_after > self._max_retry_after
            )

        return stop

    _backoff = wait_random_exponential(multiplier=0.5, max=8)

    def _wait(self, state: RetryCallState) -> float:
        backoff = float(self._backoff(state))
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            jitter = random.uniform(0, min(1.0, error.retry_after / 10))  # noqa: S311
            return max(backoff, error.retry_after + jitter)
        return backoff


def _method_name(request: Any) -> str:
    """``events.list`` for the request of Discovery method ``calendar.events.list``."""
    method_id = str(getattr(request, "methodId", "") or "unknown")
    return method_id.removeprefix("calendar.")


def _retryable(error: BaseException) -> bool:
    if isinstance(error, QuotaWaitExceeded):
        return False  # calsync's own limiter already waited as long as a call may
    return isinstance(error, Transient | RateLimited)
