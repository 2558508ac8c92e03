"""Google -> calsync: a calendar's event listing (``events.list``), page by page or whole.

Listings follow Google's sync rules (https://developers.google.com/calendar/api/guides/sync):
`maxResults=2500`, `showDeleted=true`, `singleEvents=false` and either nothing else or
the `syncToken`. Each page's zone is remembered in `zones.CalendarZones`; a resource
that is not an event is logged and left out (its id in ``unreadable``), never fatal.
"""

from __future__ import annotations

import contextvars
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

from calsync.domain.models import Event
from calsync.providers.base import ChangesPage
from calsync.providers.google.calls import GoogleCalls
from calsync.providers.google.mapping import event_from_google, storable_id
from calsync.providers.google.zones import FALLBACK_ZONE, CalendarZones

__all__ = ["PAGE_SIZE", "EventListing", "mapped_events"]

logger = logging.getLogger(__name__)

PAGE_SIZE: Final = 2500  # Google's maximum for events.list


class EventListing:
    """One user's listings of a calendar's events, through `calls`, `page_size` a page."""

    def __init__(self, calls: GoogleCalls, zones: CalendarZones, page_size: int) -> None:
        self._calls = calls
        self._zones = zones
        self._page_size = page_size

    def list_changes(
        self, calendar_id: str, *, sync_token: str | None, page_token: str | None
    ) -> ChangesPage:
        """One page; its sync token only on the last page."""
        answer = self._changes_answer(calendar_id, sync_token, page_token)
        zone = self._listing_zone(calendar_id, answer)
        next_page = answer.get("nextPageToken")
        events, unreadable = mapped_events(answer.get("items") or (), zone, calendar_id)
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
                    page_events, page_unreadable = mapped_events(items, zone, calendar_id)
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
                mapped = mapper.submit(context.run, mapped_events, items, zone, calendar_id)
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
        return self._calls.execute(
            lambda api: api.events.list(**params),
            cursor=page_token or sync_token,
            secrets=(sync_token, page_token),
        )

    def _listing_zone(self, calendar_id: str, answer: Any) -> str:
        """The calendar's zone a listing page gives (remembered), else the known one."""
        zone: str = answer.get("timeZone") or self._zones.get(calendar_id) or FALLBACK_ZONE
        self._zones.remember(calendar_id, zone)
        return zone


def mapped_events(items: Any, zone: str, calendar_id: str) -> tuple[list[Event], list[str]]:
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
