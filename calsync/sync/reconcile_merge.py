"""The reconcile's merge: a listed remote change of a row with unpushed local edits.

Three-way, against the row's stored base version (`calsync.sync.resolve`, design.md
section 5), logged in the sync log with both versions; a merge that keeps local
changes leaves the row ``pending`` with an outbox row of its own, so the push sends
them; a manual one keeps the local version and flags ``conflict``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from calsync.domain.codec import event_from_document
from calsync.domain.models import Event
from calsync.store import listed_events, outbox
from calsync.store.bases import base_document, row_is_base
from calsync.store.events import event_columns, to_event
from calsync.store.sync_logs import LogKind, LogStatus, record
from calsync.sync.resolve import Resolution, resolve

if TYPE_CHECKING:
    from calsync.sync.reconcile import CalendarRef

__all__ = ["merge_listed"]


def merge_listed(
    session: Session,
    calendar: CalendarRef,
    row: Row[Any],
    remote: Event,
    row_attendees: Sequence[Any],
    now: datetime,
) -> tuple[dict[str, Any], Event, bool]:
    """Three-way merge of a remote change with unpushed local edits; logs the resolution.
    Returns the row's new column values, the event it now holds and whether the policy
    had to pick between two changes of a field."""
    before = to_event(row, row_attendees)
    local = dataclasses.replace(before, updated=row.updated_at)
    stored = listed_events.base_version(session, row.id)
    # A row that is its own base (`calsync.store.bases`) has no edit to merge: its base
    # is what it holds, which a manual merge must then store (it changes the row).
    own = row_is_base(stored)
    base = before if own else event_from_document(stored) if stored else None
    if row.etag is None and base is None:
        # Google never acknowledged a write of this row, yet lists it (under the id calsync
        # derives from the row's): an insert of ours got through and its answer was lost.
        # What Google holds is a version calsync sent, the last one both sides agree on;
        # the local edits since win, whatever the clocks say (Google stamps the insert
        # when it lands, which may be after a later local edit). A new exception has a
        # base, the instance as its series generated it: Google lists that instance's id
        # whoever wrote it, so another client's change of it is merged, not overwritten
        # (decision C3; the push's first read merges against the same base, E23).
        base = remote
    resolution = resolve(base=base, local=local, remote=remote, policy=calendar.policy)
    record(
        session,
        user_id=calendar.user_id,
        calendar_id=calendar.id,
        event_id=row.id,
        kind=LogKind.CONFLICT,
        status=LogStatus.MANUAL if resolution.manual else LogStatus.RESOLVED,
        at=now,
        conflicts=resolution.conflicting_fields,
        message="remote change merged with unpushed local edits",
        details=resolution.details,
    )
    kept = {"base_version": base_document(before)} if own else {}
    return _merged_values(session, calendar, row, (local, kept), remote, resolution, now)


def _merged_values(
    session: Session,
    calendar: CalendarRef,
    row: Row[Any],
    local_and_base: tuple[Event, dict[str, Any]],
    remote: Event,
    resolution: Resolution,
    now: datetime,
) -> tuple[dict[str, Any], Event, bool]:
    """What `merge_listed` returns for `resolution`; queues the push of a merge that
    keeps local changes. `local_and_base`: the local event and the values that store
    its base if the row held it as its own (else none: a manual merge keeps the base)."""
    local, kept_base = local_and_base
    bookkeeping = {"_id": row.id, "version": row.version + 1}
    if resolution.manual:
        keep = {**event_columns(local), "etag": remote.etag, "sequence": remote.sequence}
        keep.update(kept_base)
        keep["remote_updated_at"] = remote.updated
        return (
            {**keep, **bookkeeping, "sync_state": "conflict", "conflict": resolution.details},
            local,
            resolution.conflict,
        )
    merged = resolution.merged
    values = {
        **event_columns(merged),
        **bookkeeping,
        "base_version": base_document(remote),
        "conflict": None,
        "sync_error": None,
        "sync_state": "pending" if resolution.push_needed else "synced",
    }
    if resolution.push_needed:
        # Always a row of its own, even if rows are pending: a push running now closes
        # only the rows it read before this merge, so relying on them would leave the
        # merged version "pending" with nothing left to push it (tests/faults).
        outbox.add(
            session,
            event_id=row.id,
            user_id=calendar.user_id,
            calendar_id=calendar.id,
            operation="update",
            now=now,
        )
    return values, merged, resolution.conflict
