"""The emulator's clock: wall time plus an offset the control API can advance.

Every expiry in the emulator (access tokens, authorization codes, watch channels,
rate-limit windows, sync-token age) is measured against this clock, so tests move
time forward with ``POST /emulator/clock`` instead of sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def _system_now() -> datetime:
    return datetime.now(UTC)


class EmulatorClock:
    """Thread-safe clock; ``now()`` is always timezone-aware UTC.

    The offset only moves forward: ``advance`` rejects negative amounts because
    Google's time never runs backwards either.
    """

    def __init__(self, source: Callable[[], datetime] = _system_now) -> None:
        self._source = source
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            offset = self._offset
        return self._source() + offset

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by ``seconds``; returns the new ``now()``.

        Raises ValueError for a negative amount.
        """
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()

    @property
    def offset_seconds(self) -> float:
        with self._lock:
            return self._offset.total_seconds()

    def reset(self) -> None:
        with self._lock:
            self._offset = timedelta()
