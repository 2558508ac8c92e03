"""Three-way merge of a local and a remote version of an event against their common base.

The base is the last version both sides agreed on (what calsync last pushed or pulled
successfully). Per merge unit: changed on one side only takes that side; changed on both
to the same value is no conflict; changed on both differently is decided by the policy:

- `last_updated_wins`: the side with the later update time (ties and unknown go remote);
- `remote_wins`, `local_wins`;
- `manual`: keep local for now and report the conflict, so the event is flagged.

Merge units are the syncable fields, except that `start`, `end` and `timezone` form one
unit `when`: merging them separately could yield an end before the start or a timed start
with an all-day end. An all-day `when` compares by its dates alone: Google holds no zone for
a date, calsync reads an all-day event from Google in the calendar's zone while its own
writes carry none (or a zone a client gave, which Google never gets), so the zone differing
is no change of either side (decision J1). Collections are compared as whole values and
without meaningless order (attendees by email, recurrence lines as a set, reminders sorted,
metadata as a mapping). This module decides; it does not write anything or log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from calsync.domain.models import SYNCABLE_FIELDS, Event, EventTime

__all__ = [
    "MERGE_UNITS",
    "ConflictPolicy",
    "FieldResolution",
    "MergeResult",
    "Side",
    "merge",
]


class ConflictPolicy(StrEnum):
    LAST_UPDATED_WINS = "last_updated_wins"
    REMOTE_WINS = "remote_wins"
    LOCAL_WINS = "local_wins"
    MANUAL = "manual"


class Side(StrEnum):
    """Where a merged value came from. `BOTH`: the sides agree (or neither changed)."""

    BOTH = "both"
    LOCAL = "local"
    REMOTE = "remote"


MERGE_UNITS: Final[Mapping[str, tuple[str, ...]]] = {
    "title": ("title",),
    "description": ("description",),
    "location": ("location",),
    "when": ("start", "end", "timezone"),
    "category": ("category",),
    "recurrence": ("recurrence",),
    "attendees": ("attendees",),
    "reminders": ("reminders",),
    "metadata": ("metadata",),
    "status": ("status",),
    "type_properties": ("type_properties",),
    "transparency": ("transparency",),
    "visibility": ("visibility",),
    "color_id": ("color_id",),
    "conference": ("conference",),
}
assert {name for fields in MERGE_UNITS.values() for name in fields} == SYNCABLE_FIELDS


@dataclass(frozen=True, slots=True)
class FieldResolution:
    """How one merge unit was decided, with all three versions for the sync log.

    For a single-field unit the values are the field's values; for `when` they are
    `(start, end, timezone)` tuples. `policy` is set only when both sides changed the
    unit differently (a conflict); then `chosen` is the side the policy picked.
    """

    field: str
    base: object
    local: object
    remote: object
    chosen: Side
    policy: ConflictPolicy | None = None

    @property
    def conflict(self) -> bool:
        return self.policy is not None


@dataclass(frozen=True, slots=True)
class MergeResult:
    """The merged event and how it came about.

    `merged` has the merged syncable fields; its identity and provider fields
    (`provider_event_id`, `etag`, `sequence`, `updated`, `organizer_email`, ...) are the
    remote version's, and `calsync_id` is the local one's. `resolutions` lists every unit
    that differs between any two versions (units all three agree on are left out).
    `manual_conflict` is true when the policy is `manual` and a unit conflicted: the event
    must be flagged `conflict` until someone decides.
    """

    merged: Event
    resolutions: tuple[FieldResolution, ...]
    manual_conflict: bool

    @property
    def conflicts(self) -> tuple[FieldResolution, ...]:
        return tuple(r for r in self.resolutions if r.conflict)

    @property
    def local_changed(self) -> bool:
        """Whether the merge changes the local version (the database must be updated)."""
        return any(r.chosen == Side.REMOTE for r in self.resolutions)

    @property
    def remote_changed(self) -> bool:
        """Whether the merge changes the remote version (a push is needed)."""
        return any(r.chosen == Side.LOCAL for r in self.resolutions)


def merge(
    base: Event | None,
    local: Event,
    remote: Event,
    *,
    policy: ConflictPolicy,
    local_updated: datetime | None = None,
    remote_updated: datetime | None = None,
) -> MergeResult:
    """Merge `local` and `remote` against `base`, unit by unit.

    Without a base (the event was never agreed on) every difference is a conflict. For
    `last_updated_wins`, `local_updated` and `remote_updated` default to the versions'
    `updated` fields; an unknown time loses to a known one, and a tie goes to remote.
    Never raises for valid events; does not validate the merged result.
    """
    resolutions: list[FieldResolution] = []
    changes: dict[str, object] = {}
    manual = False
    local_time = local_updated or local.updated
    remote_time = remote_updated or remote.updated
    for unit, fields in MERGE_UNITS.items():
        local_value = _unit_value(local, fields)
        remote_value = _unit_value(remote, fields)
        base_value = _unit_value(base, fields) if base is not None else None
        local_key = _comparable(unit, local_value)
        remote_key = _comparable(unit, remote_value)
        base_key = _comparable(unit, base_value) if base is not None else _NO_BASE
        policy_used: ConflictPolicy | None = None
        if local_key == remote_key:
            if base is None or local_key == base_key:
                continue
            chosen = Side.BOTH
        elif local_key == base_key:
            chosen = Side.REMOTE
        elif remote_key == base_key:
            chosen = Side.LOCAL
        else:
            policy_used = policy
            chosen = _decide(policy, local_time, remote_time)
            manual = manual or policy == ConflictPolicy.MANUAL
        resolutions.append(
            FieldResolution(unit, base_value, local_value, remote_value, chosen, policy_used)
        )
        if chosen == Side.LOCAL:
            changes.update(zip(fields, _as_tuple(local_value, fields), strict=True))
    merged = dataclasses.replace(remote, calsync_id=local.calsync_id, **changes)  # type: ignore[arg-type]
    return MergeResult(merged=merged, resolutions=tuple(resolutions), manual_conflict=manual)


_NO_BASE: Final = object()


def _decide(
    policy: ConflictPolicy, local_time: datetime | None, remote_time: datetime | None
) -> Side:
    if policy in (ConflictPolicy.LOCAL_WINS, ConflictPolicy.MANUAL):
        return Side.LOCAL
    if policy == ConflictPolicy.REMOTE_WINS:
        return Side.REMOTE
    if local_time is not None and (remote_time is None or local_time > remote_time):
        return Side.LOCAL
    return Side.REMOTE


def _unit_value(event: Event, fields: tuple[str, ...]) -> object:
    values = tuple(getattr(event, name) for name in fields)
    return values[0] if len(values) == 1 else values


def _as_tuple(value: object, fields: tuple[str, ...]) -> tuple[object, ...]:
    if len(fields) == 1:
        return (value,)
    assert isinstance(value, tuple)
    return value


def _comparable(unit: str, value: object) -> object:
    """A value whose equality means "same meaning" for the unit."""
    if unit == "when" and isinstance(value, tuple) and _all_day(value[0]):
        return value[:2]  # the dates; the zone of an all-day event is not on Google
    if unit == "recurrence" and isinstance(value, tuple):
        return frozenset(value)
    if unit == "metadata" and isinstance(value, Mapping):
        return frozenset(value.items())
    return value


def _all_day(start: object) -> bool:
    return isinstance(start, EventTime) and start.day is not None
