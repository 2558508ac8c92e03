"""One calendar's events, indexed for O(changes) incremental sync.

``EventLog`` keeps every event ever written to a calendar (deleted ones stay as
``cancelled`` tombstones, as on Google) in insertion order, plus a change log ordered by
a per-calendar sequence number: each write gives the event the next number and moves it
to the end, so "everything changed after N" walks back from the end and costs
O(changes), not O(events). Exceptions of recurring series are indexed by master id.

Not thread-safe by itself: ``EmulatorState.lock`` guards it.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from calsync.emulator.event_model import Timing


@dataclass(frozen=True)
class StoredEvent:
    """One event as stored: its resource plus what listing needs pre-parsed."""

    resource: Mapping[str, Any]  # exactly what events.get returns; never mutated
    timing: Timing
    updated: datetime
    seq: int = 0
    # For an exception of a recurring series: its master and original-start suffix.
    master_id: str | None = None
    suffix: str | None = None

    @property
    def id(self) -> str:
        return str(self.resource["id"])

    @property
    def etag(self) -> str:
        return str(self.resource["etag"])

    @cached_property
    def encoded(self) -> str:
        """The resource as compact JSON, encoded once (the resource never changes)."""
        return json.dumps(self.resource, separators=(",", ":"))

    @property
    def cancelled(self) -> bool:
        return self.resource.get("status") == "cancelled"

    @property
    def is_master(self) -> bool:
        return bool(self.resource.get("recurrence"))


class EventLog:
    """Insertion-ordered events, change log and exception index for one calendar."""

    def __init__(self) -> None:
        self._events: dict[str, StoredEvent] = {}
        self._changes: OrderedDict[str, int] = OrderedDict()
        self._exceptions: dict[str, dict[str, str]] = {}
        self.seq = 0
        self.last_updated: datetime | None = None
        #: Events with a conference create request still pending, by id: when it was made
        #: (`calsync.emulator.conference.complete_due`).
        self.pending_conferences: dict[str, datetime] = {}

    @classmethod
    def restored(
        cls, events: list[StoredEvent], *, seq: int, last_updated: datetime | None
    ) -> EventLog:
        """A log holding ``events`` (in insertion order, each with its change number) as
        they were when saved; the next write gets change number ``seq + 1``."""
        log = cls()
        for event in events:
            log._events[event.id] = event
            if event.master_id is not None and event.suffix is not None:
                log._exceptions.setdefault(event.master_id, {})[event.suffix] = event.id
        for event in sorted(events, key=lambda item: item.seq):
            log._changes[event.id] = event.seq
        log.seq = max([seq, *(event.seq for event in events)])
        log.last_updated = last_updated
        return log

    def __len__(self) -> int:
        return len(self._events)

    def get(self, event_id: str) -> StoredEvent | None:
        return self._events.get(event_id)

    def put(self, event: StoredEvent) -> StoredEvent:
        """Store a new version of ``event`` with the next change number; returns it."""
        self.seq += 1
        stored = StoredEvent(
            resource=event.resource,
            timing=event.timing,
            updated=event.updated,
            seq=self.seq,
            master_id=event.master_id,
            suffix=event.suffix,
        )
        self._events[stored.id] = stored
        self._changes[stored.id] = self.seq
        self._changes.move_to_end(stored.id)
        if stored.master_id is not None and stored.suffix is not None:
            self._exceptions.setdefault(stored.master_id, {})[stored.suffix] = stored.id
        self.last_updated = event.updated
        return stored

    def ordered(self) -> list[StoredEvent]:
        """Every event, tombstones included, in insertion order (stable across pages)."""
        return list(self._events.values())

    def changed_between(self, after: int, upto: int) -> list[StoredEvent]:
        """Events whose latest change number n has ``after < n <= upto``, ascending."""
        found: list[StoredEvent] = []
        for event_id in reversed(self._changes):
            seq = self._changes[event_id]
            if seq <= after:
                break
            if seq <= upto:
                found.append(self._events[event_id])
        found.reverse()
        return found

    def exceptions_of(self, master_id: str) -> dict[str, StoredEvent]:
        """The stored exceptions of a series, keyed by instance-id suffix."""
        ids = self._exceptions.get(master_id, {})
        return {suffix: self._events[event_id] for suffix, event_id in ids.items()}

    def __iter__(self) -> Iterator[StoredEvent]:
        return iter(list(self._events.values()))
