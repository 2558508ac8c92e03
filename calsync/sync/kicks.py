"""Coalescing: at most one queued pull per calendar, however many notifications arrive.

The state lives in the calendar row, so it holds across API and worker processes:
``dirty`` says "something changed since the last pull started", ``sync_queued_at`` says
"a pull is queued or running". Every transition is a conditional ``UPDATE`` under the
row's lock, so the lock orders a notification against the end of a pull and no kick is
lost:

- a notification sets ``dirty``; it claims the queue slot (and the caller enqueues) only
  when ``sync_queued_at`` is empty (a burst of notifications for many calendars is
  recorded at once by `note_changes`);
- a pull clears ``dirty`` when it starts; when it ends it frees the slot only if nothing
  made the calendar dirty meanwhile, else it keeps the slot and enqueues one more pull,
  delayed so that pulls of one calendar start at least ``min_interval`` apart.

A lost message leaves the slot taken; the scheduler's sweep (`claim_stale`) re-enqueues
calendars whose slot is older than the lease, so nothing waits for ever.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.tables import Calendar, User
from calsync.store.types import UTCDateTime

__all__ = [
    "BEHIND_SQL",
    "Claim",
    "DuePull",
    "calendar_list_stranded",
    "claim_due",
    "claim_due_pulls",
    "drop",
    "finish_pull",
    "note_change",
    "note_changes",
    "poll_slot",
    "pull_delay",
    "pull_finished",
    "pull_started",
    "release",
    "release_all",
    "stranded",
    "uuid_array_literal",
]

_calendars = cast(sa.Table, Calendar.__table__)
_users = cast(sa.Table, User.__table__)
#: Calendars that a change notification must write: not dirty, or without a queued pull.
_BEHIND = sa.or_(_calendars.c.dirty.is_(False), _calendars.c.sync_queued_at.is_(None))

#: `_BEHIND` as PostgreSQL text for a raw (psycopg) connection, with one parameter: the
#: array of calendar ids, as an array literal (text: `uuid_array_literal`, cheaper to
#: pass than a list of UUIDs). An empty answer means `note_changes` would write nothing.
BEHIND_SQL = (
    "SELECT id FROM calendars WHERE id = ANY(%s::uuid[])"
    " AND (dirty IS false OR sync_queued_at IS NULL)"
)


def uuid_array_literal(ids: Iterable[uuid.UUID]) -> str:
    """PostgreSQL's text form of an array of `ids` (``{a,b}``), the parameter of
    `BEHIND_SQL`."""
    return "{" + ",".join(map(str, ids)) + "}"


@dataclass(frozen=True, slots=True)
class Claim:
    """The queue slot of a calendar was free and is now taken: enqueue one pull.

    `delay` is how long that pull must wait so that pulls start `min_interval` apart.
    """

    delay: float


def note_change(
    session: Session, calendar_id: uuid.UUID, now: datetime, *, min_interval: float = 0.0
) -> Claim | None:
    """Record a change notification. A `Claim` when the caller must enqueue a pull."""
    return note_changes(session, [calendar_id], now, min_interval=min_interval).get(calendar_id)


def note_changes(
    session: Session,
    calendar_ids: Collection[uuid.UUID],
    now: datetime,
    *,
    min_interval: float = 0.0,
) -> dict[uuid.UUID, Claim]:
    """Record change notifications for several calendars at once.

    Returns a `Claim` for each calendar whose queue slot this call took (the caller
    enqueues one pull for each); the others were marked dirty for the queued or running
    pull to see. Unknown ids are ignored.

    A calendar already dirty with a pull queued is only read, not written: the pull that
    will clear ``dirty`` has not started yet (it clears it when it starts), so it lists
    Google after this notification arrived and sees its change. A storm on one calendar
    thus costs reads, and its transactions commit without a disk flush. The rows to
    write are locked in id order first, so two processes recording overlapping sets
    cannot deadlock.
    """
    ids = sorted(set(calendar_ids))
    if not ids:
        return {}
    stale = list(
        session.scalars(sa.select(_calendars.c.id).where(_calendars.c.id.in_(ids), _BEHIND))
    )
    if not stale:
        return {}
    session.execute(
        sa.select(_calendars.c.id)
        .where(_calendars.c.id.in_(stale))
        .order_by(_calendars.c.id)
        .with_for_update()
    )
    claimed = session.execute(
        sa.update(_calendars)
        .where(_calendars.c.id.in_(stale), _calendars.c.sync_queued_at.is_(None))
        .values(dirty=True, sync_queued_at=now)
        .returning(_calendars.c.id, _calendars.c.last_pull_at)
    ).all()
    claims = {row.id: Claim(pull_delay(row.last_pull_at, now, min_interval)) for row in claimed}
    rest = [calendar_id for calendar_id in stale if calendar_id not in claims]
    if rest:
        session.execute(
            sa.update(_calendars)
            .where(_calendars.c.id.in_(rest), _calendars.c.dirty.is_(False))
            .values(dirty=True)
        )
    return claims


def release(session: Session, calendar_id: uuid.UUID, claimed_at: datetime) -> None:
    """Give back a queue slot taken at `claimed_at` whose pull could not be enqueued.

    The calendar stays dirty, so the scheduler's next sweep (`claim_due`) claims it
    again and enqueues the pull; a slot taken since by someone else is left alone.
    """
    session.execute(
        sa.update(_calendars)
        .where(_calendars.c.id == calendar_id, _calendars.c.sync_queued_at == claimed_at)
        .values(sync_queued_at=None)
    )


def pull_started(now: datetime | sa.BindParameter[datetime]) -> dict[str, Any]:
    """The calendar row's values when a pull begins (changes from now on need another
    pull), for the statement that takes the pull's lease (`now` may be its parameter)."""
    return {
        "dirty": False,
        "last_pull_at": now,
        "sync_queued_at": sa.func.coalesce(_calendars.c.sync_queued_at, now),
    }


def pull_finished(now: datetime | sa.BindParameter[datetime]) -> dict[str, Any]:
    """The calendar row's values when a pull ends, for the statement that ends it: the
    queue slot is freed, unless the calendar became dirty meanwhile, when it stays taken
    (from `now`, which may be the statement's parameter) for one more pull. Return
    ``dirty`` from that statement to know which."""
    when = (
        now
        if isinstance(now, sa.BindParameter)
        else sa.literal(now, _calendars.c.sync_queued_at.type)
    )
    return {"sync_queued_at": sa.case((_calendars.c.dirty.is_(True), when), else_=sa.null())}


def finish_pull(session: Session, calendar_id: uuid.UUID, now: datetime) -> bool:
    """A pull ended (see `pull_finished`). True when the calendar became dirty meanwhile:
    enqueue one more pull. Otherwise the queue slot is freed, so the next notification
    enqueues at once.
    """
    dirty = session.execute(
        sa.update(_calendars)
        .where(_calendars.c.id == calendar_id)
        .values(**pull_finished(now))
        .returning(_calendars.c.dirty)
    ).scalar_one_or_none()
    return bool(dirty)


def stranded(session: Session, calendar_id: uuid.UUID) -> None:
    """A pull ended without listing because the owner's grant is revoked: free the queue
    slot but keep the calendar dirty, so the pull queued when they sign in again claims
    it at once (`note_change`), as does the sweep's lost-kick read. Keeping the slot
    (as `finish_pull` does when a notification came meanwhile) left it taken by no job:
    the sign-in could not queue the pull, and the calendar waited a whole sync lease for
    the sweep (issue 15, decision F2)."""
    session.execute(
        sa.update(_calendars).where(_calendars.c.id == calendar_id).values(sync_queued_at=None)
    )


def drop(session: Session, calendar_id: uuid.UUID) -> None:
    """Forget the queue slot and the dirty mark of a calendar that is not pulled."""
    session.execute(
        sa.update(_calendars)
        .where(_calendars.c.id == calendar_id)
        .values(dirty=False, sync_queued_at=None)
    )


def pull_delay(last_pull_at: datetime | None, now: datetime, min_interval: float) -> float:
    """Seconds to wait before the next pull so that pulls start `min_interval` apart."""
    if last_pull_at is None:
        return 0.0
    return max(0.0, (last_pull_at + timedelta(seconds=min_interval) - now).total_seconds())


#: The origin of every calendar's poll slots.
_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
#: Calendars given their first poll slot per sweep (bounds a tick's work after an upgrade).
PLACE_PER_SWEEP: Final = 5000
#: At most this many calendars per kind of due work (lost kick, safety-net poll, lost
#: slot) are claimed per sweep; the next sweep takes the rest, most overdue first.
CLAIM_PER_SWEEP: Final = 5000


def poll_slot(calendar_id: uuid.UUID, after: datetime, period: timedelta) -> datetime:
    """The first safety-net poll time of `calendar_id` strictly after `after`.

    A calendar's polls fall `period` apart at an offset of the period that its (random)
    id gives, so the polls of many calendars spread evenly over the period however they
    were synced (calendars synced together do not stay together), and a calendar is
    polled at most `period` after its last pull: a dropped notification still waits at
    most one period. Deterministic, so every scheduler agrees.
    """
    seconds = max(1, int(period.total_seconds()))
    offset = timedelta(seconds=calendar_id.int % seconds)
    elapsed = (after - _EPOCH - offset) // timedelta(seconds=seconds)
    return _EPOCH + offset + (elapsed + 1) * timedelta(seconds=seconds)


def claim_due(
    session: Session,
    *,
    now: datetime,
    poll_every: timedelta,
    slot_lost_before: datetime,
    limit: int = CLAIM_PER_SWEEP,
) -> list[uuid.UUID]:
    """The ids of `claim_due_pulls` (every kind up to `limit`)."""
    due = claim_due_pulls(
        session, now=now, poll_every=poll_every, slot_lost_before=slot_lost_before, limit=limit
    )
    return [pull.calendar_id for pull in due]


@dataclass(frozen=True, slots=True)
class DuePull:
    """A calendar `claim_due_pulls` claimed; `dirty`: a notification asked for it (a lost
    kick), else it is the safety net's poll (or a lost slot of one)."""

    calendar_id: uuid.UUID
    dirty: bool


def claim_due_pulls(
    session: Session,
    *,
    now: datetime,
    poll_every: timedelta,
    slot_lost_before: datetime,
    limit: int = CLAIM_PER_SWEEP,
    poll_limit: int | None = None,
    kick_limit: int | None = None,
) -> list[DuePull]:
    """Claim the calendars the scheduler must pull now, and return them.

    Due: dirty calendars without a queued pull (a kick was lost), calendars whose
    safety-net poll (``next_poll_at``, see `poll_slot`) has come (the safety net for
    dropped notifications), and calendars whose queue slot was taken before
    `slot_lost_before` (its message was lost or its worker died). Only selected calendars
    of active users. Calendars not yet placed in the poll period get their slot first
    (after their last sync; never synced: due now), at most `PLACE_PER_SWEEP` per call.

    The work is O(due rows), not O(calendars): each kind is read through its own index,
    at most `limit` of each (most overdue first; `poll_limit` and `kick_limit`, when
    given, bound the polls and the lost kicks further: what the daily budget has room
    for, the rest staying due), and claimed by id with the due condition checked again in
    the ``UPDATE``, so a row another scheduler or a pull changed meanwhile is left alone.
    """
    _place_polls(session, now=now, period=poll_every)
    free = _calendars.c.sync_queued_at.is_(None)
    # ``dirty`` itself, not ``dirty IS true``: PostgreSQL matches the partial index's
    # predicate only in this form.
    lost_kick = sa.and_(free, _calendars.c.dirty)
    poll = sa.and_(free, _calendars.c.next_poll_at <= now)
    lost_slot = _calendars.c.sync_queued_at < slot_lost_before
    # The calendars that are pulled at all, in every read: an unselected calendar or one
    # of a disabled user is never claimed, so without this it would stay "most overdue"
    # for ever and fill every bounded read, starving the due ones behind it.
    active = sa.select(_users.c.id).where(_users.c.status == "active")
    pulled = sa.and_(_calendars.c.selected.is_(True), _calendars.c.user_id.in_(active))
    candidates: set[uuid.UUID] = set()
    for condition, order, most in (
        (lost_kick, _calendars.c.id, kick_limit),
        (poll, _calendars.c.next_poll_at, poll_limit),
        (lost_slot, _calendars.c.sync_queued_at, limit),
    ):
        bound = limit if most is None else min(limit, most)
        if bound <= 0:
            continue
        candidates.update(
            session.scalars(
                sa.select(_calendars.c.id).where(condition, pulled).order_by(order).limit(bound)
            )
        )
    if not candidates:
        return []
    rows = session.execute(
        sa.update(_calendars)
        .where(_calendars.c.id.in_(sorted(candidates)), sa.or_(lost_kick, poll, lost_slot), pulled)
        .values(sync_queued_at=now)
        .returning(_calendars.c.id, _calendars.c.dirty)
    )
    return [DuePull(row.id, bool(row.dirty)) for row in rows]


def _place_polls(session: Session, *, now: datetime, period: timedelta) -> None:
    """Give calendars without a poll slot their first one (see `claim_due`)."""
    unplaced = session.execute(
        sa.select(_calendars.c.id, _calendars.c.last_synced_at)
        .where(_calendars.c.next_poll_at.is_(None))
        .limit(PLACE_PER_SWEEP)
    ).all()
    if unplaced:
        session.execute(
            sa.update(_calendars).where(_calendars.c.id == sa.bindparam("calendar_id")),
            [
                {
                    "calendar_id": row.id,
                    "next_poll_at": now
                    if row.last_synced_at is None
                    else poll_slot(row.id, row.last_synced_at, period),
                }
                for row in unplaced
            ],
        )


# Calendar lists: the same coalescing per user, for calendar-list notifications (a storm
# of them must cost a constant number of calendar-list reads, not one each).


def note_calendar_list_change(session: Session, user_id: uuid.UUID, now: datetime) -> bool:
    """A calendar-list notification for `user_id`: mark the list changed, and claim its
    queue slot if it is free. True when the slot was claimed: enqueue one read of the
    list; False when one is queued or running (it, or the one it leads to, will see the
    change)."""
    claimed = session.execute(
        sa.update(_users)
        .where(_users.c.id == user_id, _users.c.calendars_queued_at.is_(None))
        .values(calendars_dirty=True, calendars_queued_at=now)
        .returning(_users.c.id)
    ).first()
    if claimed is None:
        session.execute(
            sa.update(_users)
            .where(_users.c.id == user_id, _users.c.calendars_dirty.is_(False))
            .values(calendars_dirty=True)
        )
    return claimed is not None


def calendar_list_started(session: Session, user_id: uuid.UUID, now: datetime) -> None:
    """A read of the user's calendar list begins: later notifications need another one.
    Takes the queue slot too (from `now`), so a read that was not queued through
    `note_calendar_list_change` (a retry, the sweep) is counted as running."""
    session.execute(
        sa.update(_users)
        .where(_users.c.id == user_id)
        .values(
            calendars_dirty=False,
            calendars_queued_at=sa.func.coalesce(_users.c.calendars_queued_at, now),
        )
    )


def calendar_list_finished(session: Session, user_id: uuid.UUID, now: datetime) -> bool:
    """A read of the user's calendar list ended: free the queue slot unless the list
    changed meanwhile. True when it did: the slot stays taken (from `now`) and the caller
    enqueues one more read."""
    dirty = session.execute(
        sa.update(_users)
        .where(_users.c.id == user_id)
        .values(
            calendars_queued_at=sa.case(
                (_users.c.calendars_dirty.is_(True), sa.literal(now, UTCDateTime())),
                else_=sa.null(),
            )
        )
        .returning(_users.c.calendars_dirty)
    ).scalar_one_or_none()
    return bool(dirty)


def calendar_list_stranded(session: Session, user_id: uuid.UUID) -> None:
    """A read of the user's calendar list stopped because their grant is revoked: free
    its queue slot and keep the list marked changed, so the first calendar-list
    notification after they sign in again reads it at once instead of waiting a whole
    sync lease for `claim_lost_calendar_lists` (decision F4)."""
    session.execute(
        sa.update(_users)
        .where(_users.c.id == user_id)
        .values(calendars_queued_at=None, calendars_dirty=True)
    )


def claim_lost_calendar_lists(
    session: Session, *, now: datetime, slot_lost_before: datetime
) -> list[uuid.UUID]:
    """Claim again the calendar-list reads whose queue slot was taken before
    `slot_lost_before` (the message was lost, or its worker died), of active users, and
    return their user ids."""
    rows = session.execute(
        sa.update(_users)
        .where(_users.c.calendars_queued_at < slot_lost_before, _users.c.status == "active")
        .values(calendars_queued_at=now)
        .returning(_users.c.id)
    )
    return [row.id for row in rows]


def release_all(session: Session) -> None:
    """Free every queue slot (pulls and calendar-list reads) and every sync lease.

    Only for the start of the one process of an embedded installation (``calsync
    dev``): its broker lived in memory, so every message queued and every job running
    when it last stopped died with it. Without this, each calendar with a lost pull waited
    a whole sync lease before the scheduler's sweep claimed it again; freed, a dirty one
    is claimed by the next sweep. Never call it while other processes work.
    """
    session.execute(
        sa.update(_calendars)
        .where(
            sa.or_(
                _calendars.c.sync_queued_at.is_not(None), _calendars.c.sync_lease_owner.is_not(None)
            )
        )
        .values(sync_queued_at=None, sync_lease_owner=None, sync_lease_until=None)
    )
    session.execute(
        sa.update(_users)
        .where(_users.c.calendars_queued_at.is_not(None))
        .values(calendars_queued_at=None)
    )
