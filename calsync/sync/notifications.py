"""Intake of Google push notifications: verify, then mark dirty and kick at most one pull.

A notification carries no data (design.md section 1: push is a hint). `receive` checks
it against the stored channel (id known, token an HMAC of the id under calsync's keys,
compared in constant time, resource id the one Google gave when the channel opened),
acknowledges ``sync`` messages, and for ``exists``/``not_exists`` records the change with
`calsync.sync.kicks.note_change`, which tells whether a pull must be enqueued. It never
calls Google. Duplicate and out-of-order messages only set ``dirty`` again, which is
harmless. It touches the database at most twice; channel rows are cached briefly per
process (a stopped channel may be accepted for those seconds, as during a renewal).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from calsync import metrics
from calsync.store.tables import WatchChannel
from calsync.sync import kicks
from calsync.sync.channels import token_matches

if TYPE_CHECKING:
    from calsync.bootstrap import Services

__all__ = ["ChannelCache", "Intake", "Notification", "receive"]


@dataclass(frozen=True, slots=True)
class Notification:
    """The headers of one push message (``X-Goog-*``)."""

    channel_id: str
    token: str
    resource_id: str
    state: str
    message_number: int | None = None


class Intake(StrEnum):
    """What calsync did with a notification."""

    QUEUED = "queued"  # a pull was enqueued
    COALESCED = "coalesced"  # marked dirty; a queued or running pull will see it
    ACKNOWLEDGED = "acknowledged"  # the `sync` handshake of a new channel
    STALE = "stale"  # a stopped channel still pushes: stop it again
    UNKNOWN = "unknown"  # no such channel
    FORGED = "forged"  # token or resource id does not match


@dataclass(frozen=True, slots=True)
class _ChannelInfo:
    user_id: uuid.UUID
    calendar_id: uuid.UUID | None
    kind: str
    resource_id: str | None
    active: bool


class ChannelCache:
    """Channel rows by id, kept for `ttl` seconds. Thread-safe; one per process.

    Unknown ids are not cached: the ``sync`` message of a new channel can arrive before
    the channel's row is committed, and the next message must find it.
    """

    def __init__(self, ttl: float = 30.0, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[uuid.UUID, tuple[float, _ChannelInfo]] = {}
        self._lock = threading.Lock()

    def get(self, services: Services, channel_id: uuid.UUID) -> _ChannelInfo | None:
        now = time.monotonic()
        with self._lock:
            cached = self._entries.get(channel_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        info = _load_channel(services, channel_id)
        if info is None:
            return None  # not cached: Google's first message may beat the channel's commit
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[channel_id] = (now + self.ttl, info)
        return info


def _load_channel(services: Services, channel_id: uuid.UUID) -> _ChannelInfo | None:
    with services.sessions() as session:
        row = session.get(WatchChannel, channel_id)
        if row is None:
            return None
        return _ChannelInfo(
            row.user_id, row.calendar_id, row.kind, row.resource_id, row.status == "active"
        )


def receive(services: Services, note: Notification, cache: ChannelCache) -> Intake:
    """Verify and record one notification; enqueue a pull when the calendar needs one."""
    outcome = _receive(services, note, cache)
    metrics.PUSH_NOTIFICATIONS.labels(outcome=outcome.value).inc()
    return outcome


def _receive(services: Services, note: Notification, cache: ChannelCache) -> Intake:
    try:
        channel_id = uuid.UUID(note.channel_id)
    except ValueError:
        return Intake.UNKNOWN
    channel = cache.get(services, channel_id)
    if channel is None:
        return Intake.UNKNOWN
    keys = services.settings.encryption_keys
    if not token_matches(keys, note.channel_id, note.token) or (
        channel.resource_id is not None and channel.resource_id != note.resource_id
    ):
        return Intake.FORGED
    if not channel.active:
        services.jobs.stop_channel.send(note.channel_id)
        return Intake.STALE
    if note.state == "sync":
        return Intake.ACKNOWLEDGED
    if channel.kind == "calendar_list":
        services.jobs.sync_calendar_list.send(str(channel.user_id))
        return Intake.QUEUED
    assert channel.calendar_id is not None
    with services.sessions.begin() as session:
        claim = kicks.note_change(
            session,
            channel.calendar_id,
            services.clock(),
            min_interval=services.settings.sync_min_interval_seconds,
        )
    if claim is None:
        return Intake.COALESCED
    services.jobs.sync_calendar.send_with_options(
        args=(str(channel.calendar_id),), delay=int(claim.delay * 1000) or None
    )
    return Intake.QUEUED
