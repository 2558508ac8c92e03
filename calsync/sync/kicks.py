"""Coalescing: at most one queued pull per calendar, however many notifications arrive.

The state lives in the calendar row (`calsync.store.pull_queue` holds the statements), so
it holds across API and worker processes: ``dirty`` says "something changed since the
last pull started", ``sync_queued_at`` says "a pull is queued or running". Every
transition is a conditional ``UPDATE`` under the row's lock, so the lock orders a
notification against the end of a pull and no kick is lost:

- a notification sets ``dirty``; it claims the queue slot (and the caller enqueues) only
  when ``sync_queued_at`` is empty (a burst of notifications for many calendars is
  recorded at once by `note_changes`);
- a pull clears ``dirty`` when it starts; when it ends it frees the slot only if nothing
  made the calendar dirty meanwhile (`pull_queue.finish_pull`), else it keeps the slot
  and enqueues one more pull, delayed so that pulls of one calendar start at least
  ``min_interval`` apart (`pull_delay`).

A lost message leaves the slot taken; the scheduler's sweep (`claim_due_pulls`)
re-enqueues calendars whose slot is older than the lease, so nothing waits for ever.
This module keeps the rules (when a pull may start, each calendar's poll slots); the
same per user for calendar lists is `calsync.store.list_queue`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy.orm import Session

from calsync.store import pull_queue

__all__ = [
    "CLAIM_PER_SWEEP",
    "PLACE_PER_SWEEP",
    "Claim",
    "DuePull",
    "claim_due",
    "claim_due_pulls",
    "note_change",
    "note_changes",
    "poll_slot",
    "pull_delay",
]


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
    claimed = pull_queue.mark_changed(session, ids, now)
    return {row.id: Claim(pull_delay(row.last_pull_at, now, min_interval)) for row in claimed}


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
    rows = pull_queue.claim_due(
        session,
        now=now,
        slot_lost_before=slot_lost_before,
        limit=limit,
        poll_limit=poll_limit,
        kick_limit=kick_limit,
    )
    return [DuePull(row.id, bool(row.dirty)) for row in rows]


def _place_polls(session: Session, *, now: datetime, period: timedelta) -> None:
    """Give calendars without a poll slot their first one (see `claim_due_pulls`): after
    their last sync; never synced: due now."""
    unplaced = pull_queue.unplaced_polls(session, limit=PLACE_PER_SWEEP)
    pull_queue.place_polls(
        session,
        {
            row.id: now
            if row.last_synced_at is None
            else poll_slot(row.id, row.last_synced_at, period)
            for row in unplaced
        },
    )
