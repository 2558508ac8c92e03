"""The reconcile step: apply one listing of remote changes to the local store.

Rules (design.md section 5):
- a remote version with the etag calsync already holds is no change (this is how the
  echo of calsync's own writes is suppressed: the push stores the etag Google returned);
- a new remote event is inserted, as synced, with the remote version as its base: the
  row itself, which stores no copy of it (`calsync.store.bases`, decision IA1);
- a changed remote event overwrites a synced local one (and is its base, the same way);
  one with unpushed local edits (`pending`, `error`, `conflict`) is merged three-way
  (`calsync.sync.resolve`) and the resolution logged; a merge that keeps local changes
  leaves the event `pending` with an outbox entry, so the push sends them;
- a cancelled exception is stored (it removes one instance while the series lives); a
  cancelled master or single event is deleted, with the exceptions of a master;
- an exception whose series no longer has its instance (its original start is past a
  new UNTIL, say) is stored cancelled, as Google shows it: not listed
  (`calsync.sync.stray_exceptions`, decision JH1);
- an event deleted locally and not yet pushed is left to the push;
- after a full listing, rows that were on Google and that it no longer lists are deleted
  (a full listing carries no tombstones for them), subject to the mass-deletion guard
  (`calsync.sync.deletion_guard`: more than half of them, and more than 20, are held
  until a second listing agrees); local events never pushed, and rows with unpushed
  local changes (`pending`, `error`, `conflict`, or deleted locally), are left to the
  push, which finds out what Google holds;
- a verifying listing (the convergence audit, `calsync.sync.audit`) also compares the
  synced rows whose etag Google still lists with their base version, field by field, and
  overwrites those that differ with Google's copy (without change notices: nothing
  changed at Google);
- the people of updated, cancelled and deleted events are told (change notices, through
  `calsync.notify.on_event_change`, as a change made by the organizer at Google), except during the
  first sync of a calendar; the reminders of every inserted, updated and deleted row are
  replanned.

What each listed event does is decided without I/O in `calsync.sync.reconcile_plan`
(decisions N1); this module reads the rows, asks it, and writes. Everything is written in
bulk in the caller's transaction.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Row
from sqlalchemy.orm import Session

from calsync.domain.codec import event_from_document
from calsync.domain.conflicts import ConflictPolicy
from calsync.domain.models import SYNCABLE_FIELDS, Event, EventStatus
from calsync.notify.on_event_change import (
    EventChange,
    events_changed,
    reminder_candidates,
    reschedule_many,
)
from calsync.notify.reminders import DEFAULT_HORIZON, latest_start
from calsync.providers.google.ids import local_id_from_google_event_id
from calsync.store import listed_events
from calsync.store.bases import row_base, row_is_base
from calsync.store.event_bulk_writes import insert_events, update_events
from calsync.store.events import (
    EVENT_COLUMNS,
    attendees_by_event,
    event_columns,
    insert_attendees,
    take_attendees,
    to_event,
)
from calsync.sync.deletion_guard import HoldOutcome, judge, read_hold, save_hold
from calsync.sync.reconcile_merge import merge_listed
from calsync.sync.reconcile_plan import Action, Plan, Stored, live_ids, plan, unlisted
from calsync.sync.stray_exceptions import masters_wanted, stray_cancelled, with_stray_rows

__all__ = ["CalendarRef", "ReconcileReport", "apply_changes"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CalendarRef:
    """The calendar a listing belongs to."""

    id: uuid.UUID
    user_id: uuid.UUID
    policy: ConflictPolicy
    #: the owner's email when the caller has read it (the pull's `finish_pull`): the
    #: change notices then need no read when the owner is their only person (IC1)
    owner_email: str | None = None


@dataclass(slots=True)
class ReconcileReport:
    """What one listing did to the local store."""

    pulled: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    #: merged events whose policy had to pick between two changes of a field (their log
    #: rows count the fields)
    conflicts: int = 0
    unchanged: int = 0
    changed_ids: list[uuid.UUID] = field(default_factory=list)
    #: full listings: rows that were on Google and are no longer listed (deleted or held)
    unlisted: int = 0
    #: verifying listings: rows whose etag Google still lists but whose content differed
    #: (overwritten; counted in `updated` too)
    drifted: int = 0
    #: full listings: how many deletions are held after the listing, and what the
    #: listing did about holds (`calsync.sync.deletion_guard`)
    held: int = 0
    hold_outcome: HoldOutcome | None = None

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.deleted


def apply_changes(
    session: Session,
    calendar: CalendarRef,
    remote_events: Sequence[Event],
    *,
    full_listing: bool,
    now: datetime,
    announce: bool = True,
    verify: bool = False,
    recheck_after: timedelta,
    unreadable: frozenset[str] = frozenset(),
    refreshed: frozenset[str] = frozenset(),
) -> ReconcileReport:
    """Apply `remote_events` (one whole listing, all pages) to the calendar's local rows.

    `announce`: record change notices for updated, cancelled and deleted events (False
    for the first sync of a calendar: nobody needs its whole content announced).
    `verify` (a full listing only): also compare the rows whose etag is unchanged, and
    overwrite those that differ; `refreshed` (listed ids) are so overwritten always (JJ2).
    `recheck_after`: how long held deletions wait for a second listing; a full listing
    stores the calendar's hold and sync status (`deletion_guard.save_hold`).
    `unreadable`: ids of events the listing had but calsync could not read: a full
    listing keeps their rows as they are (they are on Google, not deleted)."""
    report = ReconcileReport(pulled=len(remote_events))
    latest, rows, everything = _listed(session, calendar.id, remote_events, full_listing)
    gone: list[uuid.UUID] = []
    if full_listing:
        gone = _guarded(
            session, calendar, latest, everything, now, recheck_after, report, unreadable
        )
    drifted = refreshed | (_drifted(session, rows, latest) if verify and full_listing else set())
    report.drifted = len(drifted)
    decided = plan({g: _stored(row) for g, row in rows.items()}, latest, drifted)
    decided = with_stray_rows(session, calendar.id, decided, latest, rows)
    report.unchanged = decided.unchanged
    # Every row the plan updates or deletes: their attendees are taken (deleted and read
    # in one statement), to be written anew for updates and told of changes.
    touched = {step.google_id for step in decided.steps if step.action is not Action.INSERT}
    local_attendees = take_attendees(
        session, [row.id for google_id, row in rows.items() if google_id in touched]
    )
    applied = _steps_applied(
        session, calendar, decided, rows, local_attendees, announce=announce, now=now, report=report
    )
    if announce:
        applied.notices.extend(_gone(session, gone))
        owner = (calendar.user_id, calendar.owner_email) if calendar.owner_email else None
        events_changed(
            session, applied.notices, actor_user_id=None, source="sync", now=now, sync_owner=owner
        )
    deleted = listed_events.delete_series(
        session, calendar.id, applied.deletions
    ) + listed_events.delete_ids(session, gone)
    report.deleted += len(deleted)
    written = _write(session, calendar, applied.inserts, applied.updates, now)
    insert_attendees(session, [*applied.new_attendees, *applied.attendees])
    # Only new rows that may need reminders are read back; updated ones came back (IS1)
    new = reminder_candidates(session, applied.inserts, user_id=calendar.user_id, now=now)
    reschedule_many(session, [*applied.updated_ids, *deleted], new=new, now=now, written=written)
    return report


def _steps_applied(
    session: Session,
    calendar: CalendarRef,
    decided: Plan,
    rows: Mapping[str, Row[Any]],
    local_attendees: Mapping[uuid.UUID, Sequence[Any]],
    *,
    announce: bool,
    now: datetime,
    report: ReconcileReport,
) -> _Applied:
    """The writes and notices of the plan's steps, in listing order (merges are resolved
    and logged here); counted in `report`."""
    applied = _Applied()
    for step in decided.steps:
        if step.action is Action.INSERT:
            applied.insert(step.remote, report)
            continue
        row = rows[step.google_id]
        row_attendees = local_attendees.get(row.id, [])
        if step.action is Action.DELETE:
            applied.deletions.append(step.google_id)
            if announce:
                applied.notices.append(_cancellation(row, row_attendees))
            continue
        if step.action is Action.MERGE:
            values, after, conflicted = merge_listed(
                session, calendar, row, step.remote, row_attendees, now
            )
            report.conflicts += conflicted
        else:
            values, after = _overwrite_values(row, step.remote), step.remote
        # A drifted row was wrong here: nothing changed at Google to announce.
        if announce and not step.drifted:
            applied.notices.append(_change(row, row_attendees, after))
        applied.update(row.id, values, after, report)
    return applied


@dataclass(slots=True)
class _Applied:
    """The writes one plan adds up to, gathered to be made in bulk."""

    inserts: list[tuple[uuid.UUID, Event]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    attendees: list[tuple[uuid.UUID, Sequence[Any]]] = field(default_factory=list)
    new_attendees: list[tuple[uuid.UUID, Sequence[Any]]] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)
    notices: list[EventChange] = field(default_factory=list)
    updated_ids: list[uuid.UUID] = field(default_factory=list)

    def insert(self, remote: Event, report: ReconcileReport) -> None:
        event_id = uuid.uuid4()
        self.inserts.append((event_id, remote))
        if remote.attendees:
            self.new_attendees.append((event_id, remote.attendees))
        report.inserted += 1
        report.changed_ids.append(event_id)

    def update(
        self, event_id: uuid.UUID, values: dict[str, Any], after: Event, report: ReconcileReport
    ) -> None:
        self.updates.append(values)
        self.attendees.append((event_id, after.attendees))
        report.updated += 1
        report.changed_ids.append(event_id)
        self.updated_ids.append(event_id)


def _stored(row: Row[Any]) -> Stored:
    """What the plan needs of a local row (``has_base`` is read by full listings only)."""
    return Stored(
        id=row.id,
        google_id=row.google_event_id,
        etag=row.etag,
        sync_state=row.sync_state,
        deleted=row.deleted_at is not None,
        has_base=bool(getattr(row, "has_base", True)),
    )


def _change(row: Row[Any], attendees: Sequence[Any], after: Event) -> EventChange:
    """The notice of a row that now holds `after`."""
    if after.status == EventStatus.CANCELLED:
        return _cancellation(row, attendees)
    return EventChange(row.id, to_event(row, attendees), after, owner_id=row.user_id)


def _cancellation(row: Row[Any], attendees: Sequence[Any]) -> EventChange:
    """The notice of a cancelled event: Google's tombstone carries no content, so the
    cancelled version is the local one with the cancelled status."""
    before = to_event(row, attendees)
    after = dataclasses.replace(before, status=EventStatus.CANCELLED)
    return EventChange(row.id, before, after, owner_id=row.user_id)


def _listed(
    session: Session, calendar_id: uuid.UUID, remote_events: Sequence[Event], full_listing: bool
) -> tuple[dict[str, Event], dict[str, Row[Any]], list[Row[Any]]]:
    """The listing (one version per Google id, stray exceptions as their cancelled
    versions: `stray_cancelled`) and `_existing_rows`' answer for it. The masters of its
    live exceptions that it lacks are read in the same statement, to judge them."""
    latest = _latest_by_id(remote_events)
    wanted = masters_wanted(latest)
    rows, everything = _existing_rows(session, calendar_id, [*latest, *wanted], full_listing)
    masters = {g: to_event(rows.pop(g)) for g in wanted if g in rows}
    # stored as Google shows them: an exception its series no longer has is not listed
    stray_cancelled(latest, masters)
    return latest, rows, everything


def _latest_by_id(remote_events: Iterable[Event]) -> dict[str, Event]:
    """One version per event id: a listing may name an event twice; the last one wins."""
    latest: dict[str, Event] = {}
    for event in remote_events:
        if event.provider_event_id:
            latest[event.provider_event_id] = event
    return latest


def _existing_rows(
    session: Session, calendar_id: uuid.UUID, google_ids: Sequence[str], full_listing: bool
) -> tuple[dict[str, Row[Any]], list[Row[Any]]]:
    """Local rows by Google id (Core rows of `listed_events.ROW_COLUMNS`, taken); also
    finds rows calsync created whose insert answer was lost (their Google id is derived
    from the local id but not yet recorded).

    After a full listing, every row of the calendar is read at once and is the second
    value (with ``has_base``: whether the row was on Google, having a base version);
    after an incremental one it is empty. The base versions are left unread
    (`listed_events.base_version` reads one for a merge, the only reader).
    """
    found: dict[str, Row[Any]] = {}
    everything: list[Row[Any]] = []
    if full_listing:
        listed = set(google_ids)
        everything = listed_events.calendar_rows(session, calendar_id)
        by_id = {row.id: row for row in everything}
        for row in everything:
            if row.google_event_id is not None and row.google_event_id in listed:
                found[row.google_event_id] = row
    else:
        found = listed_events.rows_by_google_ids(session, calendar_id, google_ids)
    derived: dict[uuid.UUID, str] = {}
    for google_id in google_ids:
        if google_id not in found:
            local_id = _local_id(google_id)
            if local_id is not None:
                derived[local_id] = google_id
    if full_listing:
        found.update({derived[i]: row for i, row in by_id.items() if i in derived})
    else:
        for row in listed_events.rows_by_ids(session, list(derived), calendar_id=calendar_id):
            found[derived[row.id]] = row
    return found, everything


def _guarded(
    session: Session,
    calendar: CalendarRef,
    latest: Mapping[str, Event],
    everything: Sequence[Row[Any]],
    now: datetime,
    recheck_after: timedelta,
    report: ReconcileReport,
    unreadable: frozenset[str],
) -> list[uuid.UUID]:
    """The rows a full listing deletes because Google no longer lists them, after the
    mass-deletion guard held what it holds (stored on the calendar row, with its status).

    Offered to the guard: rows that were on Google (a base version), are not listed (nor
    listed but unreadable), and have no unpushed local change (those are the push's to
    settle with Google)."""
    gone = unlisted((_stored(row) for row in everything), latest, unreadable)
    previous = read_hold(session, calendar.id)
    verdict = judge(
        unlisted=gone,
        listed=live_ids(latest),
        known=sum(1 for row in everything if row.has_base),
        previous=previous,
        now=now,
        recheck_after=recheck_after,
    )
    if previous is not None or verdict.hold is not None:
        save_hold(session, calendar.id, verdict.hold, recheck_after=recheck_after)
    report.unlisted = len(gone)
    report.held = len(verdict.hold.ids) if verdict.hold is not None else 0
    report.hold_outcome = verdict.outcome
    return [gone[google_id] for google_id in verdict.delete if google_id in gone]


def _drifted(
    session: Session, rows: Mapping[str, Row[Any]], latest: Mapping[str, Event]
) -> frozenset[str]:
    """The Google ids of synced rows whose etag Google still lists but whose content is
    no longer the version both sides agreed on (the base version) in a field both sides
    can change (`SYNCABLE_FIELDS`): the row was changed behind the sync's back.

    The same etag means Google's copy is still the base, so the row is compared with the
    base rather than with Google's copy as mapped now: a write of calsync's that Google
    normalises (an all-day event's zone, say) is the same version, not a divergence. A
    row that is its own base (`calsync.store.bases`) was stored as a listing gave it, so
    its base is Google's copy under that etag, as listed now (decision IA3)."""
    same = {
        row.id: google_id
        for google_id, row in rows.items()
        if row.etag is not None
        and row.etag == latest[google_id].etag
        and row.sync_state == "synced"
        and row.deleted_at is None
    }
    attendees = attendees_by_event(session, list(same))
    drifted = set()
    for event_id, base in listed_events.base_versions(session, list(same)):
        if base is None:
            continue
        google_id = same[event_id]
        local = to_event(rows[google_id], attendees.get(event_id, ()))
        agreed = latest[google_id] if row_is_base(base) else event_from_document(base)
        if any(getattr(local, name) != getattr(agreed, name) for name in SYNCABLE_FIELDS):
            drifted.add(google_id)
    return frozenset(drifted)


def _local_id(google_id: str) -> uuid.UUID | None:
    try:
        return local_id_from_google_event_id(google_id)
    except ValueError:
        return None


#: The columns `_insert_values` gives (every row of one ``COPY`` has the same).
_INSERT_COLUMNS: Final = (
    *EVENT_COLUMNS,
    "id",
    "calendar_id",
    "user_id",
    "sync_state",
    "base_version",
    "version",
)


def _insert_values(event_id: uuid.UUID, calendar: CalendarRef, remote: Event) -> dict[str, Any]:
    """The row of a new event (exactly the `_INSERT_COLUMNS`)."""
    return {
        **event_columns(remote),
        "id": event_id,
        "calendar_id": calendar.id,
        "user_id": calendar.user_id,
        "sync_state": "synced",
        # the row is what Google listed: its own base (decision IA1)
        "base_version": row_base(),
        "version": 1,
    }


def _overwrite_values(row: Row[Any], remote: Event) -> dict[str, Any]:
    return {
        **event_columns(remote),
        "_id": row.id,
        "sync_state": "synced",
        "sync_error": None,
        "conflict": None,
        "base_version": row_base(),
        "version": row.version + 1,
    }


def _gone(session: Session, event_ids: Sequence[uuid.UUID]) -> list[EventChange]:
    """The notices of rows about to be deleted because Google no longer lists them."""
    attendees = attendees_by_event(session, event_ids)
    changes = []
    for row in listed_events.rows_by_ids(session, event_ids):
        if row.deleted_at is None:
            before = to_event(row, attendees.get(row.id, ()))
            changes.append(EventChange(row.id, before, None))
    return changes


def _write(
    session: Session,
    calendar: CalendarRef,
    inserts: list[tuple[uuid.UUID, Event]],
    updates: list[dict[str, Any]],
    now: datetime,
) -> dict[uuid.UUID, Any]:
    """Insert the new events (each row made as ``COPY`` takes it, so that making them
    overlaps with PostgreSQL storing the earlier ones) and update the changed ones: the
    rows the update returned for `reschedule_many` (`update_events`' `replanning`)."""
    if inserts:
        insert_events(
            session,
            (_insert_values(event_id, calendar, remote) for event_id, remote in inserts),
            columns=_INSERT_COLUMNS,
        )
    return update_events(session, updates, replanning=(now, latest_start(now, DEFAULT_HORIZON)))
