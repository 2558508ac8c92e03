"""The reconcile's decisions, without I/O: given the stored rows and one listing of
Google's events, what to insert, overwrite, merge, delete or leave alone.

`calsync.sync.reconcile` reads the rows, asks this module what to do with them and
writes the outcome; everything here is a function of its arguments (design.md section 5
states the rules; the decision tables are in tests/unit/sync/test_reconcile_plan.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from calsync.domain.models import Event, EventStatus

__all__ = [
    "LOCAL_EDIT_STATES",
    "Action",
    "Plan",
    "Step",
    "Stored",
    "action_for",
    "live_ids",
    "plan",
    "unlisted",
]

#: Sync states of a row with local changes Google has not acknowledged yet.
LOCAL_EDIT_STATES: Final = frozenset({"pending", "error", "conflict"})


class Action(StrEnum):
    """What one listed event does to its local row."""

    #: Google lists the version calsync holds (or a tombstone of an event calsync does
    #: not hold): nothing to do.
    UNCHANGED = "unchanged"
    #: deleted locally and not pushed yet: the push settles it with Google.
    LEFT_TO_PUSH = "left to push"
    #: new on Google: inserted as synced, the remote version its base.
    INSERT = "insert"
    #: changed on Google, no local edits: Google's version replaces the row.
    OVERWRITE = "overwrite"
    #: changed on Google and locally: merged three-way (`calsync.sync.resolve`).
    MERGE = "merge"
    #: a cancelled master or single event: the row (and a master's exceptions) deleted.
    DELETE = "delete"


@dataclass(frozen=True, slots=True, kw_only=True)
class Stored:
    """What the decisions need of one local row."""

    id: uuid.UUID
    google_id: str | None
    etag: str | None
    sync_state: str
    #: deleted locally (kept until the push has told Google)
    deleted: bool = False
    #: was on Google (the row has a base version)
    has_base: bool = True


@dataclass(frozen=True, slots=True)
class Step:
    """One listed event that changes the store, and how."""

    action: Action
    google_id: str
    remote: Event
    #: the row's etag is Google's but its content drifted (a verifying listing): it is
    #: overwritten, and nothing changed at Google to announce
    drifted: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """What one listing does: the steps in listing order, and how many listed events
    change nothing."""

    steps: tuple[Step, ...]
    unchanged: int

    def of(self, *actions: Action) -> list[Step]:
        return [step for step in self.steps if step.action in actions]


def action_for(stored: Stored | None, remote: Event, *, drifted: bool = False) -> Action:
    """What the listed `remote` version does to its local row `stored` (None: calsync
    holds no row of it). `drifted`: the row's content differs from the version both
    sides agreed on although Google lists the same etag (a verifying listing found it).

    The etag comes first: the echo of calsync's own writes carries the etag the push
    stored, so it is no change. A cancelled exception is not a deletion: it is stored
    (it removes one instance while the series lives)."""
    same_version = stored is not None and stored.etag is not None and stored.etag == remote.etag
    if same_version and not drifted:
        return Action.UNCHANGED
    if remote.status == EventStatus.CANCELLED and not remote.is_exception:
        if stored is None:
            return Action.UNCHANGED
        return Action.LEFT_TO_PUSH if stored.deleted else Action.DELETE
    if stored is None:
        return Action.INSERT
    if stored.deleted:
        return Action.LEFT_TO_PUSH
    if stored.sync_state in LOCAL_EDIT_STATES:
        return Action.MERGE
    return Action.OVERWRITE


def plan(
    stored: Mapping[str, Stored],
    latest: Mapping[str, Event],
    drifted: frozenset[str] = frozenset(),
) -> Plan:
    """The plan of one listing: `latest` (one version per Google id, in listing order),
    `stored` (the local rows by Google id), `drifted` (the Google ids `action_for`
    treats as drifted)."""
    steps: list[Step] = []
    unchanged = 0
    for google_id, remote in latest.items():
        is_drifted = google_id in drifted
        action = action_for(stored.get(google_id), remote, drifted=is_drifted)
        if action in (Action.UNCHANGED, Action.LEFT_TO_PUSH):
            unchanged += 1
        else:
            steps.append(Step(action, google_id, remote, is_drifted))
    return Plan(tuple(steps), unchanged)


def unlisted(
    everything: Iterable[Stored], latest: Mapping[str, Event], unreadable: frozenset[str]
) -> dict[str, uuid.UUID]:
    """After a full listing: the rows (local id by Google id) Google no longer lists and
    the listing may delete (subject to the mass-deletion guard).

    Only rows that were on Google (a base version), that are not listed (nor listed but
    unreadable: they are on Google), and that have no unpushed local change (those are
    the push's to settle with Google)."""
    return {
        row.google_id: row.id
        for row in everything
        if row.has_base
        and row.google_id is not None
        and row.google_id not in latest
        and row.google_id not in unreadable
        and row.sync_state not in LOCAL_EDIT_STATES
        and not row.deleted
    }


def live_ids(latest: Mapping[str, Event]) -> list[str]:
    """The Google ids a full listing holds as live (everything but the tombstones of
    masters and single events): what the mass-deletion guard counts as listed."""
    return [
        google_id
        for google_id, event in latest.items()
        if event.status != EventStatus.CANCELLED or event.is_exception
    ]
