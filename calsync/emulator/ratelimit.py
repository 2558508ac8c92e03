"""Rolling 60-second request counters for the per-user and per-project rate limits.

Judged by the emulator clock, so a test can exhaust a limit and then advance the clock
instead of sleeping. Not thread-safe by itself: ``EmulatorState.lock`` guards it.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

WINDOW = timedelta(seconds=60)


class RollingCounter:
    def __init__(self) -> None:
        self._hits: dict[str, deque[datetime]] = {}

    def allow(self, key: str, *, limit: int | None, now: datetime) -> bool:
        """Count one request for ``key``; False (not counted) when over ``limit``."""
        if limit is None:
            return True
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - WINDOW:
            hits.popleft()
        if len(hits) >= limit:
            return False
        hits.append(now)
        return True

    def clear(self) -> None:
        self._hits.clear()
