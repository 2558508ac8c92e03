"""The pull queue in the calendar rows: ``dirty``, ``sync_queued_at`` and ``next_poll_at``.

The statements of the coalescing rules of `calsync.sync.kicks` (which says when each
runs, and decides delays and poll slots). ``dirty`` says "something changed since the
last pull started", ``sync_queued_at`` says "a pull is queued or running". Every
transition is a conditional ``UPDATE`` under the row's lock, so the lock orders a
notification against the end of a pull and no kick is lost. The same per user for
calendar-list reads is `calsync.store.list_queue`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.store.tables import Calendar, User, WatchChannel

__all__ = [
    "BEHIND_SQL",
    "claim_due",
    "defer",
    "drop",
    "finish_pull",
    "mark_changed",
    "next_poll_expression",
    "place_polls",
    "poll_often_again",
    "pull_finished",
    "pull_started",
    "pulled_counts",
    "release",
    "release_all",
    "stranded",
    "unplaced_polls",
    "uuid_array_literal",
]

_calendars = cast(sa.Table, Calendar.__table__)
_users = cast(sa.Table, User.__table__)
_channels = cast(sa.Table, WatchChannel.__table__)
#: Calendars that a change notification must write: not dirty, or without a queued pull.
_BEHIND = sa.or_(_calendars.c.dirty.is_(False), _calendars.c.sync_queued_at.is_(None))

#: `_BEHIND` as PostgreSQL text for a raw (psycopg) connection, with one parameter: the
#: array of calendar ids, as an array literal (text: `uuid_array_literal`, cheaper to
#: pass than a list of UUIDs). An empty answer means `mark_changed` would write nothing.
BEHIND_SQL = (
    "SELECT id FROM calendars WHERE id = ANY(%s::uuid[])"
    " AND (dirty IS false OR sync_queued_at IS NULL)"
)


def uuid_array_literal(ids: Iterable[uuid.UUID]) -> str:
    """PostgreSQL's text form of an array of `ids` (``{a,b}``), the parameter of
    `BEHIND_SQL`."""
    return "{" + ",".join(map(str, ids)) + "}"


def mark_changed(
    session: Session, calendar_ids: Sequence[uuid.UUID], now: datetime
) -> list[sa.Row[Any]]:
    """Mark the calendars `calendar_ids` (sorted, distinct) dirty, and take the queue slot
    of those whose slot is free. Returns the rows whose slot this call took (``id``,
    ``last_pull_at``); unknown ids are ignored.

    A calendar already dirty with a pull queued is only read, not written, so a storm on
    one calendar costs reads, and its transactions commit without a disk flush. The rows
    to write are locked in id order first, so two processes marking overlapping sets
    cannot deadlock.
    """
    stale = list(
        session.scalars(
            sa.select(_calendars.c.id).where(_calendars.c.id.in_(calendar_ids), _BEHIND)
        )
    )
    if not stale:
        return []
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
    taken = {row.id for row in claimed}
    rest = [calendar_id for calendar_id in stale if calendar_id not in taken]
    if rest:
        session.execute(
            sa.update(_calendars)
            .where(_calendars.c.id.in_(rest), _calendars.c.dirty.is_(False))
            .values(dirty=True)
        )
    return list(claimed)


def release(session: Session, calendar_id: uuid.UUID, claimed_at: datetime) -> None:
    """Give back a queue slot taken at `claimed_at` whose pull could not be enqueued.

    The calendar stays dirty, so the scheduler's next sweep claims it again and enqueues
    the pull; a slot taken since by someone else is left alone.
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
    it at once (`calsync.sync.kicks.note_change`), as does the sweep's lost-kick read.
    Keeping the slot (as `finish_pull` does when a notification came meanwhile) left it
    taken by no job: the sign-in could not queue the pull, and the calendar waited a
    whole sync lease for the sweep (issue 15, decision F2)."""
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


def defer(session: Session, calendar_id: uuid.UUID, *, next_poll_at: datetime | None) -> None:
    """Free the queue slot of a pull the budget has no room for, leaving the calendar
    due: its next poll moves to `next_poll_at` when given (a poll), else it stays dirty
    (the sweep's lost-kick read finds it)."""
    values: dict[str, Any] = {"sync_queued_at": None}
    if next_poll_at is not None:
        values["next_poll_at"] = next_poll_at
    else:
        values["dirty"] = True
    session.execute(sa.update(_calendars).where(_calendars.c.id == calendar_id).values(**values))


def poll_often_again(session: Session, calendar_id: uuid.UUID, at: datetime) -> None:
    """Move the calendar's next safety-net poll to `at` (its slot of the short period)."""
    session.execute(
        sa.update(_calendars).where(_calendars.c.id == calendar_id).values(next_poll_at=at)
    )


def next_poll_expression(
    calendar_id: sa.ColumnElement[Any],
    now: sa.ColumnElement[datetime],
    often: sa.ColumnElement[datetime],
    rarely: sa.ColumnElement[datetime],
) -> sa.ColumnElement[datetime]:
    """SQL for the next safety-net poll of the calendar `calendar_id` pulled at `now`,
    for the statement that ends a pull (no round trip of its own): `rarely` (its slot of
    ``POLL_WITH_CHANNEL_SECONDS``), or when its live channel expires if that is sooner,
    while it has a live events channel; `often` (its slot of
    ``SAFETY_NET_INTERVAL_SECONDS``) without one (`calsync.sync.polling`)."""
    live_until = (
        sa.select(sa.func.max(sa.func.coalesce(_channels.c.expires_at, rarely)))
        .where(
            _channels.c.calendar_id == calendar_id,
            _channels.c.status == "active",
            sa.or_(_channels.c.expires_at.is_(None), _channels.c.expires_at > now),
        )
        .scalar_subquery()
    )
    return sa.case(
        (live_until.is_(None), often),
        (live_until < rarely, live_until),
        else_=rarely,
    )


def unplaced_polls(session: Session, *, limit: int) -> list[sa.Row[Any]]:
    """Up to `limit` calendars without a poll slot yet (``id``, ``last_synced_at``)."""
    return list(
        session.execute(
            sa.select(_calendars.c.id, _calendars.c.last_synced_at)
            .where(_calendars.c.next_poll_at.is_(None))
            .limit(limit)
        )
    )


def place_polls(session: Session, slots: Mapping[uuid.UUID, datetime]) -> None:
    """Store the first poll slot of each calendar of `slots` (one executemany)."""
    if slots:
        session.execute(
            sa.update(_calendars).where(_calendars.c.id == sa.bindparam("calendar_id")),
            [{"calendar_id": i, "next_poll_at": at} for i, at in slots.items()],
        )


def claim_due(
    session: Session,
    *,
    now: datetime,
    slot_lost_before: datetime,
    limit: int,
    poll_limit: int | None = None,
    kick_limit: int | None = None,
) -> list[sa.Row[Any]]:
    """Claim the calendars due for a pull at `now` (their queue slot taken from `now`) and
    return them (``id``, ``dirty``): dirty ones without a queued pull (a lost kick), those
    whose poll slot has come, and those whose slot was taken before `slot_lost_before`;
    only selected calendars of active users.

    Each kind is read through its own index, at most `limit` of each, most overdue
    first (`poll_limit` and `kick_limit`, when given, bound the polls and the lost kicks
    further), and claimed by id with the due condition checked again in the ``UPDATE``,
    so a row another scheduler or a pull changed meanwhile is left alone.
    """
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
    return list(rows)


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


def pulled_counts(session: Session, now: datetime) -> tuple[int, int]:
    """How many calendars are pulled (selected, of active users), and how many of those
    have a live events channel (active, not expired at `now`): two aggregate reads over
    indexed columns, for the budget's forecast (`calsync.sync.polling.scheduled_spend`)."""
    active = sa.select(_users.c.id).where(_users.c.status == "active")
    pulled = sa.and_(_calendars.c.selected.is_(True), _calendars.c.user_id.in_(active))
    live = sa.and_(
        _channels.c.status == "active",
        sa.or_(_channels.c.expires_at.is_(None), _channels.c.expires_at > now),
    )
    with_live = sa.select(_channels.c.calendar_id).where(live, _channels.c.calendar_id.is_not(None))
    total = session.scalar(sa.select(sa.func.count()).where(pulled)) or 0
    watched = (
        session.scalar(sa.select(sa.func.count()).where(pulled, _calendars.c.id.in_(with_live)))
        or 0
    )
    return total, watched
