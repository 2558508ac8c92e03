"""The expansion of an expanded ``GET /events`` page the read model cannot answer: the
series of a window read once, their instances as page items, expanded over a growing
first part of the window until the page is certain (decisions R1, R2, X1).

An item is ``(sort instant, API id, what to show)``; nothing is loaded or rendered here:
`calsync.events.listing` loads the page's masters and builds its views. Moved here from
``web/event_reads.py`` (decision HK1).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import TYPE_CHECKING, Final

from sqlalchemy.orm import Session

from calsync.domain.errors import ValidationError
from calsync.domain.models import Event, EventTime
from calsync.domain.recurrence import Occurrences, expand, instance_id, occurrences
from calsync.domain.windows import DayRange
from calsync.events.instance_rows import sort_instant
from calsync.store.event_filters import EventFilter, Kind
from calsync.store.event_queries import (
    SeriesOutline,
    exceptions_of_outlines,
    load_many,
    masters_of_exceptions_in,
    series_outlines,
)
from calsync.store.events import StoredEvent

if TYPE_CHECKING:  # listing imports this module
    from calsync.events.listing import ListQuery

__all__ = ["MAX_SERIES", "Instance", "Item", "after_cursor", "first_items", "item_key"]

#: The most series one expanded page reads.
MAX_SERIES: Final = 5000


def after_cursor(items: list[Item], after: tuple[datetime, str] | None) -> list[Item]:
    if after is not None:
        items = [i for i in items if (i[0], i[1]) > after]
    items.sort(key=item_key)
    return items


def first_items(
    session: Session,
    spec: EventFilter,
    query: ListQuery,
    singles: list[Item],
) -> list[Item]:
    """Singles and instances after the cursor, sorted: at least the first `limit + 1` of
    the whole answer (or all of it), and nothing that is not in it.

    Instances are expanded over a first part of the window (from its start, or from the
    cursor's instant, from which the per-series bound counts: R1) up to a horizon, which
    grows (x4) until `limit + 1` items certainly precede it: every instance not yet
    expanded starts after the horizon, and `singles` are the first `limit + 1` singles
    of the answer. A series whose expansion a bound cut short is expanded over the
    whole window; it still yields more items after the cursor than a page takes (the
    bound, 1,000, is above `MAX_PAGE` + 1), so the page is exact and the next one goes
    on from it. Masters are those whose range meets the window and those of the live
    exceptions in it (an instance moved out of its series' span, R2).
    """
    assert query.start is not None
    assert query.end is not None
    series = _series(session, spec, query.start, query.end)
    return _items_until_certain(series, query, singles)


def _items_until_certain(series: _SeriesData, query: ListQuery, singles: list[Item]) -> list[Item]:
    """`first_items` of the series read."""
    assert query.start is not None
    assert query.end is not None
    start, end = query.start, query.end
    origin = max(start, query.after[0]) if query.after is not None else start
    not_before = query.after[0] if query.after is not None else None
    horizon = _towards(origin, (end - start) / 8, end)
    while True:
        if horizon >= end - _ALL_DAY_MARGIN:
            found = _instance_items(series, start, end, end, not_before)
            return after_cursor(singles + found, query.after)
        part_end = horizon + _ALL_DAY_MARGIN
        found = _instance_items(series, start, end, part_end, not_before)
        certain = [i for i in found if i[0] < horizon]
        items = after_cursor(singles + certain, query.after)
        if len(items) > query.limit and items[query.limit][0] < horizon:
            return items
        horizon = _towards(origin, (horizon - origin) * 4, end)


def _towards(origin: datetime, step: timedelta, end: datetime) -> datetime:
    """`origin + step`, but no later than `end` (and without overflowing past it)."""
    return end if origin >= end or step >= end - origin else origin + step


_ALL_DAY_MARGIN: Final = timedelta(days=1)
"""How far past the horizon a first part of the window is expanded. Every item that
sorts before the horizon is found there: a timed one starts before it, an all-day one
(sorted at midnight UTC of its date) has a date up to the horizon's UTC date, and the
part's all-day instances are those of its days up to its end's UTC date (`_days_before`)."""


def _days_before(days: DayRange, moment: datetime) -> DayRange:
    """The first of `days` up to and including the UTC date of `moment`: all the all-day
    items of `days` that sort (at midnight UTC of their date) at or before `moment`, and
    never fewer than `days`' first day."""
    end = min(days.end, moment.astimezone(UTC).date() + timedelta(days=1))
    return DayRange(days.first, max(end, days.first + timedelta(days=1)))


@dataclass(frozen=True, slots=True)
class Instance:
    """An instance of a series on its way to the page, before the master is loaded.

    `event` is the exception shown in its place (`None`: the generated instance starting
    at `start`); `stored` the exception whose original start is this instance's, whose
    bookkeeping the item shows (`None`: the master's).
    """

    series: SeriesOutline
    start: EventTime
    event: Event | None
    stored: StoredEvent | None

    @property
    def generated(self) -> bool:
        """Whether it shows its master alone: no exception replaces it or lends it its
        bookkeeping."""
        return self.event is None and self.stored is None


Item = tuple[datetime, str, "uuid.UUID | Instance"]
"""(sort instant, API id, what to show): a single by local id, or an instance."""


item_key: Final[Callable[[Item], tuple[datetime, str]]] = itemgetter(0, 1)
"""An item's (sort instant, API id): the order of the answer."""


def _whole_master(
    session: Session,
    master: SeriesOutline,
    start: datetime,
    end: datetime,
    days: DayRange,
    by_start: dict[datetime, StoredEvent],
) -> list[Item]:
    """A master listed as a series whose row holds no recurrence: as `expand` does, the
    master itself when it falls in the window (never happens for rows calsync wrote)."""
    loaded = load_many(session, [master.id]).get(master.id)
    if loaded is None or not expand(
        loaded.event, start, end, master_id=master.series_id, days=days
    ):
        return []
    first = loaded.event.start
    at = sort_instant(first)
    return [
        (at, instance_id(str(master.id), first), Instance(master, first, None, by_start.get(at)))
    ]


@dataclass(frozen=True, slots=True)
class _SeriesData:
    """The user's series in a window: outlines and their exceptions, read once."""

    masters: list[SeriesOutline]
    exceptions: dict[tuple[uuid.UUID, str], list[StoredEvent]]
    days: DayRange
    """The window's days, against which all-day instances are listed."""
    category: str | None
    session: Session


def _series(session: Session, spec: EventFilter, start: datetime, end: datetime) -> _SeriesData:
    """The masters selected for `[start, end)` with their exceptions."""
    assert spec.days is not None
    masters_spec = EventFilter(
        user_id=spec.user_id,
        start=start,
        end=end,
        days=spec.days,
        calendar_id=spec.calendar_id,
        kind=Kind.MASTER,
    )
    masters = series_outlines(session, masters_spec, limit=MAX_SERIES)
    # instances moved out of their series' span: their masters' ranges miss the window
    moved = masters_of_exceptions_in(
        session,
        EventFilter(
            user_id=spec.user_id,
            start=start,
            end=end,
            days=spec.days,
            calendar_id=spec.calendar_id,
            kind=Kind.EXCEPTION,
        ),
        known={m.id for m in masters},
    )
    masters = masters + moved
    exceptions = exceptions_of_outlines(session, masters)
    return _SeriesData(masters, exceptions, spec.days, spec.category, session)


def _instance_items(
    series: _SeriesData,
    start: datetime,
    end: datetime,
    part_end: datetime,
    not_before: datetime | None = None,
) -> list[Item]:
    """The instances of the series in `[start, end)` as page items (no event is built:
    `_view` builds those of the page); with a category, only those of it. With
    `part_end` before `end`, only series whose expansion no bound cut short are expanded
    over `[start, part_end)` alone (all-day series over the window's days up to the UTC
    date of `part_end`, `_days_before`): the items that sort before `part_end` less
    `_ALL_DAY_MARGIN` are then exactly those of the whole window. With `not_before`
    (the cursor's instant), only items that sort at or after it, the per-series bound
    counting from there (`recurrence.occurrences`).
    """
    items: list[Item] = []
    for master in series.masters:
        items += _series_items(series, master, start, end, part_end, not_before)
    return items


def _series_items(
    series: _SeriesData,
    master: SeriesOutline,
    start: datetime,
    end: datetime,
    part_end: datetime,
    not_before: datetime | None,
) -> list[Item]:
    """`_instance_items` of one series."""
    category = series.category
    own = (
        series.exceptions.get((master.calendar_id, master.series_id), [])
        if master.has_exceptions
        else []
    )
    by_start = {sort_instant(e.event.original_start): e for e in own if e.event.original_start}
    if not master.recurrence:  # not a series after all: expand() shows the master itself
        if category is None or master.category == category:
            return _whole_master(series.session, master, start, end, series.days, by_start)
        return []
    own_events = [e.event for e in own]
    try:
        if part_end < end:
            part_days = _days_before(series.days, part_end)
            found = _occurrences(master, own_events, start, part_end, part_days, not_before)
            if not found.complete:
                found = _occurrences(master, own_events, start, end, series.days, not_before)
        else:
            found = _occurrences(master, own_events, start, end, series.days, not_before)
    except ValidationError:
        return []  # a rule calsync cannot expand (from Google): shown unexpanded only
    items: list[Item] = []
    series_key = str(master.id)
    if category is None or master.category == category:
        for value in found.starts:
            at = sort_instant(value)
            items.append(
                (
                    at,
                    instance_id(series_key, value),
                    Instance(master, value, None, by_start.get(at)),
                )
            )
    for event in found.exceptions:
        if category is not None and event.category != category:
            continue
        original = event.original_start or event.start
        items.append(
            (
                sort_instant(event.start),
                instance_id(series_key, original),
                Instance(master, original, event, by_start.get(sort_instant(original))),
            )
        )
    return items


def _occurrences(
    master: SeriesOutline,
    exceptions: list[Event],
    start: datetime,
    end: datetime,
    days: DayRange,
    not_before: datetime | None,
) -> Occurrences:
    return occurrences(
        master.recurrence,
        master.start,
        master.end,
        start,
        end,
        exceptions,
        series_id=master.series_id,
        timezone=master.timezone,
        days=days,
        not_before=not_before,
    )
