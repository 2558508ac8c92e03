"""Deciding between a local and a remote version of one event: the reconcile step's core.

Used by the pull (a remote change meets unpushed local edits) and by the push (Google
answers 412 because someone changed the event since calsync last saw it). Both call
`resolve` and then store `merged` and log `details` the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from calsync.domain.codec import event_to_document
from calsync.domain.conflicts import ConflictPolicy, MergeResult, merge
from calsync.domain.models import Event

__all__ = ["Resolution", "policy_for", "resolve"]


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
