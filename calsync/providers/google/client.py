"""The Google Calendar API v3 adapter of `CalendarProvider`, for one user.

It owns the HTTP side of talking to Google: building requests with the real
google-api-python-client (its bundled discovery document, built once per process),
authenticating them with the user's access token (one refresh and retry on 401),
spending the shared quota before each request, retrying transient failures and rate
limits a few times within one call, and translating every failure through
:mod:`calsync.providers.google.errors`. JSON <-> `Event` is
:mod:`calsync.providers.google.mapping`'s business.

Sync rules it follows (https://developers.google.com/calendar/api/guides/sync):
listings are `events.list` with `maxResults=2500`, `showDeleted=true`,
`singleEvents=false` and either nothing else or the `syncToken`; writes carry
`sendUpdates` and, when given, `If-Match`.

It does not decide what to do about an error (the sync use cases and jobs do) and does
not page by itself except through the calendar list. A client is meant for one job on
one thread (`GoogleProviders.for_user` makes a new one each time); connections are per
thread in any case (`HttpPool`), since ``httplib2.Http`` is not thread-safe.
"""

from __future__ import annotations

import contextvars
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple, Protocol

import httplib2
import orjson
from googleapiclient.discovery import build
from googleapiclient.model import JsonModel
from opentelemetry.trace import SpanKind
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_random_exponential

from calsync import metrics, tracing
from calsync.config import Settings
from calsync.domain.models import Event
from calsync.domain.secret import Secret
from calsync.providers.base import CalendarInfo, ChangesPage, Channel
from calsync.providers.errors import (
    AccountNotConnected,
    AuthRevoked,
    Permanent,
    RateLimited,
    Transient,
)
from calsync.providers.google.errors import (
    TRANSPORT_ERRORS,
    HttpError,
    is_unauthorized,
    translate_http_error,
    translate_transport_error,
)
from calsync.providers.google.mapping import (
    event_from_google,
    event_to_google,
    storable_id,
    storable_text,
)
from calsync.providers.google.oauth import OAuthUnavailable
from calsync.providers.google.props import CONFERENCE_DATA_VERSION
from calsync.providers.quota import QuotaWaitExceeded

__all__ = [
    "CalendarZones",
    "GoogleCalendarClient",
    "HttpPool",
    "OrjsonModel",
    "QuotaGate",
    "TokenSource",
    "calendar_api",
]

logger = logging.getLogger(__name__)

PAGE_SIZE: Final = 2500  # Google's maximum for events.list
CALENDAR_LIST_PAGE_SIZE: Final = 250  # Google's maximum for calendarList.list
DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_ATTEMPTS: Final = 4
MAX_RETRY_AFTER: Final = 30.0  # longer waits go back to the job queue
TOKEN_RECHECK: Final = 60.0  # seconds a client reuses a token before asking the store again
FALLBACK_ZONE: Final = "UTC"
CALENDAR_SUMMARY_LIMIT: Final = 1024  # calendars.summary's length


class TokenSource(Protocol):
    """Valid access tokens for a user: the port by which the provider gets a token (the
    service is `calsync.sync.access_tokens.AccessTokens`; the provider knows no store)."""

    def for_user(self, user_id: uuid.UUID) -> Secret: ...

    def after_unauthorized(self, user_id: uuid.UUID, rejected: Secret) -> Secret: ...


class QuotaGate(Protocol):
    """Spends one request of a user's quota (`calsync.providers.quota.QuotaLimiter`)."""

    def acquire(self, user_id: uuid.UUID) -> None: ...

    def close(self) -> None: ...


class _Api(NamedTuple):
    events: Any
    calendar_list: Any
    calendars: Any
    channels: Any


_apis: dict[str, _Api] = {}
_apis_lock = threading.Lock()


def calendar_api(api_base: str) -> _Api:
    """The Calendar v3 resources for ``api_base``, built once per process and shared.

    Building them (discovery document, one Python method per API method) takes
    milliseconds per resource; making a request from them takes microseconds. They
    carry no credentials and no connection: each request is executed with its
    client's own ``http``.
    """
    endpoint = api_base.rstrip("/") + "/calendar/v3/"
    with _apis_lock:
        api = _apis.get(endpoint)
        if api is None:
            service = build(
                "calendar",
                "v3",
                http=httplib2.Http(),  # placeholder: never used, requests get their own
                static_discovery=True,
                cache_discovery=False,
                client_options={"api_endpoint": endpoint},
                model=OrjsonModel(),
            )
            api = _Api(
                service.events(), service.calendarList(), service.calendars(), service.channels()
            )
            _apis[endpoint] = api
        return api


#: A run of 19 digits, once `_DIGITS` made every digit a 0 (bytes.translate and a
#: substring search are several times faster than a regular expression on megabytes).
_DIGITS: Final = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_DIGITS: Final = b"0" * 19


class OrjsonModel(JsonModel):  # type: ignore[misc]  # the library is untyped
    """google-api-python-client's JSON model, decoding answers with orjson (a listing
    page of 2,500 events is megabytes of JSON, decoded on the pull's thread).

    The answer is the standard model's: orjson decodes the JSON it accepts to equal
    values, and anything it refuses (invalid UTF-8, lone surrogates, ``NaN``, ...) goes
    to the standard model, which decides as before. So does an answer with a run of 19
    digits or more, which may be an integer orjson would read as a float (beyond 64
    bits), where the standard decoder keeps an int.
    """

    def deserialize(self, content: Any) -> Any:
        if not isinstance(content, bytes) or _LONG_DIGITS in content.translate(_DIGITS):
            return super().deserialize(content)
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            return super().deserialize(content)
        if self._data_wrapper and "data" in body:
            body = body["data"]
        return body


#: Where calendar zones known beyond this process are read: ``(user id, Google calendar
#: id) -> zone`` or None. calsync wires the store's copy of the calendar list
#: (`calsync.store.zones.stored_zone`), which every worker process shares.
SharedZones = Callable[[uuid.UUID, str], "str | None"]


class CalendarZones:
    """Calendar id -> time zone, shared by the clients of a process, backed by `shared`.

    Event mapping needs the calendar's zone (all-day events, date-times without one).
    Listings refresh it for free; single-event calls look in this process's memory, then
    in `shared` (what another process or the calendar list learnt), and ask Google
    (``calendars.get``) only when neither knows it. Without the shared source each
    worker process asked Google for every calendar it wrote to first (decisions Q5).
    """

    def __init__(self, *, max_entries: int = 100_000, shared: SharedZones | None = None) -> None:
        self._zones: dict[str, str] = {}
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._shared = shared

    def get(self, calendar_id: str) -> str | None:
        """The zone this process knows (no I/O)."""
        with self._lock:
            return self._zones.get(calendar_id)

    def find(self, user_id: uuid.UUID, calendar_id: str) -> str | None:
        """The zone this process knows, else the shared one (remembered); None if neither
        knows it. A failing shared source counts as not knowing (Google is asked)."""
        zone = self.get(calendar_id)
        if zone is None and self._shared is not None:
            try:
                zone = self._shared(user_id, calendar_id)
            except Exception:
                logger.warning("the shared calendar zones could not be read", exc_info=True)
                return None
            if zone is not None:
                self.remember(calendar_id, zone)
        return zone

    def remember(self, calendar_id: str, zone: str) -> None:
        with self._lock:
            if len(self._zones) >= self._max_entries and calendar_id not in self._zones:
                self._zones.clear()  # rare; a miss only costs one read of the store
            self._zones[calendar_id] = zone


class HttpPool:
    """One ``httplib2.Http`` per thread (it is not thread-safe), reused by every client.

    Connections stay open between calls and jobs on the same thread; :meth:`close` shuts
    them all (an ``Http`` reconnects if used again).
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._timeout = timeout
        self._local = threading.local()
        self._all: list[httplib2.Http] = []
        self._lock = threading.Lock()

    def get(self) -> httplib2.Http:
        """This thread's ``Http``."""
        http: httplib2.Http | None = getattr(self._local, "http", None)
        if http is None:
            http = httplib2.Http(timeout=self._timeout)
            self._local.http = http
            with self._lock:
                self._all.append(http)
        return http

    def close(self) -> None:
        """Close every connection of every thread's ``Http``."""
        with self._lock:
            for http in self._all:
                http.close()


class GoogleCalendarClient:
    """`CalendarProvider` on Google Calendar API v3, acting as one user.

    ``api_calls`` counts the HTTP requests sent, retries included, for the sync log.
    ``sleep`` is the only way this class waits (retry backoff), so tests inject it.
    ``page_size`` is the events per listing page (Google's maximum unless a test pages).
    Connections come from ``http`` (shared, one per thread) or from a pool of the
    client's own, which :meth:`close` (or leaving a ``with`` block) shuts.
    """

    def __init__(
        self,
        *,
        user_id: uuid.UUID,
        settings: Settings,
        tokens: TokenSource,
        quota: QuotaGate,
        zones: CalendarZones | None = None,
        http: HttpPool | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = DEFAULT_TIMEOUT,
        max_attempts: int = DEFAULT_ATTEMPTS,
        max_retry_after: float = MAX_RETRY_AFTER,
        monotonic: Callable[[], float] = time.monotonic,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.user_id = user_id
        self.api_calls = 0
        self._api = calendar_api(settings.google_api_base)
        self._send_updates = str(settings.send_updates)
        self._tokens = tokens
        self._quota = quota
        self._zones = zones if zones is not None else CalendarZones()
        self._own_http = http is None
        self._http = http if http is not None else HttpPool(timeout=timeout)
        self._monotonic = monotonic
        self._token: Secret | None = None
        self._token_at = 0.0
        self._max_retry_after = max_retry_after
        self._page_size = page_size
        self._retrying = Retrying(
            stop=self._should_stop(max_attempts),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            sleep=sleep,
            reraise=True,
        )

    def close(self) -> None:
        """Close the client's own connections (shared ones belong to their pool)."""
        if self._own_http:
            self._http.close()

    def __enter__(self) -> GoogleCalendarClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- CalendarProvider ----------------------------------------------------------

    def list_calendars(self) -> list[CalendarInfo]:
        calendars: list[CalendarInfo] = []
        page_token: str | None = None
        while True:
            answer = self._calendar_list_page(page_token)
            for item in answer.get("items") or ():
                calendars.append(_calendar_info(item))
                if item.get("timeZone"):
                    self._zones.remember(item["id"], item["timeZone"])
            page_token = answer.get("nextPageToken")
            if not page_token:
                return calendars

    def _calendar_list_page(self, page_token: str | None) -> Any:
        params: dict[str, Any] = {
            "maxResults": CALENDAR_LIST_PAGE_SIZE,
            "showHidden": True,
            "showDeleted": True,
        }
        if page_token:
            params["pageToken"] = page_token
        return self._execute(lambda api: api.calendar_list.list(**params), cursor=page_token)

    def list_changes(
        self, calendar_id: str, *, sync_token: str | None, page_token: str | None
    ) -> ChangesPage:
        answer = self._changes_answer(calendar_id, sync_token, page_token)
        zone = self._listing_zone(calendar_id, answer)
        next_page = answer.get("nextPageToken")
        events, unreadable = _mapped_events(answer.get("items") or (), zone, calendar_id)
        return ChangesPage(
            events=tuple(events),
            next_page_token=next_page,
            next_sync_token=None if next_page else answer.get("nextSyncToken"),
            unreadable=tuple(unreadable),
        )

    def list_all_changes(self, calendar_id: str, *, sync_token: str | None) -> ChangesPage:
        """Every page of a listing, as `list_changes` following its page tokens would give
        them (the same requests, in order, on this thread, with the same retries and
        errors): the events of all pages in order and the last page's sync token.

        Each page but the last is mapped to events on a helper thread while the request
        for the next one is out, so that Google's time on a page overlaps calsync's on
        the one before. Only the mapping moves: tokens, quota, connections and retries
        stay on the calling thread.
        """
        events: list[Event] = []
        unreadable: list[str] = []
        mapped: Future[tuple[list[Event], list[str]]] | None = None
        mapper: ThreadPoolExecutor | None = None
        try:
            answer = self._changes_answer(calendar_id, sync_token, None)
            while True:
                zone = self._listing_zone(calendar_id, answer)
                items = answer.get("items") or ()
                next_page = answer.get("nextPageToken")
                if mapped is not None:
                    page_events, page_unreadable = mapped.result()
                    events.extend(page_events)
                    unreadable.extend(page_unreadable)
                    mapped = None
                if not next_page:
                    page_events, page_unreadable = _mapped_events(items, zone, calendar_id)
                    events.extend(page_events)
                    unreadable.extend(page_unreadable)
                    return ChangesPage(
                        events=tuple(events),
                        next_sync_token=answer.get("nextSyncToken"),
                        unreadable=tuple(unreadable),
                    )
                if mapper is None:
                    mapper = ThreadPoolExecutor(1, thread_name_prefix="calsync-listing")
                # in this thread's context: what the mapping logs carries the job's fields
                context = contextvars.copy_context()
                mapped = mapper.submit(context.run, _mapped_events, items, zone, calendar_id)
                answer = self._changes_answer(calendar_id, sync_token, next_page)
        finally:
            if mapper is not None:
                mapper.shutdown(wait=True)  # a failed request leaves at most one page to map

    def _changes_answer(
        self, calendar_id: str, sync_token: str | None, page_token: str | None
    ) -> Any:
        """Google's decoded answer to one ``events.list`` page."""
        params: dict[str, Any] = {
            "calendarId": calendar_id,
            "maxResults": self._page_size,
            "showDeleted": True,
            "singleEvents": False,
        }
        if sync_token:
            params["syncToken"] = sync_token
        if page_token:
            params["pageToken"] = page_token
        return self._execute(
            lambda api: api.events.list(**params),
            cursor=page_token or sync_token,
            secrets=(sync_token, page_token),
        )

    def _listing_zone(self, calendar_id: str, answer: Any) -> str:
        """The calendar's zone a listing page gives (remembered), else the known one."""
        zone: str = answer.get("timeZone") or self._zones.get(calendar_id) or FALLBACK_ZONE
        self._zones.remember(calendar_id, zone)
        return zone

    def get_event(self, calendar_id: str, event_id: str) -> Event:
        zone = self._zone(calendar_id)
        answer = self._execute(lambda api: api.events.get(calendarId=calendar_id, eventId=event_id))
        return _event(answer, zone)

    def insert_event(
        self, calendar_id: str, event: Event, *, event_id: str, calsync_id: str
    ) -> Event:
        body = event_to_google(event, calsync_id=calsync_id, event_id=event_id)
        zone = self._zone(calendar_id)  # before a write, so it cannot fail after one
        answer = self._execute(
            lambda api: api.events.insert(
                calendarId=calendar_id,
                body=body,
                sendUpdates=self._send_updates,
                conferenceDataVersion=CONFERENCE_DATA_VERSION,
            )
        )
        return _event(answer, zone)

    def patch_event(
        self,
        calendar_id: str,
        event_id: str,
        event: Event,
        *,
        calsync_id: str,
        if_match: str | None,
        previous: Event | None = None,
    ) -> Event:
        body = event_to_google(event, calsync_id=calsync_id, previous=previous)
        zone = self._zone(calendar_id)  # before a write, so it cannot fail after one
        answer = self._execute(
            lambda api: api.events.patch(
                calendarId=calendar_id,
                eventId=event_id,
                body=body,
                sendUpdates=self._send_updates,
                conferenceDataVersion=CONFERENCE_DATA_VERSION,
            ),
            if_match=if_match,
        )
        return _event(answer, zone)

    def update_event(
        self,
        calendar_id: str,
        event_id: str,
        event: Event,
        *,
        calsync_id: str,
        if_match: str | None,
    ) -> Event:
        body = event_to_google(event, calsync_id=calsync_id)
        zone = self._zone(calendar_id)  # before a write, so it cannot fail after one
        answer = self._execute(
            lambda api: api.events.update(
                calendarId=calendar_id,
                eventId=event_id,
                body=body,
                sendUpdates=self._send_updates,
                conferenceDataVersion=CONFERENCE_DATA_VERSION,
            ),
            if_match=if_match,
        )
        return _event(answer, zone)

    def delete_event(self, calendar_id: str, event_id: str, *, if_match: str | None) -> None:
        self._execute(
            lambda api: api.events.delete(
                calendarId=calendar_id, eventId=event_id, sendUpdates=self._send_updates
            ),
            if_match=if_match,
        )

    def watch_events(
        self, calendar_id: str, *, channel_id: str, token: str, address: str, ttl: timedelta
    ) -> Channel:
        body = _watch_body(channel_id=channel_id, token=token, address=address, ttl=ttl)
        answer = self._execute(
            lambda api: api.events.watch(calendarId=calendar_id, body=body), secrets=(token,)
        )
        return _channel(answer)

    def watch_calendar_list(
        self, *, channel_id: str, token: str, address: str, ttl: timedelta
    ) -> Channel:
        body = _watch_body(channel_id=channel_id, token=token, address=address, ttl=ttl)
        answer = self._execute(lambda api: api.calendar_list.watch(body=body), secrets=(token,))
        return _channel(answer)

    def stop_channel(self, *, channel_id: str, resource_id: str) -> None:
        body = {"id": channel_id, "resourceId": resource_id}
        self._execute(lambda api: api.channels.stop(body=body))

    # --- one call: quota, token, retries, translation -------------------------------

    def _execute(
        self,
        make_request: Callable[[_Api], Any],
        *,
        if_match: str | None = None,
        cursor: str | None = None,
        secrets: tuple[str | None, ...] = (),
    ) -> Any:
        """Send one API call; returns Google's decoded JSON answer.

        Every attempt spends quota and counts in ``api_calls``; a 401 leads to one token
        refresh and one more attempt per call. Raises `ProviderError`s only.
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

    def _zone(self, calendar_id: str) -> str:
        zone = self._zones.find(self.user_id, calendar_id)
        if zone is None:
            answer = self._execute(lambda api: api.calendars.get(calendarId=calendar_id))
            zone = answer.get("timeZone") or FALLBACK_ZONE
            self._zones.remember(calendar_id, zone)
        return zone

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


def _mapped_events(items: Any, zone: str, calendar_id: str) -> tuple[list[Event], list[str]]:
    """The listed resources of one page as events, and the ids of those left out: one that
    is not an event is logged and left out (`event_from_google` raises `ValueError` for
    anything wrong with one resource). An id is given as `storable_id` makes it (an empty
    string for none)."""
    events: list[Event] = []
    unreadable: list[str] = []
    for item in items:
        try:
            events.append(event_from_google(item, zone))
        except ValueError:
            # One malformed resource must not block the calendar's sync for good.
            event_id = item.get("id") if isinstance(item, dict) else None
            logger.warning(
                "skipping a Google event calsync cannot read",
                extra={"calendar_id": calendar_id, "event_id": event_id},
                exc_info=True,
            )
            unreadable.append(storable_id(event_id))
    return events, unreadable


def _event(answer: dict[str, Any], zone: str) -> Event:
    try:
        return event_from_google(answer, zone)
    except ValueError as err:
        raise Permanent("Google answered with an event calsync cannot read") from err


def _calendar_info(item: dict[str, Any]) -> CalendarInfo:
    # the summary is the calendar owner's text (anyone who shares a calendar): storable
    summary = item.get("summaryOverride") or item.get("summary") or ""
    return CalendarInfo(
        calendar_id=item["id"],
        summary=storable_text(str(summary), CALENDAR_SUMMARY_LIMIT),
        timezone=item.get("timeZone") or FALLBACK_ZONE,
        access_role=item.get("accessRole") or "freeBusyReader",
        primary=bool(item.get("primary", False)),
        deleted=bool(item.get("deleted", False)),
    )


def _watch_body(*, channel_id: str, token: str, address: str, ttl: timedelta) -> dict[str, Any]:
    return {
        "id": channel_id,
        "type": "web_hook",
        "address": address,
        "token": token,
        "params": {"ttl": str(int(ttl.total_seconds()))},
    }


def _channel(answer: dict[str, Any]) -> Channel:
    expiration = answer.get("expiration")
    return Channel(
        channel_id=answer["id"],
        resource_id=answer["resourceId"],
        resource_uri=answer.get("resourceUri"),
        expiration=datetime.fromtimestamp(int(expiration) / 1000, UTC) if expiration else None,
    )
