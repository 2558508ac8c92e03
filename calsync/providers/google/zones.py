"""The time zones of Google calendars, as the mapping of their events needs them.

`CalendarZones` is a process's memory of them, backed by a shared source (the store's
copy of the calendar list, wired by calsync). Listings and the calendar list fill it for
free; `calendar_calls.CalendarCalls.zone` asks Google only when nobody knows a zone.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Final

__all__ = ["FALLBACK_ZONE", "CalendarZones", "SharedZones"]

logger = logging.getLogger(__name__)

FALLBACK_ZONE: Final = "UTC"

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
