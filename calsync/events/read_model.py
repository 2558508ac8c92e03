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
everything else. After the commit it is two steps (decisions HC2-HC4): the owners'
series are first expanded over the *near* range (`near_range`: `NEAR_BEHIND` before
today to `NEAR_AHEAD` after) and recorded as held near, so that a window inside that
range is read from the model while any other is still expanded per request; then
`extend_owners` completes them over the rest of the horizon. API writes, splits, pulls
and pushes are all covered without any of them knowing: nothing that writes ``events``
through a session can miss it. This module makes the rows (`replace_owners`,
`extend_owners`; the caller holds the owners' row locks). Until a horizon exists
(`fill`, decision V8) the triggers record nothing: the model off costs writes (almost)
nothing.

Reading (`page`): a window wholly inside the horizon, for a user with no change left
to re-expand, no series whose expansion a bound cut short and no owner held near
short of the window, is one range scan
(`calsync.store.instance_pages.listed_rows`). Anything else answers `None`, and the caller
expands as before (`calsync.events.list_expansion`): just as correct, only slower.

The rows are made by `calsync.events.instance_rows` with the functions today's
expansion uses, so an item's row is what that expansion would list for any window
inside the range expanded; the differential test
(tests/integration/events/test_read_model.py) checks it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import EventTime
from calsync.domain.windows import DayRange
from calsync.events.instance_rows import (
    CHUNK,
    Range,
    series_documents,
    series_id_of,
    series_rows,
    single_document,
    sort_instant,
)
from calsync.store import instance_pages, instance_upkeep, instances
from calsync.store.chunks import chunks, ordered_ids
from calsync.store.event_queries import exceptions_of, load_shown
from calsync.store.events import StoredEvent
from calsync.store.instance_pages import ListedRow

__all__ = [
    "CHUNK",
    "HORIZON_AHEAD",
    "HORIZON_BEHIND",
    "NEAR_AHEAD",
    "NEAR_BEHIND",
    "ListedRow",
    "clear",
    "extend_owners",
    "fill",
    "keep",
    "near_range",
    "original_start",
    "owners_recorded",
    "page",
    "refresh_all",
    "replace_owners",
    "series_id_of",
    "sort_instant",
]

HORIZON_BEHIND: Final = timedelta(days=366)
"""How far before today series instances are held: the last twelve months, which
calendar clients page back through (decision X4; a window reaching further back is
expanded per request)."""
HORIZON_AHEAD: Final = timedelta(days=458)
"""How far after today: any 400-day window (the longest expanded list) starting within
the next two months, and every month of the next fifteen."""
NEAR_BEHIND: Final = timedelta(days=35)
"""How far before today the upkeep after the write expands a series first (decision
HC2): the current and the previous month, whichever day of the month it is."""
NEAR_AHEAD: Final = timedelta(days=70)
"""How far after today it does: the current month and the next two."""


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def original_start(row: ListedRow) -> EventTime | None:
    """The original start of an instance row (`None` for a single)."""
    if row.original_at is None:
        return None
    if row.original_zone is None:
        return EventTime.trusted(row.original_at.astimezone(UTC).date(), None, None)
    return EventTime.trusted(None, row.original_at.astimezone(UTC), row.original_zone)


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
    session: Session,
    owner_ids: Sequence[uuid.UUID],
    bounds: tuple[datetime, datetime],
    *,
    near: Range | None = None,
) -> None:
    """Replace the rows of these owners by what they list now: a few statements per
    batch; singles' rows are computed by the database, series' here. The caller holds
    the owners' row locks (`instances.lock_owners`, or `instance_upkeep.lock_free_owners`
    for the upkeep), so that two re-expansions of one owner never interleave.

    With `near` (a part of `bounds`), series with rules are expanded over it alone and
    only the singles that meet it get their documents; those owners are recorded as
    held near (``instance_incomplete`` with the range), so that a window outside `near`
    is expanded per request until `extend_owners` completes them (decision HC2)."""
    near = None if near == bounds else near
    for batch in chunks(ordered_ids(owner_ids), _BATCH):
        instances.delete_rows(session, batch)
        instances.insert_singles(session, batch)
        singles, far = instances.live_singles_near(session, batch, near)
        master_ids = instances.live_masters(session, batch)
        loaded = load_shown(session, singles + master_ids)
        documents = [single_document(loaded[i]) for i in singles if i in loaded]
        masters = [loaded[i] for i in master_ids if i in loaded]
        exceptions = exceptions_of(session, [(m.calendar_id, series_id_of(m)) for m in masters])
        rows: list[dict[str, Any]] = []
        cut: list[tuple[uuid.UUID, uuid.UUID]] = []
        held = list(far)
        shown: list[uuid.UUID] = []
        for master in masters:
            own = exceptions.get((master.calendar_id, series_id_of(master)), [])
            ranges = [near] if near is not None and master.event.recurrence else [bounds]
            found, short = series_rows(master, own, ranges)
            rows += found
            if short:
                cut.append((master.id, master.user_id))
            elif ranges[0] is near:
                held.append((master.id, master.user_id))
            documents += series_documents(master, own)
            shown += [e.id for e in own]
        instances.replace_documents(session, [*batch, *shown], documents)
        instances.insert_rows(session, rows, cut, held=held, near=near)


_BATCH: Final = 1000
"""Owners re-expanded together (one lock, delete and insert each)."""


def add_new_singles(
    session: Session, singles: Sequence[StoredEvent], *, records: Sequence[int] = ()
) -> None:
    """Store the items and documents of live singles that this transaction has just
    inserted, from the rows as written (decision HI4): what `replace_owners` stores for
    them, without locking and re-reading rows the caller holds and has in hand, nor
    deleting items, documents or held ranges that a new row cannot have yet (decision
    HV1: not even the documents' ``DELETE``); and remove the `records` (``instance_dirty``
    ids) that they answer, with them (one statement on PostgreSQL, decision HV6)."""
    ids = ordered_ids([single.id for single in singles])
    documents = [single_document(s) for s in singles]
    instances.add_new_singles(session, ids, documents, records=records)


def extend_owners(
    session: Session, owner_ids: Sequence[uuid.UUID], bounds: tuple[datetime, datetime]
) -> None:
    """Complete the owners among `owner_ids` that `replace_owners` held only near today
    (decision HC2): their series' items over the rest of the horizon (leaving out the
    API ids already stored), their far singles' documents, and forget that they were
    held. An owner re-expanded since (its held row gone) is left alone. The caller holds
    the owners' row locks, as for `replace_owners`."""
    held = instances.held_near(session, owner_ids)
    if not held:
        return
    ids = sorted(held)
    singles = instances.live_singles(session, ids)
    master_ids = instances.live_masters(session, ids)
    loaded = load_shown(session, singles + master_ids)
    documents = [single_document(loaded[i]) for i in singles if i in loaded]
    masters = [loaded[i] for i in master_ids if i in loaded]
    stored = instances.api_ids_of(session, master_ids)
    exceptions = exceptions_of(session, [(m.calendar_id, series_id_of(m)) for m in masters])
    rows: list[dict[str, Any]] = []
    cut: list[tuple[uuid.UUID, uuid.UUID]] = []
    for master in masters:
        own = exceptions.get((master.calendar_id, series_id_of(master)), [])
        low, high = held[master.id]
        found, short = series_rows(master, own, [(bounds[0], low), (high, bounds[1])])
        rows += [row for row in found if (master.id, row["api_id"]) not in stored]
        if short:
            cut.append((master.id, master.user_id))
    instances.replace_documents(session, singles, documents)
    instances.forget_held(session, ids)
    instances.insert_rows(session, rows, cut)


def near_range(bounds: Range) -> Range:
    """The part of the horizon `bounds` that the upkeep after the write fills first
    (decision HC2): from `NEAR_BEHIND` before the horizon's today to `NEAR_AHEAD` after."""
    today = bounds[0] + HORIZON_BEHIND
    return max(bounds[0], today - NEAR_BEHIND), min(bounds[1], today + NEAR_AHEAD)


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


def page(session: Session, query: PageQuery, *, snapshot: bool = True) -> list[ListedRow] | None:
    """The first `query.limit` items of the answer after `query.after`, in list order;
    `None` when the model cannot answer (no horizon yet, a window outside it, a change
    not re-expanded or a series cut short for this user): expand as before then.

    Called first in its session, it makes the session's reads one snapshot
    (`instance_pages.read_snapshot`), so the caller loads the rows as they were listed.
    Without `snapshot`, the page is one statement outside any transaction (its own
    snapshot, decision HN1), for a caller that loads nothing after it; when the model
    declines, the session's later reads (the expansion) are one snapshot as above."""
    if snapshot:
        instance_pages.read_snapshot(session)
    window = instance_pages.Window(query.start, query.end, query.days.first, query.days.end)
    rows = instance_pages.listed_rows(
        session,
        query.user_id,
        window,
        limit=query.limit,
        after=query.after,
        category=query.category,
        calendar_id=query.calendar_id,
        in_series=query.recurring,
        alone=not snapshot,
    )
    if rows is None and not snapshot:
        instance_pages.read_snapshot(session)  # the caller expands: in one snapshot, as before
    return rows
