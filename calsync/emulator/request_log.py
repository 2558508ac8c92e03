"""The request log behind ``GET /emulator/requests``: one entry per API call.

Batch parts are logged one by one (``batch: true``), like Google counts them against
quotas. Bounded: the oldest entries fall off past the configured limit.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int | None  # None when the connection was reset without an answer
    user: str | None
    timestamp: str
    duration_ms: float
    batch: bool = False
    faults: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["faults"] = list(self.faults)
        return data


class RequestLog:
    def __init__(self, limit: int) -> None:
        self._entries: deque[LoggedRequest] = deque(maxlen=limit)

    def append(self, entry: LoggedRequest) -> None:
        self._entries.append(entry)

    def clear(self) -> None:
        self._entries.clear()

    def resize(self, limit: int) -> None:
        """Keep at most `limit` entries from now on (the newest, when it shrinks)."""
        if limit != self._entries.maxlen:
            self._entries = deque(self._entries, maxlen=limit)

    def query(self, filters: Mapping[str, str]) -> list[LoggedRequest]:
        """Entries matching every filter given.

        ``method`` (exact), ``path`` (exact), ``path_regex`` (searched), ``user``,
        ``status``, ``batch`` ("true"/"false"). ValueError for a bad regex or status.
        """
        entries: list[LoggedRequest] = list(self._entries)
        if "method" in filters:
            entries = [e for e in entries if e.method == filters["method"].upper()]
        if "path" in filters:
            entries = [e for e in entries if e.path == filters["path"]]
        if "path_regex" in filters:
            pattern = re.compile(filters["path_regex"])
            entries = [e for e in entries if pattern.search(e.path)]
        if "user" in filters:
            entries = [e for e in entries if e.user == filters["user"].lower()]
        if "status" in filters:
            status = int(filters["status"])
            entries = [e for e in entries if e.status == status]
        if "batch" in filters:
            flag = filters["batch"].lower() == "true"
            entries = [e for e in entries if e.batch == flag]
        return entries
