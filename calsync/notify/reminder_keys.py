"""The dedupe keys of reminders: ``reminder|<event id>|<occurrence start, UTC>|<lead
minutes>|<channel>``, and for an occurrence that begins when another one of its series
does (an instance moved onto another's start) and does not keep that key, the same with
``|<its original start, UTC>`` appended (IE2): one reminder per occurrence, as Google
notifies each instance of a series, and a key once sent is never sent again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from calsync.domain.models import Event
from calsync.notify.payloads import instant_of

__all__ = ["reminder_key", "shared_starts"]


def reminder_key(
    event_id: uuid.UUID,
    occurrence_start: datetime,
    lead: int,
    channel: str,
    *,
    original: datetime | None = None,
) -> str:
    """The dedupe key of one reminder: exactly one send per key, ever. `original`: the
    original start of an occurrence that `shared_starts` names (appended to the key)."""
    key = f"reminder|{event_id}|{_moment(occurrence_start)}|{lead}|{channel}"
    return key if original is None else f"{key}|{_moment(original)}"


def shared_starts(
    occurrences: Sequence[Event], starts: Sequence[datetime], zone_name: str
) -> dict[int, datetime]:
    """Of a series' `occurrences` (instances and exceptions, as `expand` gives them) and
    their `starts` (instants), those (by index) that begin when another one does and do
    not keep the plain key: ``{index: original start}``. Of such a group the instance
    that was not moved keeps the plain key (it had it before anything landed on it),
    else the one with the earliest original start. Depends only on the series (never on
    which path plans it), so the per-event and the batched planners agree."""
    groups: dict[datetime, list[int]] = {}
    for index, start in enumerate(starts):
        groups.setdefault(start, []).append(index)
    shared: dict[int, datetime] = {}
    for start, members in groups.items():
        if len(members) < 2:
            continue
        ranked = []
        for index in members:
            occurrence = occurrences[index]
            original = occurrence.original_start
            instant = instant_of(original, zone_name) if original is not None else start
            ranked.append((instant != start, instant, occurrence.provider_event_id or "", index))
        ranked.sort()
        shared.update((index, instant) for _, instant, _, index in ranked[1:])
    return shared


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
