"""The port the sync layer calls to reach a calendar provider (Google today).

`CalendarProvider` speaks domain values (`calsync.domain.models.Event`) and the error
tree in `calsync.providers.errors`; an adapter (the Google client) does the HTTP, the
mapping and the error translation, and nothing outside `providers/` knows which provider
it talks to. Methods are blocking (they run in workers); each raises only
`ProviderError` subclasses. Every method may also raise `AuthRevoked`, `RateLimited`,
`QuotaExceeded`, `Transient` and `Permanent`; the docstrings name the others.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from calsync.domain.models import Event
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
    "AuthRevoked",
    "CalendarInfo",
    "CalendarProvider",
    "ChangesPage",
    "Channel",
    "Conflict",
    "NotFound",
    "Permanent",
    "PreconditionFailed",
    "ProviderError",
    "ProviderSource",
    "QuotaExceeded",
    "RateLimited",
    "SyncTokenExpired",
    "Transient",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CalendarInfo:
    """One entry of the user's calendar list."""

    calendar_id: str
    summary: str
    timezone: str
    access_role: str  # "owner", "writer", "reader", "freeBusyReader"
    primary: bool = False
    deleted: bool = False

    @property
    def writable(self) -> bool:
        return self.access_role in ("owner", "writer")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangesPage:
    """One page of a change listing.

    `events` includes tombstones (status cancelled) and series exceptions. Exactly one of
    `next_page_token` (more pages follow) and `next_sync_token` (last page: the cursor
    for the next incremental listing) is set. `unreadable`: the ids of the listed
    resources calsync could not read and left out of `events` (an empty string for one
    without a usable id), so that the sync log can say so and a full listing does not
    take them for deleted.
    """

    events: tuple[Event, ...]
    next_page_token: str | None = None
    next_sync_token: str | None = None
    unreadable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Channel:
    """A push channel the provider opened: store it to verify and stop it later."""

    channel_id: str
    resource_id: str
    resource_uri: str | None = None
    expiration: datetime | None = None


@runtime_checkable
class CalendarProvider(Protocol):
    """What calsync needs from a calendar provider, for one authorised user."""

    #: Requests this provider made so far, retries included (the sync log reports them).
    api_calls: int

    def list_calendars(self) -> list[CalendarInfo]:
        """Every calendar in the user's list (all pages), including hidden ones."""
        ...

    def list_changes(
        self, calendar_id: str, *, sync_token: str | None, page_token: str | None
    ) -> ChangesPage:
        """One page of events: everything (no `sync_token`) or what changed since it.

        Lists series masters and exceptions, never expanded instances, deleted ones
        included. Raises `SyncTokenExpired` when the cursor is no longer valid, and
        `NotFound` when the calendar is gone.
        """
        ...

    def list_all_changes(self, calendar_id: str, *, sync_token: str | None) -> ChangesPage:
        """Every page of `list_changes` from the first, as one page: the events of all
        pages in order and the last page's `next_sync_token` (no `next_page_token`).
        Raises what `list_changes` raises, for any page."""
        ...

    def get_event(self, calendar_id: str, event_id: str) -> Event:
        """The current provider copy of one event (tombstones included).

        Raises `NotFound` if it does not exist.
        """
        ...

    def insert_event(
        self, calendar_id: str, event: Event, *, event_id: str, calsync_id: str
    ) -> Event:
        """Create `event` under the client-chosen `event_id`, tagged with `calsync_id`.

        Returns the provider's copy (with etag, sequence, updated). Raises `Conflict` if
        an event with that id exists already (a retry of an insert that succeeded: the
        caller reads it with `get_event`); it never creates a second copy.
        """
        ...

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
        """Change the provider copy to `event`'s syncable fields; returns the new copy.

        `previous` is the last known provider copy, used to clear fields and metadata
        keys that `event` no longer has. With `if_match`, raises `PreconditionFailed` if
        the provider's etag differs. Raises `NotFound` if the event is gone.
        """
        ...

    def update_event(
        self,
        calendar_id: str,
        event_id: str,
        event: Event,
        *,
        calsync_id: str,
        if_match: str | None,
    ) -> Event:
        """Replace the provider copy with `event` (fields it lacks are cleared; so is a
        conference, which calsync never copies back: the push patches instead).

        Same errors as `patch_event`.
        """
        ...

    def delete_event(self, calendar_id: str, event_id: str, *, if_match: str | None) -> None:
        """Delete the event. Raises `NotFound` if it is already gone (callers treat that as
        success) and `PreconditionFailed` if `if_match` is stale."""
        ...

    def watch_events(
        self, calendar_id: str, *, channel_id: str, token: str, address: str, ttl: timedelta
    ) -> Channel:
        """Open a push channel for changes to a calendar's events.

        The provider may grant a shorter life than `ttl`: use the returned expiration.
        Raises `NotFound` if the calendar is gone, `Permanent` if the address is refused.
        """
        ...

    def watch_calendar_list(
        self, *, channel_id: str, token: str, address: str, ttl: timedelta
    ) -> Channel:
        """Open a push channel for changes to the user's calendar list. As `watch_events`."""
        ...

    def stop_channel(self, *, channel_id: str, resource_id: str) -> None:
        """Stop a push channel. Raises `NotFound` if the provider no longer knows it."""
        ...


class ProviderSource(Protocol):
    """Hands out providers acting for one user each (one per process, shared by threads)."""

    def for_user(self, user_id: uuid.UUID) -> CalendarProvider:
        """A provider acting as `user_id`, for the calling thread only."""
        ...

    def close(self) -> None:
        """Release connections at process shutdown."""
        ...
