"""The pull's steps as they were before decisions IH1 and IH3, for `pull_costs --ih-parts`
to time against now in one process (each swapped in by a context manager)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from calsync.notify import on_event_change, reminders
from calsync.notify.preferences import load_many
from calsync.store import deliveries, upcoming
from calsync.store.tables import utcnow
from calsync.sync import reconcile

_events = upcoming._events


def _where_before_ih1(query: sa.Select[Any]) -> sa.Select[Any]:
    """`query` (`upcoming`'s rows) with the upcoming test as a column and, as before IH1,
    in the ``WHERE`` clause too."""
    return query.add_columns(upcoming.UPCOMING.label("upcoming")).where(
        _events.c.id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(_events.c.id.type))),
        sa.or_(
            upcoming.UPCOMING,
            _events.c.recurring_event_id.is_not(None),
            _events.c.id
            == sa.any_(sa.bindparam("known", type_=postgresql.ARRAY(_events.c.id.type))),
        ),
    )


#: `upcoming._PG_ROWS_QUERY` before IH1 (the test twice), with the preferences (IH3).
_PG_ROWS_QUERY: Final = _where_before_ih1(upcoming._ROWS_QUERY)
#: ... and before IH3 too: no preferences joined.
_PG_ROWS_QUERY_BEFORE_IH3: Final = _where_before_ih1(
    sa.select(
        *upcoming._ROW_COLUMNS,
        upcoming._users.c.timezone.label("user_timezone"),
        upcoming._HAS_PENDING.label("pending"),
    ).select_from(_events.join(upcoming._users, upcoming._users.c.id == _events.c.user_id))
)
_statement = _PG_ROWS_QUERY


def _replanning_rows(
    session: Session,
    event_ids: Sequence[uuid.UUID],
    known: Sequence[uuid.UUID],
    now: datetime,
    latest_start: datetime,
) -> Iterator[Any]:
    """`upcoming.replanning_rows` on PostgreSQL before IH1."""
    params = {
        "ids": list(event_ids),
        "known": list(known),
        "upcoming_now": now,
        "upcoming_latest_start": latest_start,
    }
    yield from session.execute(_statement, params)


def _reschedule_many(
    session: Session,
    event_ids: Collection[uuid.UUID],
    *,
    new: Collection[uuid.UUID] = (),
    now: datetime | None = None,
    horizon: timedelta = reminders.DEFAULT_HORIZON,
) -> None:
    """`on_event_change.reschedule_many` before IH3: the owners' preferences read by a
    statement of their own (`load_many`)."""
    now = now or utcnow()
    known = list(dict.fromkeys(event_ids))
    ids = [*known, *new]
    found: dict[uuid.UUID, Any] = {}
    exceptions: dict[tuple[uuid.UUID, str], list[uuid.UUID]] = {}
    on_event_change._read_rows(session, ids, known, now, horizon, found, exceptions)
    gone = deliveries.events_with_pending_reminders(session, [i for i in known if i not in found])
    masters, orphans = on_event_change._masters(session, exceptions)
    on_event_change._read_rows(session, masters, masters, now, horizon, found, {})
    pending = gone | {r.id for r in found.values() if r.pending}
    upcoming_rows = [row for row in found.values() if row.upcoming]
    stored = load_many(session, {row.user_id for row in upcoming_rows})
    cache = {
        row.user_id: (stored[row.user_id], row.user_timezone or "UTC") for row in upcoming_rows
    }
    latest = now + horizon
    rows = [
        row
        for row in upcoming_rows
        if on_event_change._worth_planning(
            cache[row.user_id][0],
            row.reminders,
            row.start_time,
            row.is_recurring,
            row.pending,
            latest,
        )
    ]
    reminders.replan_many(session, rows, cache, now=now, horizon=horizon, pending=pending)
    upcoming_ids = {row.id for row in found.values() if row.upcoming}
    for event_id in sorted((pending - upcoming_ids) | set(orphans)):
        reminders.reschedule_reminders(session, event_id, now=now, horizon=horizon)


@contextmanager
def replanning_before_ih1() -> Iterator[None]:
    now = upcoming.replanning_rows
    upcoming.replanning_rows = _replanning_rows
    try:
        yield
    finally:
        upcoming.replanning_rows = now


@contextmanager
def preferences_before_ih3() -> Iterator[None]:
    """The reminders' step as before IH3 (the rows' statement as before IH1 too: the
    preferences' columns are not in it)."""
    global _statement
    now = reconcile.reschedule_many
    reconcile.reschedule_many = _reschedule_many
    _statement = _PG_ROWS_QUERY_BEFORE_IH3
    try:
        with replanning_before_ih1():
            yield
    finally:
        reconcile.reschedule_many = now
        _statement = _PG_ROWS_QUERY
