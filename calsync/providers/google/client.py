"""The Google Calendar API v3 adapter of `CalendarProvider`, for one user.

`GoogleCalendarClient` is the provider's one face; behind it the work is split by
Google resource around one call core (decision HL1):

- `calls.GoogleCalls`: one call = quota, access token (one refresh and retry on 401),
  retries of transient failures and rate limits, translation of every failure through
  :mod:`calsync.providers.google.errors`;
- `event_listing.EventListing`: Google -> calsync, ``events.list`` pages;
- `event_calls.EventCalls`: one event read or written (``events.get/insert/patch/
  update/delete``, with ``sendUpdates`` and ``If-Match``);
- `calendar_calls.CalendarCalls`: the calendar list and a calendar's zone;
- `channel_calls.ChannelCalls`: push channels (watch, stop).

Requests are built from the process's shared `api.calendar_api`; JSON <-> `Event` is
:mod:`calsync.providers.google.mapping`'s business. The client does not decide what to do
about an error (the sync use cases and jobs do) and does not page by itself except
through the calendar list. A client is meant for one job on one thread
(`GoogleProviders.for_user` makes a new one each time); connections are per thread in
any case (`api.HttpPool`), since ``httplib2.Http`` is not thread-safe.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from calsync.config import Settings
from calsync.domain.models import Event
from calsync.providers.base import CalendarInfo, ChangesPage, Channel
from calsync.providers.google.api import DEFAULT_TIMEOUT, HttpPool, calendar_api
from calsync.providers.google.calendar_calls import CalendarCalls
from calsync.providers.google.calls import (
    DEFAULT_ATTEMPTS,
    MAX_RETRY_AFTER,
    GoogleCalls,
    QuotaGate,
    TokenSource,
)
from calsync.providers.google.channel_calls import ChannelCalls
from calsync.providers.google.event_calls import EventCalls
from calsync.providers.google.event_listing import PAGE_SIZE, EventListing
from calsync.providers.google.zones import CalendarZones

__all__ = ["GoogleCalendarClient"]


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
        self._own_http = http is None
        self._http = http if http is not None else HttpPool(timeout=timeout)
        zones = zones if zones is not None else CalendarZones()
        self._calls = GoogleCalls(
            user_id=user_id,
            api=calendar_api(settings.google_api_base),
            tokens=tokens,
            quota=quota,
            http=self._http,
            sleep=sleep,
            max_attempts=max_attempts,
            max_retry_after=max_retry_after,
            monotonic=monotonic,
        )
        self._zones = zones
        self._page_size = page_size
        self._send_updates = str(settings.send_updates)

    # Each part is built on its first use: a job uses one or two of them (a pull only
    # the listing, a write-back only the event calls), decision HY2.
    @functools.cached_property
    def _calendars(self) -> CalendarCalls:
        return CalendarCalls(self._calls, self._zones)

    @functools.cached_property
    def _listing(self) -> EventListing:
        return EventListing(self._calls, self._zones, self._page_size)

    @functools.cached_property
    def _events(self) -> EventCalls:
        return EventCalls(self._calls, self._calendars, self._send_updates)

    @functools.cached_property
    def _channels(self) -> ChannelCalls:
        return ChannelCalls(self._calls)

    @property
    def api_calls(self) -> int:
        """The HTTP requests this client sent, retries included."""
        return self._calls.api_calls

    @api_calls.setter
    def api_calls(self, count: int) -> None:
        # settable as `CalendarProvider.api_calls` is (a plain attribute of the port)
        self._calls.api_calls = count

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
        return self._calendars.list_calendars()

    def list_changes(
        self, calendar_id: str, *, sync_token: str | None, page_token: str | None
    ) -> ChangesPage:
        return self._listing.list_changes(calendar_id, sync_token=sync_token, page_token=page_token)

    def list_all_changes(self, calendar_id: str, *, sync_token: str | None) -> ChangesPage:
        """Every page of a listing (`event_listing.EventListing.list_all_changes`)."""
        return self._listing.list_all_changes(calendar_id, sync_token=sync_token)

    def get_event(self, calendar_id: str, event_id: str) -> Event:
        return self._events.get_event(calendar_id, event_id)

    def insert_event(
        self, calendar_id: str, event: Event, *, event_id: str, calsync_id: str
    ) -> Event:
        return self._events.insert_event(
            calendar_id, event, event_id=event_id, calsync_id=calsync_id
        )

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
        return self._events.patch_event(
            calendar_id,
            event_id,
            event,
            calsync_id=calsync_id,
            if_match=if_match,
            previous=previous,
        )

    def update_event(
        self,
        calendar_id: str,
        event_id: str,
        event: Event,
        *,
        calsync_id: str,
        if_match: str | None,
    ) -> Event:
        return self._events.update_event(
            calendar_id, event_id, event, calsync_id=calsync_id, if_match=if_match
        )

    def delete_event(self, calendar_id: str, event_id: str, *, if_match: str | None) -> None:
        self._events.delete_event(calendar_id, event_id, if_match=if_match)

    def watch_events(
        self, calendar_id: str, *, channel_id: str, token: str, address: str, ttl: timedelta
    ) -> Channel:
        return self._channels.watch_events(
            calendar_id, channel_id=channel_id, token=token, address=address, ttl=ttl
        )

    def watch_calendar_list(
        self, *, channel_id: str, token: str, address: str, ttl: timedelta
    ) -> Channel:
        return self._channels.watch_calendar_list(
            channel_id=channel_id, token=token, address=address, ttl=ttl
        )

    def stop_channel(self, *, channel_id: str, resource_id: str) -> None:
        self._channels.stop_channel(channel_id=channel_id, resource_id=resource_id)
