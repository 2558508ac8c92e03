"""What ``GET /events`` and the id routes read: lists with filters, cursors, instance ids.

`parse_list_query` turns the query string into a `ListQuery` (422 naming the parameter);
`list_views` answers it, expanding series into instances when asked; `resolve` turns an
API id into what it names: a stored event (`uuid`) or one instance of a series
(``<seriesId>_<YYYYMMDDTHHMMSSZ>`` or ``<seriesId>_<YYYYMMDD>``), generated or replaced
by an exception.

Order and cursor: items are ordered by (start instant, id), all-day items at midnight
UTC of their date, as stored. The cursor is the opaque base64 of the last item's key,
bound to the caller and the filters (`calsync.web.paging`); paging with it never skips
or repeats an item of an unchanged calendar.

Expanded pages are read from the read model (`calsync.events.read_model`, made of the
JSON its upkeep stored) when it can answer them; otherwise, and for lists without
``expand``, the rows are read and rendered per request (decisions X1, X7).

Range: `start_date` and `end_date` are cut to `LISTED_FROM`..`LISTED_UNTIL` (0001-01-08
and 9999-12-25 UTC: the range a `datetime` holds, less a week at each end, which
expansion needs to look around a window). So ``start_date=0001-01-01&end_date=9999-12-31``
lists everything; a range that lies wholly past one end is a 422 naming the parameter.

What falls in the range (`calsync.domain.windows`, the same for singles, exceptions and
generated instances, expanded or not): a timed item when its instants overlap it; an
all-day item when its dates overlap the range's days as the caller sees them: the dates
given (``YYYY-MM-DD``), or the days of the caller's zone that the date-times touch.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from operator import itemgetter
from typing import Any, Final

from sqlalchemy.orm import Session

from calsync.domain.errors import ValidationError
from calsync.domain.models import Event, EventStatus, EventTime
from calsync.domain.recurrence import (
    Occurrences,
    expand,
    instance_id,
    instance_of,
    occurrences,
)
from calsync.domain.timezones import zone
from calsync.domain.windows import DayRange, days_touched
from calsync.events import model_bodies, read_model
from calsync.events.changes_input import has_control_characters
from calsync.events.views import EventView, event_json, instance_json, json_bytes
from calsync.store.event_queries import (
    EventFilter,
    Kind,
    SeriesOutline,
    exceptions_of_outlines,
    find_exception,
    list_keys,
    load_many,
    masters_of_exceptions_in,
    series_outlines,
)
from calsync.store.events import StoredEvent, load_stored
from calsync.web import paging
from calsync.web.errors import APIError, unprocessable

__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "InstanceRef",
    "ListQuery",
    "list_bodies",
    "list_views",
    "parse_list_query",
    "resolve",
    "sort_instant",
]

DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 200
MAX_EXPAND_DAYS: Final = 400
MAX_SERIES: Final = 5000
LISTED_FROM: Final = datetime(1, 1, 8, tzinfo=UTC)
LISTED_UNTIL: Final = datetime(9999, 12, 25, tzinfo=UTC)
_PARAMS: Final = frozenset(
    {"start_date", "end_date", "category", "calendar_id", "recurring", "expand", "limit", "cursor"}
)


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A parsed ``GET /events`` query. The range is `start`, `end` (instants, for timed
    events) and `days` (the caller's days, for all-day events) together, or none of them."""

    start: datetime | None
    end: datetime | None
    days: DayRange | None
    category: str | None
    calendar_id: uuid.UUID | None
    recurring: bool | None
    expand: bool
    limit: int
    after: tuple[datetime, str] | None
    #: What the page's cursors are bound to (`calsync.web.paging.list_scope`).
    scope: str = ""


def _bad(name: str, message: str) -> APIError:
    return unprocessable([{"field": name, "issue": "invalid", "message": message}])


def parse_list_query(params: Mapping[str, str], *, user_zone: str, scope: str = "") -> ListQuery:
    """The query of ``GET /events``. Dates are whole days in the caller's zone (`end_date`
    inclusive); date-times need an offset. ``limit`` and ``cursor`` follow the contract
    of every list (`calsync.web.paging`); `scope` is what its cursors are bound to."""
    unknown = sorted(set(params) - _PARAMS)
    if unknown:
        raise unprocessable(
            [{"field": n, "issue": "unknown", "message": "unknown parameter"} for n in unknown]
        )
    start = _moment("start_date", params.get("start_date"), user_zone, end=False)
    end = _moment("end_date", params.get("end_date"), user_zone, end=True)
    if (start is None) != (end is None):
        missing = "end_date" if end is None else "start_date"
        raise _bad(missing, "start_date and end_date go together")
    if start is not None and start >= LISTED_UNTIL:
        raise _bad(
            "start_date",
            f"must be before {LISTED_UNTIL.date().isoformat()}, the end of the listed range",
        )
    if end is not None and end <= LISTED_FROM:
        raise _bad(
            "end_date",
            f"must be after {LISTED_FROM.date().isoformat()}, the start of the listed range",
        )
    if start is not None and end is not None and end <= start:
        raise _bad("end_date", "must be after start_date")
    days = None
    if start is not None and end is not None:
        days = _days(params["start_date"], params["end_date"], start, end, user_zone)
    expand_flag = _flag("expand", params.get("expand")) or False
    if expand_flag:
        if start is None or end is None:
            raise _bad("start_date", "expand=true needs start_date and end_date")
        if end - start > timedelta(days=MAX_EXPAND_DAYS):
            raise _bad("end_date", f"an expanded range spans at most {MAX_EXPAND_DAYS} days")
    category = params.get("category") or None
    if category is not None and has_control_characters(category):
        raise _bad("category", "must not contain control characters (such as NUL)")
    calendar_id = None
    if params.get("calendar_id"):
        try:
            calendar_id = uuid.UUID(params["calendar_id"])
        except ValueError:
            raise _bad("calendar_id", "not a calendar id") from None
    return ListQuery(
        start=start,
        end=end,
        days=days,
        category=category,
        calendar_id=calendar_id,
        recurring=_flag("recurring", params.get("recurring")),
        expand=expand_flag,
        limit=paging.page_size(params, default=DEFAULT_PAGE, maximum=MAX_PAGE),
        after=_after(params, scope),
        scope=scope,
    )


def _moment(name: str, text: str | None, user_zone: str, *, end: bool) -> datetime | None:
    """The instant a query bound names, cut to `LISTED_FROM`..`LISTED_UNTIL`."""
    if not text:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if end and day == date.max:  # the day after it is past the calendar
                return LISTED_UNTIL
            day += timedelta(days=1 if end else 0)
            moment = datetime.combine(day, time(), tzinfo=zone(user_zone))
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise _bad(name, "give a date (YYYY-MM-DD) or a date-time with offset") from None
    if moment.tzinfo is None:
        raise _bad(name, "a date-time needs an offset (such as Z or +01:00)")
    return _within_listed(moment)


_LISTED_DAYS: Final = DayRange(LISTED_FROM.date(), LISTED_UNTIL.date())


def _days(
    start_text: str, end_text: str, start: datetime, end: datetime, user_zone: str
) -> DayRange:
    """The days of the range `[start, end)` (`_moment`s of the texts) as the caller sees
    them: a date bound names its day itself (`end_date` inclusive), a date-time bound
    the day of `user_zone` it falls in (`days_touched`); cut to the listed range.
    A range that touches no listed day is a 422 naming the parameter, as for instants."""
    touched = days_touched(start, end, user_zone)
    first = date.fromisoformat(start_text) if len(start_text) == 10 else touched.first
    after = touched.end
    if len(end_text) == 10:
        last = date.fromisoformat(end_text)
        after = last + timedelta(days=1) if last < date.max else last
    if first >= _LISTED_DAYS.end:
        raise _bad("start_date", f"must be before {_LISTED_DAYS.end}, the end of the listed range")
    if after <= _LISTED_DAYS.first:
        raise _bad("end_date", f"must be after {_LISTED_DAYS.first}, the start of the listed range")
    return DayRange(max(first, _LISTED_DAYS.first), min(after, _LISTED_DAYS.end))


def _within_listed(moment: datetime) -> datetime:
    """`moment`, or the end of the listed range it lies past. Compared without
    converting: a wall time of year 1 or 9999 may have no UTC equivalent."""
    if moment < LISTED_FROM:
        return LISTED_FROM
    if moment > LISTED_UNTIL:
        return LISTED_UNTIL
    return moment


def _flag(name: str, text: str | None) -> bool | None:
    if text is None or text == "":
        return None
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise _bad(name, "must be true or false")


def encode_cursor(at: datetime, item_id: str, *, scope: str = "") -> str:
    return paging.next_cursor(scope, at, item_id)


def _after(params: Mapping[str, str], scope: str) -> tuple[datetime, str] | None:
    after = paging.read_cursor(params, scope)
    if after is not None:
        try:
            uuid.UUID(after[1].split("_", 1)[0])
        except ValueError:
            raise _bad("cursor", "not a cursor this API gave out") from None
    return after


def sort_instant(value: EventTime) -> datetime:
    """The instant an item sorts by: its start, midnight UTC for a day (as stored)."""
    if value.day is not None:
        return datetime.combine(value.day, time(), tzinfo=UTC)
    assert value.instant is not None
    return value.instant


def list_views(
    session: Session, user_id: uuid.UUID, query: ListQuery
) -> tuple[list[EventView], str | None]:
    """One page of the user's events for `query`, and the cursor of the next page."""
    modelled = _model_page(session, user_id, query)
    if modelled is not None:
        rows, cursor = modelled
        loaded = model_bodies.load_rows(session, rows)
        views = [found[0] for row in rows if (found := model_bodies.model_view(row, loaded))]
        return views, cursor
    items, cursor = _page(session, user_id, query)
    return _views(session, items), cursor


def _model_page(
    session: Session, user_id: uuid.UUID, query: ListQuery
) -> tuple[list[read_model.ListedRow], str | None] | None:
    """The rows of an expanded page read from the read model
    (`calsync.events.read_model`) and the next page's cursor, or `None` when the model
    cannot answer it (then it is expanded here, as before)."""
    if not query.expand:
        return None
    assert query.start is not None
    assert query.end is not None
    assert query.days is not None
    rows = read_model.page(
        session,
        read_model.PageQuery(
            user_id=user_id,
            start=query.start,
            end=query.end,
            days=query.days,
            category=query.category,
            calendar_id=query.calendar_id,
            recurring=query.recurring,
            limit=query.limit + 1,
            after=query.after,
        ),
    )
    if rows is None:
        return None
    shown = rows[: query.limit]
    cursor = None
    if len(rows) > query.limit and shown:
        cursor = encode_cursor(shown[-1].sort_at, shown[-1].api_id, scope=query.scope)
    return shown, cursor


def list_bodies(
    session: Session, user_id: uuid.UUID, query: ListQuery
) -> tuple[list[bytes], str | None]:
    """`list_views` as the JSON bytes of each item (`event_json`, rendered by
    `json_bytes`), and the cursor of the next page.

    A page of the read model is made of the documents its upkeep rendered
    (`calsync.events.model_bodies`); any other is read and rendered, the generated instances of one
    master from the first one's document (`_document`)."""
    modelled = _model_page(session, user_id, query)
    if modelled is not None:
        return model_bodies.bodies(session, modelled[0]), modelled[1]
    items, cursor = _page(session, user_id, query)
    loaded = _load(session, items)
    templates: dict[uuid.UUID, dict[str, Any]] = {}
    bodies = [
        json_bytes(_document(item, view, templates))
        for item in items
        if (view := _view(item, loaded)) is not None
    ]
    return bodies, cursor


def _document(
    item: _Item, view: EventView, templates: dict[uuid.UUID, dict[str, Any]]
) -> dict[str, Any]:
    """`event_json(view)`; the generated instances of one master (shown with the master's
    bookkeeping) are rendered from the first one's document (`instance_json`)."""
    payload = item[2]
    if (
        isinstance(payload, uuid.UUID)
        or not payload.generated
        or view.series is None
        or not view.series.event.recurrence
    ):
        return event_json(view)
    template = templates.get(payload.series.id)
    if template is None:
        template = templates[payload.series.id] = event_json(view)
        return template
    return instance_json(template, view)


def _page(session: Session, user_id: uuid.UUID, query: ListQuery) -> tuple[list[_Item], str | None]:
    """The items of the page `query` asks for (nothing loaded yet) and the cursor of the
    next page."""
    spec = EventFilter(
        user_id=user_id,
        start=query.start,
        end=query.end,
        days=query.days,
        category=query.category,
        calendar_id=query.calendar_id,
        kind=_kind(query.recurring, expanded=query.expand),
    )
    after = None
    if query.after is not None:
        after = (query.after[0], uuid.UUID(query.after[1].split("_", 1)[0]))
    single_items: list[_Item] = []
    if not query.expand:
        # The page is what the keys say (a row deleted since it was listed is left out,
        # without cutting the pages short).
        listed = list_keys(session, spec, limit=query.limit + 1, after=after)
        items: list[_Item] = [(at, str(event_id), event_id) for at, event_id in listed]
    else:
        assert query.start is not None
        assert query.end is not None
        if query.recurring is not True:
            keys = list_keys(session, spec, limit=query.limit + 1, after=after)
            single_items = [(at, str(event_id), event_id) for at, event_id in keys]
        if query.recurring is False:
            items = _after_cursor(single_items, query.after)
        else:
            items = _first_items(session, spec, query, single_items)
    page_items = items[: query.limit]
    more = len(items) > query.limit
    cursor = (
        encode_cursor(*_item_key(page_items[-1]), scope=query.scope)
        if more and page_items
        else None
    )
    return page_items, cursor


def _after_cursor(items: list[_Item], after: tuple[datetime, str] | None) -> list[_Item]:
    if after is not None:
        items = [i for i in items if (i[0], i[1]) > after]
    items.sort(key=_item_key)
    return items


def _first_items(
    session: Session,
    spec: EventFilter,
    query: ListQuery,
    singles: list[_Item],
) -> list[_Item]:
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


def _items_until_certain(
    series: _SeriesData, query: ListQuery, singles: list[_Item]
) -> list[_Item]:
    """`_first_items` of the series read."""
    assert query.start is not None
    assert query.end is not None
    start, end = query.start, query.end
    origin = max(start, query.after[0]) if query.after is not None else start
    not_before = query.after[0] if query.after is not None else None
    horizon = _towards(origin, (end - start) / 8, end)
    while True:
        if horizon >= end - _ALL_DAY_MARGIN:
            found = _instance_items(series, start, end, end, not_before)
            return _after_cursor(singles + found, query.after)
        part_end = horizon + _ALL_DAY_MARGIN
        found = _instance_items(series, start, end, part_end, not_before)
        certain = [i for i in found if i[0] < horizon]
        items = _after_cursor(singles + certain, query.after)
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
class _Instance:
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


_Item = tuple[datetime, str, "uuid.UUID | _Instance"]
"""(sort instant, API id, what to show): a single by local id, or an instance."""


_item_key: Final[Callable[[_Item], tuple[datetime, str]]] = itemgetter(0, 1)
"""An item's (sort instant, API id): the order of the answer."""


def _load(session: Session, items: list[_Item]) -> dict[uuid.UUID, StoredEvent]:
    """The singles and masters page items show, by id, read in one query. A row that
    went away since it was listed (deleted by a concurrent request) is missing."""
    wanted = [
        payload if isinstance(payload, uuid.UUID) else payload.series.id for _, _, payload in items
    ]
    return load_many(session, wanted)


def _views(session: Session, items: list[_Item]) -> list[EventView]:
    """The views of `items` (`_load`, then `_view`), leaving out those whose row went."""
    loaded = _load(session, items)
    return [view for item in items if (view := _view(item, loaded)) is not None]


def _view(item: _Item, loaded: Mapping[uuid.UUID, StoredEvent]) -> EventView | None:
    """The view of a page item, building a generated instance from its master (`loaded`
    by `_load`); `None` if its row is missing from `loaded`."""
    _, api_id, payload = item
    if isinstance(payload, uuid.UUID):
        single = loaded.get(payload)
        return EventView(api_id, single.event, single) if single is not None else None
    master = loaded.get(payload.series.id)
    if master is None:
        return None
    if payload.event is not None:
        event = payload.event
    elif not master.event.recurrence:
        event = master.event
    else:
        event = instance_of(master.event, payload.series.series_id, payload.start)
    stored = payload.stored if payload.stored is not None else master
    return EventView(api_id, event, stored, series=master)


def _whole_master(
    session: Session,
    master: SeriesOutline,
    start: datetime,
    end: datetime,
    days: DayRange,
    by_start: dict[datetime, StoredEvent],
) -> list[_Item]:
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
        (at, instance_id(str(master.id), first), _Instance(master, first, None, by_start.get(at)))
    ]


def _kind(recurring: bool | None, *, expanded: bool) -> Kind:
    if expanded or recurring is False:
        return Kind.SINGLE
    return Kind.RECURRING if recurring else Kind.ALL


def series_id_of(master: StoredEvent) -> str:
    """The id exceptions name their series by (the master's Google id)."""
    return master.event.provider_event_id or str(master.id)


def instance_api_id(master: StoredEvent, original_start: EventTime) -> str:
    """The API id of the instance of `master` that (originally) starts at `original_start`."""
    return instance_id(str(master.id), original_start)


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
) -> list[_Item]:
    """The instances of the series in `[start, end)` as page items (no event is built:
    `_view` builds those of the page); with a category, only those of it. With
    `part_end` before `end`, only series whose expansion no bound cut short are expanded
    over `[start, part_end)` alone (all-day series over the window's days up to the UTC
    date of `part_end`, `_days_before`): the items that sort before `part_end` less
    `_ALL_DAY_MARGIN` are then exactly those of the whole window. With `not_before`
    (the cursor's instant), only items that sort at or after it, the per-series bound
    counting from there (`recurrence.occurrences`).
    """
    items: list[_Item] = []
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
) -> list[_Item]:
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
    items: list[_Item] = []
    series_key = str(master.id)
    if category is None or master.category == category:
        for value in found.starts:
            at = sort_instant(value)
            items.append(
                (
                    at,
                    instance_id(series_key, value),
                    _Instance(master, value, None, by_start.get(at)),
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
                _Instance(master, original, event, by_start.get(sort_instant(original))),
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


@dataclass(frozen=True, slots=True)
class InstanceRef:
    """One instance of a series: `exception` when one replaces it, and what it shows."""

    api_id: str
    master: StoredEvent
    original_start: EventTime
    exception: StoredEvent | None
    event: Event

    @property
    def view(self) -> EventView:
        stored = self.exception if self.exception is not None else self.master
        return EventView(self.api_id, self.event, stored, series=self.master)


def resolve(session: Session, api_id: str) -> StoredEvent | InstanceRef | None:
    """What `api_id` names, deleted events and cancelled instances excluded; `None` if
    nothing. Does not check who may see it."""
    head, sep, suffix = api_id.partition("_")
    try:
        local_id = uuid.UUID(head)
    except ValueError:
        return None
    stored = load_stored(session, local_id)
    if stored is None or stored.deleted_at is not None:
        return None
    if not sep:
        return stored
    if not stored.event.is_recurring:
        return None
    original = _original_start(suffix, stored.event)
    if original is None or instance_api_id(stored, original) != api_id:
        return None
    return _instance(session, stored, original, api_id)


def _original_start(suffix: str, master: Event) -> EventTime | None:
    try:
        if master.all_day:
            return EventTime.on(datetime.strptime(suffix, "%Y%m%d").date())
        moment = datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    assert master.timezone is not None
    return EventTime(instant=moment, timezone=master.timezone)


def _instance(
    session: Session, master: StoredEvent, original: EventTime, api_id: str
) -> InstanceRef | None:
    exception = find_exception(
        session,
        calendar_id=master.calendar_id,
        series_id=series_id_of(master),
        original_start=sort_instant(original),
    )
    if exception is not None:
        if exception.event.status == EventStatus.CANCELLED:
            return None
        return InstanceRef(api_id, master, original, exception, exception.event)
    begin = sort_instant(original) - timedelta(days=1)
    try:
        found = expand(
            master.event,
            begin,
            sort_instant(original) + timedelta(days=1) + master.event.duration,
            master_id=series_id_of(master),
            max_instances=10_000,
        )
    except ValidationError:
        return None  # a rule calsync does not expand (from Google) has no instances here
    for instance in found:
        if instance.original_start == original:
            return InstanceRef(api_id, master, original, None, instance)
    return None
