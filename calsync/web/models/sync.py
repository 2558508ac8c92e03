"""Sync: ``POST /sync`` (`SyncQueued`) and ``GET /sync/logs`` (`SyncLogPage`)."""

from __future__ import annotations

from typing import Any, Literal

from calsync.web.models.base import Closed, Moment, Uuid


class SyncQueued(Closed):
    """The pulls ``POST /sync`` queued, and those already queued or running."""

    queued: list[Uuid]
    already_queued: list[Uuid]


class SyncLog(Closed):
    id: Uuid
    user_id: Uuid
    calendar_id: str | None
    event_id: str | None
    kind: Literal["pull", "full_sync", "push", "conflict", "auth", "channel", "calendars", "audit"]
    status: Literal["ok", "error", "retry", "resolved", "manual", "held"]
    time: Moment
    pulled: int
    changed: int
    conflicts: int
    api_calls: int
    duration_ms: int
    message: str | None
    details: dict[str, Any] | None


class SyncLogPage(Closed):
    logs: list[SyncLog]
    next_cursor: str | None
