"""The mass-deletion guard: a full listing may not wipe out a calendar on its own word.

A full listing (after a 410, or an audit) carries no tombstones for events deleted long
ago, so the reconcile step deletes the local rows it does not list. When that would delete
more than half of the rows calsync knows Google had, and more than `MIN_HELD` of them,
the listing is more likely wrong (a truncated answer, a glitch at Google, the wrong
credentials) than the user's intent, so those deletions are held:

- the rest of the listing is applied; the held rows stay as they are;
- the calendar is marked (``last_sync_status = "held"``, ``held_deletions`` and
  ``deletions_held_at`` on its row, a sync log row, ``calsync_deletion_holds_total``);
- its audit is brought forward by the recheck delay, so Google is listed again then
  (`calsync.sync.audit`);
- a later full listing that still lacks every held event, at least the delay after the
  hold, *agrees*: the held rows are deleted. One that lists any of them again
  *disagrees*: the hold is released and nothing of it is deleted. One that comes
  earlier than the delay decides nothing about the held events.

Deletions Google states (a cancelled tombstone, in any listing) are not guarded: they
are what the user did. The rows of a full listing's deletions that are judged are
computed by the reconcile step (`calsync.sync.reconcile`), which never offers rows with
unpushed local changes: those are left to the push.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from sqlalchemy.orm import Session

from calsync.store import calendars

__all__ = [
    "MIN_HELD",
    "Hold",
    "HoldOutcome",
    "Verdict",
    "judge",
    "read_hold",
    "save_hold",
]

#: A full listing's deletions are held only when there are more than this many (and
#: more than half of the rows known to be on Google): small calendars change wholesale.
MIN_HELD: Final = 20


@dataclass(frozen=True, slots=True)
class Hold:
    """Deletions held on a calendar: the Google ids, and when the hold was placed."""

    ids: frozenset[str]
    since: datetime


class HoldOutcome(StrEnum):
    """What a full listing did about held deletions."""

    HELD = "held"  # a new hold was placed (or an existing one grew)
    APPLIED = "applied"  # a second listing agreed: the held rows were deleted
    RELEASED = "released"  # a second listing disagreed: the hold is gone, nothing deleted


@dataclass(frozen=True, slots=True)
class Verdict:
    """The guard's decision for one full listing.

    `delete`: the Google ids whose rows to delete now; `hold`: the hold standing after the
    listing (None: none); `outcome`: what changed about holds (None: nothing).
    """

    delete: frozenset[str]
    hold: Hold | None
    outcome: HoldOutcome | None = None


def judge(
    *,
    unlisted: Collection[str],
    listed: Collection[str],
    known: int,
    previous: Hold | None,
    now: datetime,
    recheck_after: timedelta,
) -> Verdict:
    """Decide which of a full listing's deletions to apply and which to hold.

    `unlisted`: the Google ids of the rows the listing would delete (rows known to be on
    Google, not listed, without unpushed local changes); `listed`: the Google ids the
    listing holds as live events; `known`: how many rows of the calendar were on Google
    before the listing (the base of "more than half"); `previous`: the hold standing
    before the listing.
    """
    fresh = frozenset(unlisted)
    delete: frozenset[str] = frozenset()
    kept: frozenset[str] = frozenset()
    outcome: HoldOutcome | None = None
    if previous is not None:
        if not previous.ids.isdisjoint(listed):
            outcome = HoldOutcome.RELEASED  # Google lists held events again
        elif now < previous.since + recheck_after:
            kept = previous.ids  # too early to tell a lasting change from a glitch
            fresh -= previous.ids
        else:
            delete = previous.ids & fresh
            outcome = HoldOutcome.APPLIED
            fresh -= previous.ids
    if len(fresh) > MIN_HELD and 2 * len(fresh) > known:
        # A new hold, or a grown one: the new ids restart the clock.
        return Verdict(delete, Hold(kept | fresh, now), HoldOutcome.HELD)
    hold = Hold(kept, previous.since) if kept and previous is not None else None
    return Verdict(delete | fresh, hold, outcome)


# --- the hold on the calendar row ----------------------------------------------------------


def read_hold(session: Session, calendar_id: uuid.UUID) -> Hold | None:
    """The hold standing on a calendar (None: none)."""
    held = calendars.read_hold(session, calendar_id)
    return None if held is None else Hold(*held)


def save_hold(
    session: Session,
    calendar_id: uuid.UUID,
    hold: Hold | None,
    *,
    recheck_after: timedelta,
) -> None:
    """Store the hold standing after a full listing, with the calendar's sync status
    (``held`` while a hold stands, else ``ok``). While one stands the calendar's audit is
    due at the end of the recheck delay, which lists Google again."""
    if hold is None:
        calendars.save_hold(session, calendar_id, None, audit_at=None)
    else:
        held = (hold.ids, hold.since)
        calendars.save_hold(session, calendar_id, held, audit_at=hold.since + recheck_after)
