"""The local rows a pull's listing is reconciled with: read locked, and deleted.

The statements of `calsync.sync.reconcile`. Rows are Core rows of `ROW_COLUMNS` (what
`calsync.store.events.to_event` and the merge read, without the base version, which only
a merge or a verifying listing reads, one query each). Every read takes its rows
(PostgreSQL ``FOR NO KEY UPDATE``; SQLite's one writer is the pull's transaction
already), so an API edit committed between this read and the pull's write of the row
cannot be overwritten: it waits, and applies on top of what the pull wrote (it reads the
row again under its own lock, `event_changes.lock_stored`). Rows are taken in id order,
so two pulls' locks, or a pull's and a split's, meet in one order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from calsync.store.events import any_of, stored_table_columns
from calsync.store.tables import Event as EventRow

__all__ = [
    "ROW_COLUMNS",
    "base_version",
    "base_versions",
    "calendar_rows",
    "cancelled_exceptions_of_masters",
    "delete_ids",
    "delete_series",
    "rows_by_google_ids",
    "rows_by_ids",
]

_events = cast(sa.Table, EventRow.__table__)

#: The columns of the local rows a listing is reconciled with: what `to_event` and the
#: merge read, but not the base version (read only by a merge, see `base_version`).
ROW_COLUMNS: Final = stored_table_columns(without=("base_version",))
#: The rows, taken (see the module docstring) in id order.
_ROWS: Final = sa.select(*ROW_COLUMNS).order_by(_events.c.id).with_for_update(key_share=True)
#: The rows of an incremental listing on PostgreSQL, by calendar and Google ids (built
#: once; the ids are one array parameter).
_PG_ROWS_BY_GOOGLE_ID: Final = _ROWS.where(
    _events.c.calendar_id == sa.bindparam("calendar_id", type_=_events.c.calendar_id.type),
    _events.c.google_event_id
    == sa.any_(sa.bindparam("google_ids", type_=postgresql.ARRAY(_events.c.google_event_id.type))),
)


def calendar_rows(session: Session, calendar_id: uuid.UUID) -> list[sa.Row[Any]]:
    """Every row of the calendar, taken, each with ``has_base``: whether the row was on
    Google (it has a base version, a document or its own row's). For a full listing."""
    return list(
        session.execute(
            _ROWS.add_columns(_events.c.base_version.is_not(None).label("has_base")).where(
                _events.c.calendar_id == calendar_id
            )
        )
    )


def rows_by_google_ids(
    session: Session, calendar_id: uuid.UUID, google_ids: Sequence[str]
) -> dict[str, sa.Row[Any]]:
    """The calendar's rows whose Google ids are among `google_ids`, taken, by Google id."""
    found: dict[str, sa.Row[Any]] = {}
    if session.get_bind().dialect.name == "postgresql":
        if google_ids:
            parameters = {"calendar_id": calendar_id, "google_ids": list(google_ids)}
            # a read: on the session's connection, without the ORM's execution layer
            # (its hooks note writes only; decision IU4)
            connection = session.connection()
            for row in connection.execute(_PG_ROWS_BY_GOOGLE_ID, parameters):
                found[row.google_event_id] = row
        return found
    for condition in any_of(session, _events.c.google_event_id, google_ids):
        for row in session.execute(_ROWS.where(_events.c.calendar_id == calendar_id, condition)):
            if row.google_event_id is not None:
                found[row.google_event_id] = row
    return found


def live_exception_rows(
    session: Session, calendar_id: uuid.UUID, series_ids: Sequence[str]
) -> list[sa.Row[Any]]:
    """The calendar's live exception rows (not cancelled, not deleted locally) of the
    series whose masters' Google ids are `series_ids`, taken."""
    found: list[sa.Row[Any]] = []
    for condition in any_of(session, _events.c.recurring_event_id, series_ids):
        found.extend(
            session.execute(
                _ROWS.where(
                    _events.c.calendar_id == calendar_id,
                    condition,
                    _events.c.status != "cancelled",
                    _events.c.deleted_at.is_(None),
                )
            )
        )
    return found


def cancelled_exceptions_of_masters(
    session: Session, calendar_id: uuid.UUID, series_ids: Sequence[str]
) -> tuple[dict[str, sa.Row[Any]], list[sa.Row[Any]]]:
    """The calendar's master rows whose Google ids are `series_ids` (by Google id), and
    the ``synced`` cancelled exception rows of those masters (not deleted locally): a
    plain read, nothing taken (for the pull's look before it stores, decision JJ2).
    The exceptions are read only when a master is found."""
    masters: dict[str, sa.Row[Any]] = {}
    plain = sa.select(*ROW_COLUMNS)
    for condition in any_of(session, _events.c.google_event_id, series_ids):
        for row in session.execute(plain.where(_events.c.calendar_id == calendar_id, condition)):
            masters[row.google_event_id] = row
    if not masters:
        return masters, []
    found: list[sa.Row[Any]] = []
    for condition in any_of(session, _events.c.recurring_event_id, list(masters)):
        found.extend(
            session.execute(
                plain.where(
                    _events.c.calendar_id == calendar_id,
                    condition,
                    _events.c.status == "cancelled",
                    _events.c.sync_state == "synced",
                    _events.c.deleted_at.is_(None),
                )
            )
        )
    return masters, found


def rows_by_ids(
    session: Session, event_ids: Sequence[uuid.UUID], *, calendar_id: uuid.UUID | None = None
) -> Iterator[sa.Row[Any]]:
    """The rows whose ids are among `event_ids` (of the calendar `calendar_id` only, when
    given), taken."""
    for condition in any_of(session, _events.c.id, event_ids):
        if calendar_id is None:
            yield from session.execute(_ROWS.where(condition))
        else:
            yield from session.execute(_ROWS.where(_events.c.calendar_id == calendar_id, condition))


def base_versions(
    session: Session, event_ids: Sequence[uuid.UUID]
) -> Iterator[tuple[uuid.UUID, dict[str, Any] | None]]:
    """(id, stored base version) of each row whose id is among `event_ids` (the empty
    document for a row that is its own base: `calsync.store.bases`)."""
    for condition in any_of(session, _events.c.id, event_ids):
        for row in session.execute(
            sa.select(_events.c.id, _events.c.base_version).where(condition)
        ):
            yield row.id, row.base_version


def base_version(session: Session, event_id: uuid.UUID) -> dict[str, Any] | None:
    """The stored base version of one row (what a merge needs; the rows leave it out):
    the empty document for a row that is its own base (`calsync.store.bases`)."""
    return session.scalar(sa.select(EventRow.base_version).where(EventRow.id == event_id))


def delete_series(
    session: Session, calendar_id: uuid.UUID, google_ids: Sequence[str]
) -> list[uuid.UUID]:
    """Delete the calendar's rows whose Google ids are among `google_ids` (cancelled
    masters and single events) and the exceptions of those masters. Returns the local
    ids of the deleted rows."""
    deleted: list[uuid.UUID] = []
    for masters, series in zip(
        any_of(session, _events.c.google_event_id, google_ids),
        any_of(session, _events.c.recurring_event_id, google_ids),
        strict=True,
    ):
        result = session.execute(
            sa.delete(_events)
            .where(_events.c.calendar_id == calendar_id, sa.or_(masters, series))
            .returning(_events.c.id)
        )
        deleted.extend(result.scalars())
    return deleted


def delete_ids(session: Session, event_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Delete the rows whose ids are `event_ids`; returns `event_ids`."""
    for condition in any_of(session, _events.c.id, event_ids):
        session.execute(sa.delete(_events).where(condition))
    return list(event_ids)
