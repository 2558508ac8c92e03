"""The calls the events API and the sync engine make whenever event rows change.

They run inside the caller's transaction (they never commit, never touch the network and
never enqueue), so a rolled-back change leaves no notice behind and a committed one always
has its notices and reminders: the scheduler sends them.

- :func:`event_changed` records change notices for the people of the event other than the
  one who changed it (see :mod:`calsync.notify.changes`).
- :func:`reschedule_reminders` replans the event's reminders (see
  :mod:`calsync.notify.reminders`): moved occurrences get new reminders, removed ones lose
  their pending reminders, and nothing already sent is sent again.
- :func:`events_changed` and :func:`reschedule_many` do the same for many events at once
  (a pull may change thousands), in a few queries per batch instead of a few per event.

Typical use, after writing the row::

    event_changed(session, before=old, after=new, event_id=row.id,
                  actor_user_id=user.id, source="api")
    reschedule_reminders(session, row.id)
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from calsync.domain.models import Event, EventStatus, EventTime
from calsync.notify.changes import EventChange, event_changed, events_changed
from calsync.notify.preferences import Preferences, load_preferences, of_joined
from calsync.notify.reminders import (
    DEFAULT_HORIZON,
    latest_start,
    plan_reminders,
    reminder_row,
    replan_many,
    reschedule_reminders,
)
from calsync.store import deliveries, upcoming
from calsync.store.events import reminders_document
from calsync.store.tables import utcnow

__all__ = [
    "EventChange",
    "event_changed",
    "events_changed",
    "plan_new_single",
    "reminder_candidates",
    "reschedule_many",
    "reschedule_reminders",
]


def reminder_candidates(
    session: Session,
    inserted: Iterable[tuple[uuid.UUID, Event]],
    *,
    user_id: uuid.UUID,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
) -> list[uuid.UUID]:
    """The ids of just-inserted events of `user_id`, all of one calendar, that
    :func:`reschedule_many` would do anything for, found from the values stored and the
    user's preferences (read once, and only if an inserted event is upcoming):
    exceptions of a series whose master is not among `inserted` (their master is
    replanned), series and upcoming events whose reminders may be due within the horizon
    (`_worth_planning`, the test `reschedule_many` applies to the rows it reads). Passing
    only these as its ``new`` has the outcome of passing all of them (new rows have no
    pending reminders), so a big first sync does not read back every new row to find
    the few that need reminders. Call it just before `reschedule_many`, in the same
    transaction (both then see the same preferences).
    """
    starts_before = latest_start(now, horizon)
    latest = now + horizon
    prefs: Preferences | None = None
    found = []
    exceptions: list[tuple[uuid.UUID, str]] = []
    new_series: dict[str, uuid.UUID] = {}
    moved_in: set[str] = set()  # series with an upcoming live exception among `inserted`
    for event_id, event in inserted:
        if event.recurring_event_id is not None:
            exceptions.append((event_id, event.recurring_event_id))
            if _live_and_upcoming(event, now, starts_before):
                moved_in.add(event.recurring_event_id)
            continue
        if event.recurrence:
            new_series[event.provider_event_id or str(event_id)] = event_id
        start = _stored_instant(event.start)
        if (
            event.status == EventStatus.CANCELLED
            or start >= starts_before
            or (not event.recurrence and _stored_instant(event.end) <= now)
        ):
            continue  # not upcoming: its query would not read it
        if prefs is None:
            prefs = load_preferences(session, user_id)
        reminders = reminders_document(event.reminders)
        if _worth_planning(prefs, reminders, start, event.is_recurring, False, latest):
            found.append(event_id)
    # An exception of a series inserted with it only leads `reschedule_many` to that
    # master, a new row without pending reminders: the master is picked above on its
    # own values or needs nothing (ID1: bench_months' first sync read 780 exceptions
    # and their masters back for nothing).
    found += [event_id for event_id, series in exceptions if series not in new_series]
    # A series is upcoming, whatever its own span, while one of its live exceptions is
    # (`calsync.store.upcoming`, IE1): an instance moved past the end of a finished series.
    found += [new_series[s] for s in sorted(moved_in & new_series.keys())]
    return list(dict.fromkeys(found))


def plan_new_single(
    session: Session,
    event_id: uuid.UUID,
    event: Event,
    *,
    user_id: uuid.UUID,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
) -> None:
    """``reschedule_many(new=[event_id])`` for `event`, a timed single event (no
    recurrence, not an exception) of `user_id` that this transaction has just inserted
    with a fresh id, from the values in hand (decision IF1): the same reminders, planned
    from the values stored rather than the row read back. At most the owner's
    preferences are read (only for an upcoming event), then the reminders due within
    the horizon inserted. A fresh id has no pending reminder to replace, and a timed
    event's reminders do not depend on its owner's zone (only a day's midnight does).
    Planned without `event`'s attendees, as the planners that read the row plan it."""
    assert not event.recurrence
    assert event.recurring_event_id is None
    assert event.start.instant is not None
    start = event.start.instant
    if (
        event.status == EventStatus.CANCELLED
        or start >= latest_start(now, horizon)
        or _stored_instant(event.end) <= now
    ):
        return  # not upcoming: `reschedule_many`'s read would not find it
    prefs = load_preferences(session, user_id)
    reminders = reminders_document(event.reminders)
    if not _worth_planning(prefs, reminders, start, False, False, now + horizon):
        return
    # The planners read the row without its attendee rows (`to_event(row)`), so their
    # reminders name no attendee: planned with them, a reminder sent before the next
    # replan listed them and one sent after did not (review RY1).
    plan = plan_reminders(
        dataclasses.replace(event, attendees=()) if event.attendees else event,
        event_id=event_id,
        leads=prefs.lead_times(reminders),
        channels=prefs.channels,
        now=now,
        horizon=horizon,
    )
    rows = [reminder_row(event_id, user_id, p, now) for p in plan if p.creatable]
    rows.sort(key=lambda r: str(r["dedupe_key"]))  # `replan_many`'s lock order
    deliveries.add_pending(session, rows)


def _live_and_upcoming(event: Event, now: datetime, starts_before: datetime) -> bool:
    """Whether the upcoming test of `calsync.store.upcoming` holds for the stored values
    of the exception `event` (not cancelled, starts before `starts_before`, not ended)."""
    return (
        event.status != EventStatus.CANCELLED
        and _stored_instant(event.start) < starts_before
        and _stored_instant(event.end) > now
    )


def _worth_planning(
    prefs: Preferences,
    reminders: Any,
    start: datetime,
    recurring: bool,
    pending: bool,
    latest: datetime,
) -> bool:
    """Whether an upcoming event (its ``events.reminders`` document and start) may have
    reminders to plan or replace by `latest`: a series, one with pending reminders, or
    one whose longest lead time (with a day's margin for all-day events in any zone)
    makes a reminder due by then."""
    if recurring or pending:
        return True
    leads = prefs.lead_times(reminders)
    return bool(leads) and start - timedelta(minutes=max(leads), days=1) <= latest


def _stored_instant(value: EventTime) -> datetime:
    """The instant the events table stores for `value` (a day: its midnight in UTC)."""
    if value.instant is not None:
        return value.instant
    assert value.day is not None
    return datetime.combine(value.day, time(), tzinfo=UTC)


def reschedule_many(
    session: Session,
    event_ids: Collection[uuid.UUID],
    *,
    new: Collection[uuid.UUID] = (),
    now: datetime | None = None,
    horizon: timedelta = DEFAULT_HORIZON,
    written: Mapping[uuid.UUID, Any] | None = None,
) -> None:
    """:func:`reschedule_reminders` for each of ``event_ids`` (changed or deleted rows,
    deleted ones included) and ``new`` (rows just inserted with fresh ids, which cannot
    have reminders yet), with the same outcome. Events with nothing to plan and no
    pending reminder (most of a big pull: far in the past or the future) cost only their
    share of a few batched queries. Call it after writing the rows. Does not commit.

    ``written``: rows of ``event_ids`` as the statement that wrote them returned them
    (`calsync.store.event_bulk_writes.update_events` with the same ``now`` and
    ``horizon``, IS1); they are not read again. Their ``upcoming`` may be stale for a
    series master whose exception the same statement wrote: the masters of every
    exception are read afresh below, as before.
    """
    now = now or utcnow()
    known = list(dict.fromkeys(event_ids))
    written = written or {}
    ids = [i for i in [*known, *new] if i not in written]
    found: dict[uuid.UUID, Any] = {}
    exceptions: dict[tuple[uuid.UUID, str], list[uuid.UUID]] = {}
    _sort_rows(written.values(), found, exceptions)
    _read_rows(session, ids, known, now, horizon, found, exceptions)
    gone = deliveries.events_with_pending_reminders(session, [i for i in known if i not in found])
    masters, orphans = _masters(session, exceptions)
    _read_rows(session, masters, masters, now, horizon, found, {})
    pending = gone | {r.id for r in found.values() if r.pending}
    upcoming_rows = [row for row in found.values() if row.upcoming]
    cache: dict[uuid.UUID, tuple[Preferences, str]] = {}
    for row in upcoming_rows:  # the owners' preferences came with the rows (IH3)
        if row.user_id not in cache:
            cache[row.user_id] = (of_joined(row), row.user_timezone or "UTC")
    latest = now + horizon
    rows: list[Any] = []
    for row in upcoming_rows:  # the others are replanned alone below if they have pending
        prefs = cache[row.user_id][0]
        if _worth_planning(
            prefs, row.reminders, row.start_time, row.is_recurring, row.pending, latest
        ):
            rows.append(row)  # else nothing is due within the horizon and nothing is
            # there to replace
    replan_many(session, rows, cache, now=now, horizon=horizon, pending=pending)
    upcoming = {row.id for row in found.values() if row.upcoming}
    for event_id in sorted((pending - upcoming) | set(orphans)):
        reschedule_reminders(session, event_id, now=now, horizon=horizon)


def _read_rows(
    session: Session,
    event_ids: Sequence[uuid.UUID],
    known: Sequence[uuid.UUID],
    now: datetime,
    horizon: timedelta,
    found: dict[uuid.UUID, Any],
    exceptions: dict[tuple[uuid.UUID, str], list[uuid.UUID]],
) -> None:
    """In one query, the rows of ``event_ids`` that are upcoming (they may have reminders
    to plan), exceptions (sorted into ``exceptions`` by calendar and series) or among
    ``known`` (ids that may have reminders), into ``found``: the columns :func:`to_event`
    reads, the owner's zone, and whether the row is upcoming and has pending reminders
    (the owners' preferences are read after, only for upcoming rows).
    Read afresh: the caller may have changed the rows with Core statements."""
    if event_ids:
        rows = upcoming.replanning_rows(session, event_ids, known, now, latest_start(now, horizon))
        _sort_rows(rows, found, exceptions)


def _sort_rows(
    rows: Iterable[Any],
    found: dict[uuid.UUID, Any],
    exceptions: dict[tuple[uuid.UUID, str], list[uuid.UUID]],
) -> None:
    """Exceptions into ``exceptions`` by calendar and series, other rows into ``found``."""
    for row in rows:
        if row.recurring_event_id is not None:
            key = (row.calendar_id, row.recurring_event_id)
            exceptions.setdefault(key, []).append(row.id)
        else:
            found[row.id] = row


def _masters(
    session: Session, exceptions: dict[tuple[uuid.UUID, str], list[uuid.UUID]]
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """The local ids of the series masters of ``exceptions`` (by calendar and series id),
    and the exceptions whose master is not stored (planned on their own)."""
    by_calendar: dict[uuid.UUID, set[str]] = {}
    for calendar_id, series_id in exceptions:
        by_calendar.setdefault(calendar_id, set()).add(series_id)
    masters: list[uuid.UUID] = []
    orphans: list[uuid.UUID] = []
    for calendar_id, series_ids in by_calendar.items():
        found: set[str] = set()
        for master_id, google_id in upcoming.masters_of(session, calendar_id, sorted(series_ids)):
            masters.append(master_id)
            found.add(google_id)
        for series_id in series_ids - found:
            orphans.extend(exceptions[(calendar_id, series_id)])
    return masters, orphans
