"""Deciding between a local and a remote version of one event: the reconcile step's core.

Used by the pull (a remote change meets unpushed local edits) and by the push (Google
answers 412 because someone changed the event since calsync last saw it). Both call
`resolve` and then store `merged` and log `details` the same way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

from calsync.domain.codec import event_to_document
from calsync.domain.conflicts import MERGE_UNITS, ConflictPolicy, MergeResult, merge
from calsync.domain.models import Event

__all__ = ["Resolution", "exception_base", "policy_for", "resolve", "series_questions"]


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome of reconciling two versions.

    `merged` is what both sides should hold (for `manual` conflicts: the local version,
    kept until the user decides). `push_needed`: the remote side lacks some local change.
    `conflicting_fields`: how many fields both sides changed, differently (the policy
    picked one side for each); `conflict` is whether there was any.
    `manual`: the event must be flagged `conflict` and not pushed until resolved.
    `details` is the JSON for the sync log and the event's conflict record.
    """

    merged: Event
    push_needed: bool
    conflicting_fields: int
    manual: bool
    details: dict[str, Any]

    @property
    def conflict(self) -> bool:
        """Whether the policy had to pick between two different changes of a field."""
        return self.conflicting_fields > 0


#: Units an exception cannot inherit from its series as they are: its own times (the
#: series' are another occurrence's), its rule (it has none) and its status.
_NOT_INHERITED: Final = frozenset({"when", "recurrence", "status"})


def series_questions(*, base: Event, local: Event, remote: Event) -> list[str]:
    """The merge units a new exception's first push must ask the series about: changed
    both locally and on Google's copy of the instance since it was generated (`base`)."""

    def unit(event: Event, fields: tuple[str, ...]) -> tuple[object, ...]:
        return tuple(getattr(event, name) for name in fields)

    return [
        name
        for name, fields in MERGE_UNITS.items()
        if name not in _NOT_INHERITED
        and unit(local, fields) != unit(base, fields)
        and unit(remote, fields) != unit(base, fields)
    ]


def exception_base(*, base: Event, remote: Event, series: Event, units: list[str]) -> Event:
    """The base a new exception's first push merges against (decision JB1): for each of
    `units` (`series_questions`) where Google's instance holds the series' own value, that
    value, so the merge keeps the user's change of it.

    Google's instance then only inherits the field from its series: the change came from
    the series, not from a write to the instance. On Google an exception's own value of a
    field is kept when its series changes, and calsync acknowledged the user's change
    of the instance before it pushed it, so the user's value stands whenever the series
    changed. A value the instance holds apart from its series is another client's write
    to the instance, and the policy decides as before (decision E23)."""
    changes: dict[str, object] = {}
    for name in units:
        fields = MERGE_UNITS[name]
        if all(getattr(remote, f) == getattr(series, f) for f in fields):
            changes.update({f: getattr(remote, f) for f in fields})
    return dataclasses.replace(base, **changes) if changes else base  # type: ignore[arg-type]


def policy_for(calendar_policy: str | None, default: ConflictPolicy) -> ConflictPolicy:
    """The calendar's own policy if it has one, else the installation's default."""
    return ConflictPolicy(calendar_policy) if calendar_policy else default


def resolve(
    *, base: Event | None, local: Event, remote: Event, policy: ConflictPolicy
) -> Resolution:
    """Three-way merge of `local` and `remote` against `base` (design.md section 5).

    `last_updated_wins` compares the versions' `updated` times, so callers must set the
    local version's `updated` to when it was last edited locally.
    """
    result = merge(base, local, remote, policy=policy)
    return Resolution(
        merged=result.merged,
        push_needed=result.remote_changed,
        conflicting_fields=len(result.conflicts),
        manual=result.manual_conflict,
        details=_details(result, local, remote, policy),
    )


def _details(
    result: MergeResult, local: Event, remote: Event, policy: ConflictPolicy
) -> dict[str, Any]:
    return {
        "policy": policy.value,
        "fields": [
            {"field": r.field, "chosen": r.chosen.value, "conflict": r.conflict}
            for r in result.resolutions
        ],
        "local": event_to_document(local),
        "remote": event_to_document(remote),
    }
