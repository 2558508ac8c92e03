"""The list use case of ``GET /events``: one page of a user's events for a `ListQuery`,
and the cursor of the next page.

Order and cursor: items are ordered by (start instant, id), all-day items at midnight
UTC of their date, as stored. The cursor is the opaque base64 of the last item's key,
bound to the caller and the filters (`ListQuery.scope`, `calsync.store.keyset`); paging
with it never skips or repeats an item of an unchanged calendar.

Expanded pages are read from the read model (`calsync.events.read_model`, made of the
JSON its upkeep stored) when it can answer them; otherwise they are expanded
(`calsync.events.list_expansion`), and lists without ``expand`` are read, and all of
these rendered, per request (decisions X1, X7).

What falls in the range (`calsync.domain.windows`, the same for singles, exceptions and
generated instances, expanded or not): a timed item when its instants overlap it; an
all-day item when its dates overlap the range's days as the caller sees them.

The query string becomes a `ListQuery` in `calsync.web.list_query` (its 422s); this
module takes a parsed query, never a request, and raises no HTTP error (decision HK1).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from calsync.domain.recurrence import instance_of
from calsync.domain.windows import DayRange
from calsync.events import model_bodies, read_model
from calsync.events.list_expansion import Item, after_cursor, first_items, item_key
from calsync.events.views import EventView, event_json, instance_json, json_bytes
from calsync.store import keyset
from calsync.store.event_filters import EventFilter, Kind
from calsync.store.event_queries import list_keys, load_many
from calsync.store.events import StoredEvent

__all__ = ["ListQuery", "list_bodies", "list_views", "prepare"]


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


def encode_cursor(at: datetime, item_id: str, *, scope: str = "") -> str:
    return keyset.encode(at, item_id, scope=scope)


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
    session: Session, user_id: uuid.UUID, query: ListQuery, *, snapshot: bool = True
) -> tuple[list[read_model.ListedRow], str | None] | None:
    """The rows of an expanded page read from the read model
    (`calsync.events.read_model`, in a snapshot the caller's later reads share, or
    without `snapshot` as a statement of its own) and the next page's cursor, or `None`
    when the model cannot answer it (then it is expanded here, as before)."""
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
        snapshot=snapshot,
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
    (`calsync.events.model_bodies`), read by one statement outside any transaction;
    a page with an item to render from rows is read again with them in one snapshot
    (decision HN1). Any other is read and rendered, the generated instances of one
    master from the first one's document (`_document`)."""
    modelled = _model_page(session, user_id, query, snapshot=False)
    if modelled is not None:
        stored = model_bodies.stored_bodies(modelled[0])
        if stored is not None:
            return stored, modelled[1]
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


def prepare(sessions: Callable[[], Session], now: datetime) -> None:
    """List an empty month as a client pages one - its first page, then a page after a
    cursor - for a user no row names (the nil UUID), so that this process has built and
    compiled both pages' statements and opened a database connection before a client
    first lists (decision HZ1): a process's first month otherwise paid ~20-25 ms more of
    the API's CPU. Reads no user's rows, writes nothing, keeps nothing but
    what code alone decides (statements, their compiled forms, the pool's connection)."""
    nobody = uuid.UUID(int=0)
    first = now.astimezone(UTC).date().replace(day=1)
    start = datetime.combine(first, time(), tzinfo=UTC)
    days = DayRange(first, first + timedelta(days=31))
    query = ListQuery(
        start=start,
        end=start + timedelta(days=31),
        days=days,
        category=None,
        calendar_id=None,
        recurring=None,
        expand=True,
        limit=200,
        after=None,
    )
    for page in (query, replace(query, after=(start, str(nobody)))):
        with sessions() as session:
            list_bodies(session, nobody, page)


def _document(
    item: Item, view: EventView, templates: dict[uuid.UUID, dict[str, Any]]
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


def _page(session: Session, user_id: uuid.UUID, query: ListQuery) -> tuple[list[Item], str | None]:
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
    single_items: list[Item] = []
    if not query.expand:
        # The page is what the keys say (a row deleted since it was listed is left out,
        # without cutting the pages short).
        listed = list_keys(session, spec, limit=query.limit + 1, after=after)
        items: list[Item] = [(at, str(event_id), event_id) for at, event_id in listed]
    else:
        assert query.start is not None
        assert query.end is not None
        if query.recurring is not True:
            keys = list_keys(session, spec, limit=query.limit + 1, after=after)
            single_items = [(at, str(event_id), event_id) for at, event_id in keys]
        if query.recurring is False:
            items = after_cursor(single_items, query.after)
        else:
            items = first_items(session, spec, query, single_items)
    page_items = items[: query.limit]
    more = len(items) > query.limit
    cursor = (
        encode_cursor(*item_key(page_items[-1]), scope=query.scope) if more and page_items else None
    )
    return page_items, cursor


def _load(session: Session, items: list[Item]) -> dict[uuid.UUID, StoredEvent]:
    """The singles and masters page items show, by id, read in one query. A row that
    went away since it was listed (deleted by a concurrent request) is missing."""
    wanted = [
        payload if isinstance(payload, uuid.UUID) else payload.series.id for _, _, payload in items
    ]
    return load_many(session, wanted)


def _views(session: Session, items: list[Item]) -> list[EventView]:
    """The views of `items` (`_load`, then `_view`), leaving out those whose row went."""
    loaded = _load(session, items)
    return [view for item in items if (view := _view(item, loaded)) is not None]


def _view(item: Item, loaded: Mapping[uuid.UUID, StoredEvent]) -> EventView | None:
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


def _kind(recurring: bool | None, *, expanded: bool) -> Kind:
    if expanded or recurring is False:
        return Kind.SINGLE
    return Kind.RECURRING if recurring else Kind.ALL
