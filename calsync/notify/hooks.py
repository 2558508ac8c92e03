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

import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from calsync.domain.models import Event, EventStatus, EventTime
from calsync.notify.changes import EventChange, event_changed, events_changed
from calsync.notify.preferences import Preferences, load_many, load_preferences
from calsync.notify.reminders import (
    DEFAULT_HORIZON,
    UPCOMING,
    replan_many,
    reschedule_reminders,
    upcoming_params,
    upcoming_where,
)
from calsync.store.events import any_of, reminders_document, stored_table_columns
from calsync.store.tables import Event as EventRow
from calsync.store.tables import NotificationDelivery, User, utcnow

__all__ = [
    "EventChange",
    "event_changed",
    "events_changed",
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
    """The ids of just-inserted events of `user_id` that :func:`reschedule_many` would
    do anything for, found from the values stored and the user's preferences (read
    once, and only if an inserted event is upcoming): exceptions of a series (their
    master is replanned), series and upcoming events whose reminders may be due within
    the horizon (`_worth_planning`, the test `reschedule_many` applies to the rows it
    reads). Passing only these as its ``new`` has the outcome of passing all of them
    (new rows have no pending reminders), so a big first sync does not read back every
    new row to find the few that need reminders. Call it just before `reschedule_many`,
    in the same transaction (both then see the same preferences).
    """
    latest_start = upcoming_params(now, horizon)["upcoming_latest_start"]
    latest = now + horizon
    prefs: Preferences | None = None
    found = []
    for event_id, event in inserted:
        if event.recurring_event_id is not None:
            found.append(event_id)
            continue
        start = _stored_instant(event.start)
        if (
            event.status == EventStatus.CANCELLED
            or start >= latest_start
            or (not event.is_recurring and _stored_instant(event.end) <= now)
        ):
            continue  # not upcoming: its query would not read it
        if prefs is None:
            prefs = load_preferences(session, user_id)
        reminders = reminders_document(event.reminders)
        if _worth_planning(prefs, reminders, start, event.is_recurring, False, latest):
            found.append(event_id)
    return found


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
) -> None:
    """:func:`reschedule_reminders` for each of ``event_ids`` (changed or deleted rows,
    deleted ones included) and ``new`` (rows just inserted with fresh ids, which cannot
    have reminders yet), with the same outcome. Events with nothing to plan and no
    pending reminder (most of a big pull: far in the past or the future) cost only their
    share of a few batched queries. Call it after writing the rows. Does not commit.
    """
    now = now or utcnow()
    known = list(dict.fromkeys(event_ids))
    ids = [*known, *new]
    found: dict[uuid.UUID, Any] = {}
    exceptions: dict[tuple[uuid.UUID, str], list[uuid.UUID]] = {}
    _read_rows(session, ids, known, now, horizon, found, exceptions)
    gone = _with_pending_reminders(session, [i for i in known if i not in found])
    masters, orphans = _masters(session, exceptions)
    _read_rows(session, masters, masters, now, horizon, found, {})
    pending = gone | {r.id for r in found.values() if r.pending}
    upcoming_rows = [row for row in found.values() if row.upcoming]
    stored = load_many(session, {row.user_id for row in upcoming_rows})
    cache = {
        row.user_id: (stored[row.user_id], row.user_timezone or "UTC") for row in upcoming_rows
    }
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


_events = cast(sa.Table, EventRow.__table__)
_users = cast(sa.Table, User.__table__)
_deliveries = cast(sa.Table, NotificationDelivery.__table__)
#: The columns `to_event` and `replan_many` read, as table columns (the statements below
#: are plain Core: no ORM compilation per execution).
_ROW_COLUMNS: Final = stored_table_columns(without=("base_version", "conflict"))


_HAS_PENDING: Final = (
    sa.select(_deliveries.c.id)
    .where(
        _deliveries.c.event_id == _events.c.id,
        _deliveries.c.kind == "reminder",
        _deliveries.c.status == "pending",
    )
    .exists()
)
#: The columns of `_read_rows`, built once (only the conditions vary per call).
_ROWS_QUERY: Final = sa.select(
    *_ROW_COLUMNS,
    _users.c.timezone.label("user_timezone"),
    _HAS_PENDING.label("pending"),
).select_from(_events.join(_users, _users.c.id == _events.c.user_id))


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
    if not event_ids:
        return
    for row in _rows(session, event_ids, known, now, horizon):
        if row.recurring_event_id is not None:
            key = (row.calendar_id, row.recurring_event_id)
            exceptions.setdefault(key, []).append(row.id)
        else:
            found[row.id] = row


#: `_rows` on PostgreSQL: one statement, built once (its compiled form and cache key are
#: reused), with the ids as array parameters.
_PG_ROWS_QUERY: Final = _ROWS_QUERY.add_columns(UPCOMING.label("upcoming")).where(
    _events.c.id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(_events.c.id.type))),
    sa.or_(
        UPCOMING,
        _events.c.recurring_event_id.is_not(None),
        _events.c.id == sa.any_(sa.bindparam("known", type_=postgresql.ARRAY(_events.c.id.type))),
    ),
)


def _rows(
    session: Session,
    event_ids: Sequence[uuid.UUID],
    known: Sequence[uuid.UUID],
    now: datetime,
    horizon: timedelta,
) -> Iterator[Any]:
    """The result rows of `_read_rows` (see there)."""
    if session.get_bind().dialect.name == "postgresql":
        params = {"ids": list(event_ids), "known": list(known), **upcoming_params(now, horizon)}
        yield from session.execute(_PG_ROWS_QUERY, params)
        return
    upcoming = upcoming_where(now, upcoming_params(now, horizon)["upcoming_latest_start"])
    for match in any_of(session, _events.c.id, event_ids):
        wanted = [upcoming, _events.c.recurring_event_id.is_not(None)]
        wanted.extend(any_of(session, _events.c.id, known))
        query = _ROWS_QUERY.add_columns(upcoming.label("upcoming")).where(match, sa.or_(*wanted))
        yield from session.execute(query)


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
        for match in any_of(session, EventRow.google_event_id, sorted(series_ids)):
            for master_id, google_id in session.execute(
                sa.select(EventRow.id, EventRow.google_event_id).where(
                    EventRow.calendar_id == calendar_id, match
                )
            ):
                masters.append(master_id)
                found.add(str(google_id))
        for series_id in series_ids - found:
            orphans.extend(exceptions[(calendar_id, series_id)])
    return masters, orphans


def _with_pending_reminders(session: Session, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``event_ids`` have pending reminders."""
    found: set[uuid.UUID] = set()
    for match in any_of(session, NotificationDelivery.event_id, event_ids):
        found.update(
            session.scalars(
                sa.select(NotificationDelivery.event_id)
                .where(
                    match,
                    NotificationDelivery.kind == "reminder",
                    NotificationDelivery.status == "pending",
                )
                .distinct()
            )
        )
    found.discard(None)
    return found
