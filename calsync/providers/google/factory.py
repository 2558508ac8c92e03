"""Google Calendar clients for the users a worker acts for.

`GoogleProviders` is what `bootstrap` wires as ``services.providers``: one per process,
shared by its threads, holding what clients share (settings, the token store, the quota
limiter, the calendar time-zone cache backed by the store's, one HTTP connection per
thread). ``for_user`` hands out a new, cheap client each time: a job takes its own and
just drops it; ``close`` the factory when the process stops.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from calsync.config import Settings
from calsync.providers.google.api import DEFAULT_TIMEOUT, HttpPool, calendar_api
from calsync.providers.google.calls import QuotaGate, TokenSource
from calsync.providers.google.client import GoogleCalendarClient
from calsync.providers.google.zones import CalendarZones, SharedZones

__all__ = ["GoogleProviders"]


class GoogleProviders:
    """Makes `GoogleCalendarClient`s; builds nothing and connects nowhere until asked."""

    def __init__(
        self,
        settings: Settings,
        access_tokens: TokenSource,
        limiter: QuotaGate,
        sleep: Callable[[float], None] = time.sleep,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        shared_zones: SharedZones | None = None,
    ) -> None:
        self.settings = settings
        self.access_tokens = access_tokens
        self.limiter = limiter
        self._sleep = sleep
        self._zones = CalendarZones(shared=shared_zones)
        self._http = HttpPool(timeout=timeout)

    def for_user(self, user_id: uuid.UUID) -> GoogleCalendarClient:
        """A client acting as ``user_id``, for the calling thread only."""
        return GoogleCalendarClient(
            user_id=user_id,
            settings=self.settings,
            tokens=self.access_tokens,
            quota=self.limiter,
            zones=self._zones,
            http=self._http,
            sleep=self._sleep,
        )

    def close(self) -> None:
        """At process shutdown: close every client's connections and the limiter's."""
        self._http.close()
        self.limiter.close()

    def warm_up(self) -> None:
        """Build the Calendar API resources now (worker start) rather than on the first job."""
        calendar_api(self.settings.google_api_base)
