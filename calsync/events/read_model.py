"""The read model of expanded lists: one row per listed item, kept with the events.

Decisions V1-V8. Every live single event of a user has one row in ``event_instances``;
every live series master has one row per instance (generated, or replaced by a live
exception, moved or not) that overlaps the *horizon*, the range `fill` last expanded
every series over (`HORIZON_BEHIND` before today to `HORIZON_AHEAD` after it). A row
holds what the listing rule (`calsync.domain.windows`) and the page order need (sort
instant, end, all-day), what the page shows (the owner row, the original start, the
exception shown, the exception whose bookkeeping the item carries) and the owner's
version.

Upkeep (decisions V2, Z1-Z5): triggers on ``events`` and ``event_attendees`` record
every change of a row that can change what is listed (``instance_dirty``), in the
writing transaction; a user with a record is listed by expansion until the owners those
changes touch (the row itself, or the master an exception names) are re-expanded and
the record removed - by `calsync.events.upkeep`: before the commit for an API request's
few changes, after it (the ``refresh_read_model`` job, and the scheduler's sweep) for
everything else. API writes, splits, pulls and pushes are all covered without any of
them knowing: nothing that writes ``events`` through a session can miss it. This module
makes the rows (`replace_owners`); the caller holds the owners' row locks. Until a
horizon exists (`fill`, decision V8) the triggers record nothing: the model off costs
writes (almost) nothing.

Reading (`page`): a window wholly inside the horizon, for a user with no change left
to re-expand and no series whose expansion a bound cut short, is one range scan
(`calsync.store.instance_pages.listed_rows`). Anything else answers `None`, and the caller
expands as before (`calsync.web.event_reads`): just as correct, only slower.

The rows are made by the same functions today's expansion uses (`occurrences`,
`instance_id`, `sort_instant`), per series over chunks of the horizon no longer than
`CHUNK`, so an item's row is what that expansion would list for any window inside the
horizon; the differential test (tests/integration/events/test_read_model.py) checks it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.errors import ValidationError
from calsync.domain.models import Event, EventStatus, EventTime
from calsync.domain.recurrence import instance_id, instance_of, occurrences
from calsync.domain.windows import DayRange
from calsync.events.templates import stored_template
from calsync.events.views import EventView, event_json, json_bytes
from calsync.store import instance_pages, instance_upkeep, instances
from calsync.store.chunks import chunks
from calsync.store.event_queries import exceptions_of, load_shown
from calsync.store.events import StoredEvent
from calsync.store.instance_pages import ListedRow

__all__ = [
    "CHUNK",
    "HORIZON_AHEAD",
    "HORIZON_BEHIND",
    "ListedRow",
    "clear",
    "fill",
    "keep",
    "original_start",
    "owners_recorded",
    "page",
    "refresh_all",
    "replace_owners",
    "series_id_of",
]

HORIZON_BEHIND: Final = timedelta(days=366)
"""How far before today series instances are held: the last twelve months, which
calendar clients page back through (decision X4; a window reaching further back is
expanded per request)."""
HORIZON_AHEAD: Final = timedelta(days=458)
"""How far after today: any 400-day window (the longest expanded list) starting within
the next two months, and every month of the next fifteen."""
CHUNK: Final = timedelta(days=200)
"""The longest window one expansion covers (well under `recurrence.MAX_WINDOW`, the
window validated series are guaranteed to expand in); the horizon is expanded chunk by
chunk, and the chunks' items merged by API id."""


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def sort_instant(value: EventTime) -> datetime:
    """The instant an item sorts by: its start, midnight UTC for a day (as stored)."""
    if value.day is not None:
        return _midnight(value.day)
    assert value.instant is not None
    return value.instant


def series_id_of(master: StoredEvent) -> str:
    """The id exceptions name their series by (the master's Google id, else its own)."""
    return master.event.provider_event_id or str(master.id)


def original_start(row: ListedRow) -> EventTime | None:
    """The original start of an instance row (`None` for a single)."""
    if row.original_at is None:
        return None
    if row.original_zone is None:
        return EventTime.trusted(row.original_at.astimezone(UTC).date(), None, None)
    return EventTime.trusted(None, row.original_at, row.original_zone)


# --- upkeep ---------------------------------------------------------------------------


def refresh_all(session: Session, *, series_only: bool = False) -> int:
    """Re-expand every owner (or every series master); the number of owners. Also takes
    any change left recorded by a writer that bypassed the session hook. Nothing without
    a horizon (the model is off)."""
    bounds = instances.horizon(session, filled=False)
    if bounds is None:
        return 0
    left = owners_recorded(session, instances.take_all_dirty(session))
    owners = [owner for _, owner in instances.owners_of_users(session, masters_only=series_only)]
    _refresh_owners(session, owners + left, bounds)
    return len(set(owners + left))


def fill(sessions: sessionmaker[Session], now: datetime) -> bool:
    """Move the horizon to `HORIZON_BEHIND` before `now`'s UTC date to `HORIZON_AHEAD`
    after it; `False` when it is already there. The scheduler calls it (`keep`) every
    few minutes.

    A move (the model already filled) is one transaction: the new horizon and every
    series master re-expanded. The first fill (decisions V8, Z5) is one short
    transaction too: once every transaction writing ``events`` has ended
    (`instances.stop_writers`), the horizon and a change recorded for every owner, as
    if each had just been written. Every user with events is then listed by expansion
    until the upkeep after the write (`calsync.events.upkeep.catch_up`, the job the
    scheduler's sweep queues) has re-expanded their owners, batch by batch, in any
    number of workers; each user's lists come from the model as soon as theirs are
    done. A write committed before the first fill is seen by the run that re-expands
    its owner (it reads after it claims); one after it records itself."""
    today = _midnight(now.astimezone(UTC).date())
    wanted = (today - HORIZON_BEHIND, today + HORIZON_AHEAD)
    with sessions.begin() as session:
        current = instances.horizon(session)
        if current == wanted:
            return False
        if current is not None:
            instances.set_horizon(session, *wanted)
            refresh_all(session, series_only=True)
            return True
        instances.stop_writers(session)
        instances.set_horizon(session, *wanted)
        instance_upkeep.record_owners(session)
    return True


def keep(sessions: sessionmaker[Session], now: datetime, *, on: bool) -> bool:
    """What the scheduler runs (`calsync.scheduler`): `fill` when the model is on
    (setting ``READ_MODEL``), else `clear`; whether anything changed."""
    return fill(sessions, now) if on else clear(sessions)


def clear(sessions: sessionmaker[Session]) -> bool:
    """Switch the model off: forget the horizon and every row of the model, once every
    transaction writing ``events`` has ended (as `fill` starts), so that writes stop
    paying its upkeep (decision X5) and pages expand per request; `False` when it was
    already off."""
    with sessions.begin() as session:
        if instances.horizon(session, filled=False) is None:
            return False
        instances.stop_writers(session)
        instances.forget_all(session)
    return True


def owners_recorded(session: Session, dirty: Sequence[instances.Dirty]) -> list[uuid.UUID]:
    """The owners recorded changes touch: the rows themselves, and the masters the
    exceptions among them name."""
    owners = {(d.user_id, d.event_id) for d in dirty}
    refs = {(d.calendar_id, d.series_ref) for d in dirty if d.series_ref}
    owners.update(instances.masters_named(session, refs))
    return [owner for _, owner in owners]


def _refresh_owners(
    session: Session, owner_ids: Sequence[uuid.UUID], bounds: tuple[datetime, datetime]
) -> None:
    """`replace_owners`, each batch after waiting for the locks of its owners' rows (the
    fill and the horizon's moves: they must see every write committed before them)."""
    for batch in chunks(sorted(set(owner_ids)), _BATCH):
        instances.lock_owners(session, batch)
        replace_owners(session, batch, bounds)


def replace_owners(
    session: Session, owner_ids: Sequence[uuid.UUID], bounds: tuple[datetime, datetime]
) -> None:
    """Replace the rows of these owners by what they list now: a few statements per
    batch; singles' rows are computed by the database, series' here. The caller holds
    the owners' row locks (`instances.lock_owners`, or `instance_upkeep.lock_free_owners`
    for the upkeep), so that two re-expansions of one owner never interleave."""
    for batch in chunks(sorted(set(owner_ids)), _BATCH):
        instances.delete_rows(session, batch)
        instances.insert_singles(session, batch)
        singles = instances.live_singles(session, batch)
        master_ids = instances.live_masters(session, batch)
        loaded = load_shown(session, singles + master_ids)
        documents = [_single_document(loaded[i]) for i in singles if i in loaded]
        masters = [loaded[i] for i in master_ids if i in loaded]
        exceptions = exceptions_of(session, [(m.calendar_id, series_id_of(m)) for m in masters])
        rows: list[dict[str, Any]] = []
        incomplete: list[tuple[uuid.UUID, uuid.UUID]] = []
        shown: list[uuid.UUID] = []
        for master in masters:
            own = exceptions.get((master.calendar_id, series_id_of(master)), [])
            found, cut = _series_rows(master, own, bounds)
            rows += found
            if cut:
                incomplete.append((master.id, master.user_id))
            documents += _series_documents(master, own)
            shown += [e.id for e in own]
        instances.replace_documents(session, [*batch, *shown], documents)
        instances.insert_rows(session, rows, incomplete)


_BATCH: Final = 1000
"""Owners re-expanded together (one lock, delete and insert each)."""


def _single_document(single: StoredEvent) -> dict[str, Any]:
    """The ``event_documents`` row of a single: its item's JSON."""
    body = json_bytes(event_json(EventView(str(single.id), single.event, single)))
    return {"event_id": single.id, "body": body, "end_zone": None, "series_id": None}


def _series_documents(master: StoredEvent, own: Sequence[StoredEvent]) -> list[dict[str, Any]]:
    """The ``event_documents`` rows of a series: the master's, the JSON of a generated
    instance of it (the template `calsync.web.event_reads` makes every other one from,
    with the zone of its end and the series id their Google ids start with), and each
    live exception's as the series lists it (with its own bookkeeping). None for a
    master without rules (listed as itself: rendered per page)."""
    event = master.event
    key = str(master.id)
    found: list[dict[str, Any]] = []
    series_id = series_id_of(master)
    if event.recurrence:
        first = event.start
        template = EventView(
            instance_id(key, first), instance_of(event, series_id, first), master, series=master
        )
        found.append(
            {
                "event_id": master.id,
                "body": stored_template(event_json(template)),
                "end_zone": event.end.timezone,
                "series_id": series_id,
            }
        )
    for exception in own:
        shown = exception.event
        if shown.status == EventStatus.CANCELLED:
            continue
        view = EventView(
            instance_id(key, shown.original_start or shown.start), shown, exception, series=master
        )
        found.append(
            {
                "event_id": exception.id,
                "body": json_bytes(event_json(view)),
                "end_zone": None,
                "series_id": None,
            }
        )
    return found


def _row(
    owner: StoredEvent,
    api_id: str,
    shown: Event,
    *,
    in_series: bool,
    start: EventTime | None = None,
    end_at: datetime | None = None,
    original: EventTime | None = None,
    exception_id: uuid.UUID | None = None,
    bookkeeping_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    begin = start if start is not None else shown.start
    sort_at = sort_instant(begin)
    end = end_at if end_at is not None else sort_instant(shown.end)
    return {
        "owner_id": owner.id,
        "api_id": api_id,
        "user_id": owner.user_id,
        "calendar_id": owner.calendar_id,
        "in_series": in_series,
        "sort_at": sort_at,
        "end_at": end,
        "all_day": begin.day is not None,
        "long_span": end - sort_at > instances.LONG_SPAN,
        "original_at": sort_instant(original) if original is not None else None,
        "original_zone": None
        if original is None or original.day is not None
        else original.timezone,
        "exception_id": exception_id,
        "bookkeeping_id": bookkeeping_id,
        "category": shown.category,
        "status": shown.status.value,
        "version": owner.version,
    }


def _chunks(bounds: tuple[datetime, datetime]) -> list[tuple[datetime, datetime]]:
    first, end = bounds
    found = []
    while first < end:
        step = min(end, first + CHUNK)
        found.append((first, step))
        first = step
    return found


def _series_rows(
    master: StoredEvent, own: Sequence[StoredEvent], bounds: tuple[datetime, datetime]
) -> tuple[list[dict[str, Any]], bool]:
    """The items of a series (`own`: its exceptions) over the horizon, as today's
    expansion lists them."""
    event = master.event
    series_id = series_id_of(master)
    if not event.recurrence:
        return _whole_master(master, own, bounds), False
    by_start = {sort_instant(e.event.original_start): e for e in own if e.event.original_start}
    by_event = {id(e.event): e for e in own}
    own_events = [e.event for e in own]
    key = str(master.id)
    duration = event.duration
    rows: dict[str, dict[str, Any]] = {}
    complete = True
    for low, high in _chunks(bounds):
        days = DayRange(low.date(), high.date())
        try:
            found = occurrences(
                event.recurrence,
                event.start,
                event.end,
                low,
                high,
                own_events,
                series_id=series_id,
                timezone=event.timezone,
                days=days,
            )
        except ValidationError:
            return [], False  # a rule calsync cannot expand: listed unexpanded only
        complete = complete and found.complete
        for value in found.starts:
            at = sort_instant(value)
            api_id = instance_id(key, value)
            if api_id in rows:
                continue
            end_at = _midnight(value.day + duration) if value.day is not None else None
            if end_at is None:
                assert value.instant is not None
                end_at = value.instant + duration
            keeper = by_start.get(at)
            rows[api_id] = _row(
                master,
                api_id,
                event,
                in_series=True,
                start=value,
                end_at=end_at,
                original=value,
                bookkeeping_id=keeper.id if keeper is not None else None,
            )
        for shown in found.exceptions:
            original = shown.original_start or shown.start
            api_id = instance_id(key, original)
            if api_id in rows:
                continue
            keeper = by_start.get(sort_instant(original))
            rows[api_id] = _row(
                master,
                api_id,
                shown,
                in_series=True,
                original=original,
                exception_id=by_event[id(shown)].id,
                bookkeeping_id=keeper.id if keeper is not None else None,
            )
    return list(rows.values()), not complete


def _whole_master(
    master: StoredEvent, own: Sequence[StoredEvent], bounds: tuple[datetime, datetime]
) -> list[dict[str, Any]]:
    """A row marked as a series but without rules (never one calsync wrote): listed as
    expansion lists it, the master itself as its one instance, when it meets the
    horizon."""
    event = master.event
    at = sort_instant(event.start)
    if not (at < bounds[1] and sort_instant(event.end) >= bounds[0]):
        return []
    keeper = next((e for e in own if e.event.original_start == event.start), None)
    api_id = instance_id(str(master.id), event.start)
    bookkeeping = keeper.id if keeper is not None else None
    return [
        _row(
            master, api_id, event, in_series=True, original=event.start, bookkeeping_id=bookkeeping
        )
    ]


# --- reading --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageQuery:
    """What `page` answers: an expanded list's window (instants and the caller's days),
    filters, and the page (`limit` items after the key `after`)."""

    user_id: uuid.UUID
    start: datetime
    end: datetime
    days: DayRange
    category: str | None
    calendar_id: uuid.UUID | None
    recurring: bool | None
    limit: int
    after: tuple[datetime, str] | None


def page(session: Session, query: PageQuery) -> list[ListedRow] | None:
    """The first `query.limit` items of the answer after `query.after`, in list order;
    `None` when the model cannot answer (no horizon yet, a window outside it, a change
    not re-expanded or a series cut short for this user): expand as before then.

    Called first in its session, it makes the session's reads one snapshot
    (`instance_pages.read_snapshot`), so the caller loads the rows as they were listed."""
    instance_pages.read_snapshot(session)
    window = instance_pages.Window(query.start, query.end, query.days.first, query.days.end)
    return instance_pages.listed_rows(
        session,
        query.user_id,
        window,
        limit=query.limit,
        after=query.after,
        category=query.category,
        calendar_id=query.calendar_id,
        in_series=query.recurring,
    )
