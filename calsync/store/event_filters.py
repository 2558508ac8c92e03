"""What a list of stored events selects, as SQL conditions: the filter (`EventFilter`),
the shape of its statement (`FilterShape`) and the conditions and bound values of that
shape (`filter_conditions`, `filter_values`).

A statement depends on its shape alone (the values are bound parameters), so the hot
list statements of `calsync.store.event_queries` are built once per shape. Time ranges
are half-open ``[start, end)`` with the days ``[first, end)`` they cover for the viewer
(`calsync.domain.windows`); how each kind of row is compared with them is said in
`window_conditions`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from calsync.domain.windows import DayRange
from calsync.store.tables import Event as EventRow

__all__ = [
    "EventFilter",
    "FilterShape",
    "Kind",
    "filter_conditions",
    "filter_shape",
    "filter_values",
    "midnight",
    "window_conditions",
]


class Kind(StrEnum):
    """Which rows a list selects."""

    ALL = "all"  # singles, masters and live exceptions
    SINGLE = "single"  # neither a master nor an exception
    RECURRING = "recurring"  # masters and live exceptions
    MASTER = "master"  # series masters only
    EXCEPTION = "exception"  # live exceptions only


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFilter:
    """What a list selects; `None` fields do not filter.

    A window is `start`, `end` and `days` together: the instants timed events are
    compared with and the days, as the viewer sees them, all-day events are compared
    with (`calsync.domain.windows`). Raises `ValueError` for a part of a window.
    """

    user_id: uuid.UUID
    start: datetime | None = None
    end: datetime | None = None
    days: DayRange | None = None
    category: str | None = None
    calendar_id: uuid.UUID | None = None
    kind: Kind = Kind.ALL

    def __post_init__(self) -> None:
        if len({self.start is None, self.end is None, self.days is None}) != 1:
            raise ValueError("a window is start, end and days together")


@dataclass(frozen=True, slots=True)
class FilterShape:
    """Which conditions a list's statement has: the statement depends on this alone (the
    values are bound parameters, `filter_values`), so hot statements are built once."""

    kind: Kind
    category: bool
    calendar: bool
    window: bool
    after: bool


def filter_shape(spec: EventFilter, after: tuple[datetime, uuid.UUID] | None = None) -> FilterShape:
    return FilterShape(
        kind=spec.kind,
        category=spec.category is not None,
        calendar=spec.calendar_id is not None,
        window=spec.start is not None and spec.end is not None,
        after=after is not None,
    )


def filter_values(
    spec: EventFilter, after: tuple[datetime, uuid.UUID] | None = None
) -> dict[str, Any]:
    """The bound values of the conditions `filter_conditions(filter_shape(spec, after))` names."""
    values: dict[str, Any] = {"user_id": spec.user_id}
    if spec.category is not None:
        values["category"] = spec.category
    if spec.calendar_id is not None:
        values["calendar_id"] = spec.calendar_id
    if spec.start is not None and spec.end is not None and spec.days is not None:
        day_end = midnight(spec.days.end)
        values["window_start"] = spec.start
        values["window_end"] = spec.end
        values["day_start"] = midnight(spec.days.first)
        values["day_end"] = day_end
        values["wide_end"] = max(spec.end, day_end)
    if after is not None:
        values["after_at"], values["after_id"] = after
    return values


def midnight(day: date) -> datetime:
    """The stored instant of an all-day date (midnight UTC)."""
    return datetime.combine(day, time(), tzinfo=UTC)


@lru_cache(maxsize=64)
def filter_conditions(shape: FilterShape) -> tuple[sa.ColumnElement[bool], ...]:
    """The WHERE of a list of this shape, on bound parameters named as in `filter_values`."""
    row = EventRow
    found: list[sa.ColumnElement[bool]] = [
        row.user_id == sa.bindparam("user_id"),
        row.deleted_at.is_(None),
        row.status != "cancelled",
    ]
    if shape.category:
        found.append(row.category == sa.bindparam("category"))
    if shape.calendar:
        found.append(row.calendar_id == sa.bindparam("calendar_id"))
    master = row.is_recurring.is_(True)
    exception = row.recurring_event_id.is_not(None)
    if shape.kind is Kind.SINGLE:
        found += [row.is_recurring.is_(False), row.recurring_event_id.is_(None)]
    elif shape.kind is Kind.RECURRING:
        found.append(sa.or_(master, exception))
    elif shape.kind is Kind.MASTER:
        found.append(master)
    elif shape.kind is Kind.EXCEPTION:
        found.append(exception)
    if shape.window:
        found += window_conditions(shape.kind)
    if shape.after:
        at: sa.BindParameter[datetime] = sa.bindparam("after_at")
        last_id: sa.BindParameter[uuid.UUID] = sa.bindparam("after_id")
        found.append(sa.or_(row.start_time > at, sa.and_(row.start_time == at, row.id > last_id)))
    return tuple(found)


def window_conditions(kind: Kind) -> list[sa.ColumnElement[bool]]:
    """The window's part of `filter_conditions`: timed rows against the instants, all-day rows
    against the days (`calsync.domain.windows.all_day_in_window` on their stored
    midnights), under one range of starts that an index scan answers."""
    row = EventRow
    start: sa.BindParameter[datetime] = sa.bindparam("window_start")
    end: sa.BindParameter[datetime] = sa.bindparam("window_end")
    day_start: sa.BindParameter[datetime] = sa.bindparam("day_start")
    day_end: sa.BindParameter[datetime] = sa.bindparam("day_end")
    timed, all_day = row.all_day.is_(False), row.all_day.is_(True)
    event_overlaps = sa.or_(
        sa.and_(
            timed,
            row.start_time < end,
            sa.or_(
                row.end_time > start,
                sa.and_(row.end_time == row.start_time, row.start_time >= start),
            ),
        ),
        sa.and_(all_day, row.start_time < day_end, row.end_time > day_start),
    )
    # An all-day series' recurrence_end is midnight of its last end date in its own zone
    # (the reminders compare it with instants), less than a day from that date's
    # midnight UTC: past `day_start` whenever that date is after the first day, never
    # missing a series, but also for a series that ends on the first day in a zone west
    # of UTC (an upper bound by less than a day, as UNTIL's is by a day).
    series_overlaps = sa.or_(
        sa.and_(
            timed,
            row.start_time < end,
            sa.or_(row.recurrence_end.is_(None), row.recurrence_end > start),
        ),
        sa.and_(
            all_day,
            row.start_time < day_end,
            sa.or_(row.recurrence_end.is_(None), row.recurrence_end > day_start),
        ),
    )
    # The starts of both branches at once (`wide_end` is the later of the two ends), so
    # an index on (user_id, start_time) bounds the scan; the branches then filter on
    # columns the singles' index holds (migration 0008), keeping that scan index-only. Each kind
    # gets only the branch that can hold for it, so that PostgreSQL can answer from the
    # partial indexes of singles and masters (0006).
    found: list[sa.ColumnElement[bool]] = [row.start_time < sa.bindparam("wide_end")]
    if kind in (Kind.SINGLE, Kind.EXCEPTION):
        found.append(event_overlaps)
    elif kind is Kind.MASTER:
        found.append(series_overlaps)
    else:
        found.append(
            sa.or_(
                sa.and_(row.is_recurring.is_(True), series_overlaps),
                sa.and_(row.is_recurring.is_(False), event_overlaps),
            )
        )
    return found
