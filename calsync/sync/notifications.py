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

__all__ = ["ChannelCache", "DirtyMarks", "Intake", "Notification", "receive"]


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


@dataclass
class _Writes:
    """Group commit state of one calendar: tickets handed out and covered."""

    lock: threading.Lock
    requested: int = 0
    covered: int = 0


class DirtyMarks:
    """Records change notifications with one database write per burst, per calendar.

    A storm of notifications for one calendar would otherwise queue on the calendar
    row's lock, one transaction each. Here a notification takes a ticket, then waits for
    the calendar's writer slot; if a write that *started after it arrived* has finished
    meanwhile, that write recorded it too and it returns at once, else it writes for
    itself and for everyone who arrived before. No notification is answered before a
    write that covers it has committed. Thread-safe; one per process.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._calendars: dict[uuid.UUID, _Writes] = {}

    def mark(self, services: Services, calendar_id: uuid.UUID) -> kicks.Claim | None:
        """Record a change; a `Claim` when the caller must enqueue a pull."""
        with self._guard:
            writes = self._calendars.get(calendar_id)
            if writes is None:
                writes = self._calendars[calendar_id] = _Writes(threading.Lock())
            writes.requested += 1
            ticket = writes.requested
        with writes.lock:
            if writes.covered >= ticket:
                return None  # a later write recorded it; that write's caller enqueued
            with self._guard:
                target = writes.requested
            with services.sessions.begin() as session:
                claim = kicks.note_change(
                    session,
                    calendar_id,
                    services.clock(),
                    min_interval=services.settings.sync_min_interval_seconds,
                )
            writes.covered = target
            return claim


def receive(
    services: Services, note: Notification, cache: ChannelCache, marks: DirtyMarks
) -> Intake:
    """Verify and record one notification; enqueue a pull when the calendar needs one.

    `cache` and `marks` are the process's own (kept on the app's state).
    """
    outcome = _receive(services, note, cache, marks)
    metrics.PUSH_NOTIFICATIONS.labels(outcome=outcome.value).inc()
    return outcome


def _receive(
    services: Services, note: Notification, cache: ChannelCache, marks: DirtyMarks
) -> Intake:
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
    claim = marks.mark(services, channel.calendar_id)
    if claim is None:
        return Intake.COALESCED
    services.jobs.sync_calendar.send_with_options(
        args=(str(channel.calendar_id),), delay=int(claim.delay * 1000) or None
    )
    return Intake.QUEUED
