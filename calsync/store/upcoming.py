"""The event rows reminders are planned for: single events and series masters that may
have a reminder due soon (*upcoming*), their exceptions and their owners' zones and
preferences. Read-only; `calsync.notify.reminders` and `calsync.notify.on_event_change` plan.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from calsync.domain.models import EventStatus
from calsync.store.events import any_of, stored_table_columns
from calsync.store.tables import Event as EventRow
from calsync.store.tables import NotificationDelivery, NotificationPreference, User

__all__ = [
    "LATEST_SLOT",
    "NOW_SLOT",
    "PREFERENCE_COLUMNS",
    "UPCOMING",
    "event",
    "exception_rows",
    "exceptions_of_series",
    "master_of",
    "masters_of",
    "page",
    "replanning_returning",
    "replanning_rows",
    "upcoming_of_user",
    "upcoming_where",
    "user_timezone",
]

_events = cast(sa.Table, EventRow.__table__)
_users = cast(sa.Table, User.__table__)
_deliveries = cast(sa.Table, NotificationDelivery.__table__)


def upcoming_where(
    now: datetime | sa.BindParameter[datetime], latest_start: datetime | sa.BindParameter[datetime]
) -> sa.ColumnElement[bool]:
    """Single events and series masters, neither deleted nor cancelled, that start before
    `latest_start` and have not ended by `now` (a series: its recurrence has not);
    series masters with a live exception that does (an instance moved past the end of
    its series, or before its start: the planner plans it, IE1); and such exceptions
    whose master is not stored (an orphan, planned on its own, IE3) (values, or
    parameters for a statement built once). Usable in Core and ORM statements."""
    events = _events
    starts_and_ends = sa.and_(events.c.start_time < latest_start, events.c.end_time > now)
    return sa.and_(
        events.c.deleted_at.is_(None),
        events.c.status != EventStatus.CANCELLED.value,
        sa.or_(
            sa.and_(
                events.c.recurring_event_id.is_(None),
                sa.or_(
                    sa.and_(
                        events.c.start_time < latest_start,
                        sa.or_(
                            sa.and_(events.c.is_recurring.is_(False), events.c.end_time > now),
                            sa.and_(
                                events.c.is_recurring.is_(True),
                                sa.or_(
                                    events.c.recurrence_end.is_(None),
                                    events.c.recurrence_end > now,
                                ),
                            ),
                        ),
                    ),
                    # Last: probed only for the series the test above leaves out.
                    sa.and_(
                        events.c.is_recurring.is_(True), _upcoming_exception(now, latest_start)
                    ),
                ),
            ),
            sa.and_(events.c.recurring_event_id.is_not(None), starts_and_ends, _orphan()),
        ),
    )


def _orphan() -> sa.ColumnElement[bool]:
    """Whether the outer ``events`` row (an exception) has no stored master in its
    calendar (one probe of the unique (calendar, Google id) index)."""
    master = _events.alias("upcoming_master")
    return (
        sa.select(master.c.id)
        .where(
            master.c.calendar_id == _events.c.calendar_id,
            master.c.google_event_id == _events.c.recurring_event_id,
        )
        .limit(1)
        .scalar_subquery()
        .is_(None)
    )


def _upcoming_exception(
    now: datetime | sa.BindParameter[datetime], latest_start: datetime | sa.BindParameter[datetime]
) -> sa.ColumnElement[bool]:
    """Whether the outer ``events`` row (a master) has a live exception that starts before
    `latest_start` and has not ended by `now`. A scalar subquery (one probe of the
    (calendar, series) index per master asked, as `event_queries` does, not an EXISTS
    PostgreSQL may answer by hashing every exception). Series are named by their Google
    id, as `event_queries` matches them: every row has one, a series created in calsync
    from its creation, before any push (decisions E6, HE3; IJ1)."""
    exception = _events.alias("upcoming_exception")
    return (
        sa.select(exception.c.id)
        .where(
            exception.c.calendar_id == _events.c.calendar_id,
            exception.c.recurring_event_id == _events.c.google_event_id,
            exception.c.deleted_at.is_(None),
            exception.c.status != EventStatus.CANCELLED.value,
            exception.c.start_time < latest_start,
            exception.c.end_time > now,
        )
        .limit(1)
        .scalar_subquery()
        .is_not(None)
    )


#: `upcoming_where` with the parameters ``upcoming_now`` and ``upcoming_latest_start``,
#: for statements built once.
UPCOMING: Final = upcoming_where(
    sa.bindparam("upcoming_now", type_=_events.c.end_time.type),
    sa.bindparam("upcoming_latest_start", type_=_events.c.start_time.type),
)

#: The columns of an event row that `to_event` and the planner read (not the base
#: version and conflict documents, which can be large).
_EVENT_COLUMNS: Final = tuple(
    getattr(EventRow, attribute.key)
    for attribute in sa.inspect(EventRow).column_attrs
    if attribute.key not in ("base_version", "conflict")
)
#: Event rows with their owner's zone and stored preferences (conditions added per use).
_UPCOMING_ROWS: Final = (
    sa.select(*_EVENT_COLUMNS, User.timezone.label("user_timezone"), NotificationPreference)
    .join(User, User.id == EventRow.user_id)
    .outerjoin(NotificationPreference, NotificationPreference.user_id == EventRow.user_id)
)


def event(session: Session, event_id: uuid.UUID) -> EventRow | None:
    """One event row (in the session's identity map once read)."""
    return session.get(EventRow, event_id)


def master_of(session: Session, exception: EventRow) -> EventRow | None:
    """The series master of an exception, if it is stored."""
    return session.scalar(
        sa.select(EventRow).where(
            EventRow.calendar_id == exception.calendar_id,
            EventRow.google_event_id == exception.recurring_event_id,
        )
    )


def exception_rows(session: Session, master: EventRow) -> Sequence[EventRow]:
    """The stored exceptions of a series master (deleted ones included)."""
    series_id = master.google_event_id or str(master.id)
    return session.scalars(
        sa.select(EventRow).where(
            EventRow.calendar_id == master.calendar_id,
            EventRow.recurring_event_id == series_id,
        )
    ).all()


def exceptions_of_series(
    session: Session, series_ids: Sequence[str], calendars: Sequence[uuid.UUID]
) -> Iterator[Any]:
    """The rows (planner columns) of the exceptions naming one of `series_ids` in one of
    `calendars` (deleted ones included), one query per thousand series; the caller keeps
    the (calendar, series) pairs it asked for."""
    for match in any_of(session, EventRow.recurring_event_id, series_ids):
        in_calendars = sa.or_(*any_of(session, EventRow.calendar_id, calendars))
        yield from session.execute(sa.select(*_EVENT_COLUMNS).where(match, in_calendars))


def upcoming_of_user(
    session: Session, user_id: uuid.UUID, now: datetime, latest_start: datetime
) -> Sequence[EventRow]:
    """The user's upcoming rows (`upcoming_where`)."""
    return session.scalars(
        sa.select(EventRow).where(upcoming_where(now, latest_start), EventRow.user_id == user_id)
    ).all()


def page(
    session: Session,
    now: datetime,
    latest_start: datetime,
    *,
    after: uuid.UUID | None = None,
    limit: int | None = None,
) -> Sequence[Any]:
    """Upcoming rows of every user (planner columns, ``user_timezone`` and the owner's
    ``NotificationPreference`` or None), in id order, those after the id `after` only, at
    most `limit` (keyset: an index range scan whatever the table's size)."""
    query = _UPCOMING_ROWS.where(upcoming_where(now, latest_start))
    if after is not None:
        query = query.where(EventRow.id > after)
    return session.execute(query.order_by(EventRow.id).limit(limit)).all()


def user_timezone(session: Session, user_id: uuid.UUID) -> str | None:
    """The user's own zone (None: not set, or no such user)."""
    return session.scalar(sa.select(User.timezone).where(User.id == user_id))


#: The columns `to_event` and the batched replanning read, as table columns (plain Core:
#: no ORM compilation per execution).
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
_preferences = cast(sa.Table, NotificationPreference.__table__)
#: The columns of the owner's preferences in a row of `replanning_rows`, each labelled
#: ``preference_<column>`` (`calsync.notify.preferences.of_joined` reads them).
PREFERENCE_COLUMNS: Final = (
    "reminder_minutes",
    "channels",
    "webhook_url",
    "change_notices",
    "quiet_hours",
)
#: The columns of `replanning_rows`, built once (only the conditions vary per call),
#: with the owner's preferences, joined: the planner needs them for the upcoming rows,
#: and a statement of their own cost a pull whose changes are upcoming ~0.5 ms (IH3).
_ROWS_QUERY: Final = sa.select(
    *_ROW_COLUMNS,
    _users.c.timezone.label("user_timezone"),
    _HAS_PENDING.label("pending"),
    _preferences.c.user_id.is_not(None).label("has_preferences"),
    *(_preferences.c[name].label(f"preference_{name}") for name in PREFERENCE_COLUMNS),
).select_from(
    _events.join(_users, _users.c.id == _events.c.user_id).outerjoin(
        _preferences, _preferences.c.user_id == _events.c.user_id
    )
)
#: `replanning_rows` on PostgreSQL: one statement, built once (its compiled form and
#: cache key are reused), with the ids as array parameters. `UPCOMING` is in it once,
#: as a column: the rows of `ids` that are neither upcoming, exceptions nor ``known``
#: are left out by `replanning_rows` as they arrive (IH1). In the ``WHERE`` clause too,
#: the text was 4.5 KB, above the 4 KiB up to which psycopg keeps a statement's parsed
#: form (it parsed it again at every execution, ~0.15 ms), and PostgreSQL evaluated the
#: test, with its two subqueries, twice per row.
_PG_ROWS_QUERY: Final = _ROWS_QUERY.add_columns(UPCOMING.label("upcoming")).where(
    _events.c.id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(_events.c.id.type)))
)


def replanning_rows(
    session: Session,
    event_ids: Sequence[uuid.UUID],
    known: Sequence[uuid.UUID],
    now: datetime,
    latest_start: datetime,
) -> Iterator[Any]:
    """In one query (per chunk on SQLite), the rows of `event_ids` that are upcoming,
    exceptions, or among `known`: the columns `to_event` reads, the owner's zone
    (``user_timezone``) and preferences (``has_preferences``: whether the owner has a
    row; its `PREFERENCE_COLUMNS`), whether the row is ``upcoming`` and whether it has
    ``pending`` reminders."""
    if session.get_bind().dialect.name == "postgresql":
        params = {
            "ids": list(event_ids),
            "upcoming_now": now,
            "upcoming_latest_start": latest_start,
        }
        asked = set(known)
        for row in session.execute(_PG_ROWS_QUERY, params):
            if row.upcoming or row.recurring_event_id is not None or row.id in asked:
                yield row
        return
    upcoming = upcoming_where(now, latest_start)
    for match in any_of(session, _events.c.id, event_ids):
        wanted = [upcoming, _events.c.recurring_event_id.is_not(None)]
        wanted.extend(any_of(session, _events.c.id, known))
        query = _ROWS_QUERY.add_columns(upcoming.label("upcoming")).where(match, sa.or_(*wanted))
        yield from session.execute(query)


def masters_of(
    session: Session, calendar_id: uuid.UUID, series_ids: Sequence[str]
) -> Iterator[tuple[uuid.UUID, str]]:
    """The local and Google ids of the stored series masters among `series_ids` (Google
    ids) in the calendar."""
    for match in any_of(session, EventRow.google_event_id, series_ids):
        for master_id, google_id in session.execute(
            sa.select(EventRow.id, EventRow.google_event_id).where(
                EventRow.calendar_id == calendar_id, match
            )
        ):
            yield master_id, str(google_id)


#: Placeholders `replanning_returning` leaves for the instants of the upcoming test.
NOW_SLOT: Final = "__upcoming_now__"
LATEST_SLOT: Final = "__upcoming_latest_start__"


def replanning_returning() -> str:
    """The columns of `replanning_rows`' PostgreSQL rows (``upcoming`` included) as SQL
    text for an ``UPDATE events ... FROM users LEFT OUTER JOIN notification_preferences
    ON notification_preferences.user_id = users.id ... WHERE users.id = events.user_id``
    to return (IS1), with `NOW_SLOT` and `LATEST_SLOT` where the test's instants go
    (``timestamptz`` parameters). Its subqueries read the statement's snapshot: an
    exception written by the same statement is seen as it was, so ``upcoming`` of a
    master may be stale; `calsync.notify.on_event_change.reschedule_many` re-reads the
    masters of every exception it is handed, which covers it."""
    # text in the parameters' place (the types name what they stand for, not checked)
    now = cast(sa.BindParameter[datetime], sa.literal_column(NOW_SLOT))
    latest = cast(sa.BindParameter[datetime], sa.literal_column(LATEST_SLOT))
    query = _ROWS_QUERY.add_columns(upcoming_where(now, latest).label("upcoming"))
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    text = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    return text.removeprefix("SELECT ")[: text.rindex("\nFROM ") - len("SELECT ")]
