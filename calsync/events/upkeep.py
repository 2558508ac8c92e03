"""Keeping the read model (`calsync.events.read_model`) after the writes (decisions Z1-Z5).

Triggers on ``events`` and ``event_attendees`` record every change of what a list shows
in ``instance_dirty`` (V2, X2), in the writing transaction; a user with a record is
listed by per-request expansion (`read_model.page` declines: correct, slower). This
module re-expands the owners those records touch and removes the records:

- **in the writing transaction, for an API request's write** (`refresh_written`, the
  session's ``before_commit``): a request's transaction with at most `INLINE_RECORDS`
  records re-expands their owners before it commits - a few milliseconds for one event
  or series - so the writer's next list is read from the model (Z2);
- **in the writing transaction, for a push's success of a live single** (`refresh_written`
  with `calsync.store.db.note_pushed`): only the single's document changed (its sync
  state, Google's id), which is replaced, and its records removed, before the commit
  (decision IG2);
- **after the commit, for everything else** (pulls, full syncs, other pushes, splits too
  large for the request): the session asks for a run (`watch`'s kick, the
  ``refresh_read_model`` job, after the commit), and `catch_up` re-expands the records
  in transactions of `BATCH` records, oldest first, over the near part of the horizon
  only (`read_model.near_range`: those users' near windows are read from the model
  as soon as their batch commits), then completes the owners held near over the rest
  of it, `BATCH` owners a transaction (decisions HC2-HC4); the scheduler's sweep kicks
  a run while records or owners held near are left (a kick lost to a crash between the
  commit and the job).

Claims are by record id, and only the claimed records are removed: a change recorded
while its owner is re-expanded keeps its record, and its user's lists stay expanded
until a later run re-expands the owner again. Owners are locked without waiting
(`instance_upkeep.lock_owners_found`): an owner a writer or another run holds is left
with its records for a later run, so runs never wait for writers or for each other,
and several workers can run at once (Z3).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import EventStatus
from calsync.events import read_model
from calsync.events.instance_rows import single_document
from calsync.store import instance_upkeep, instances
from calsync.store.chunks import ordered_ids
from calsync.store.db import in_request, pushed_single
from calsync.store.events import WRITTEN_KEY, StoredEvent
from calsync.store.instance_upkeep import Recorded

__all__ = [
    "BATCH",
    "INLINE_RECORDS",
    "CatchUp",
    "catch_up",
    "counted",
    "pending",
    "records_uncounted",
    "refresh_written",
    "watch",
]

logger = logging.getLogger(__name__)

INLINE_RECORDS: Final = 64
"""The most records an API request's transaction re-expands before it commits (a
create, update or delete records 1-2 per row and one per attendee row changed); a
larger one (a split of a long series with many exceptions) asks for a run instead."""
BATCH: Final = 1000
"""Records one transaction of `catch_up` claims (a full sync of 10,000 events records
about 10,000: each batch holds its owners' row locks for a fraction of a second)."""
RUN_FOR: Final = 30.0
"""Seconds one `catch_up` works before it returns with work left (its job then queues
another run), so that one job never holds a worker for a whole backlog."""

KICK_KEY: Final = "calsync.read_model.kick"
"""Session flag: this transaction left records for a run after its commit."""
_CREATED: Final = "calsync.read_model.created"
"""Session entry: the live singles this transaction created, by id (`created`)."""
_IN_UPKEEP: Final = "calsync.read_model.in_upkeep"
"""Session flag: the upkeep is running in it (its savepoint's commit fires the session's
``before_commit`` again, and its own statements flag the session as written)."""


@dataclass(frozen=True, slots=True)
class CatchUp:
    """What a `catch_up` did: records removed; records left to a later run because an
    owner was held by another transaction (`held`: worth a run again soon) or because
    its re-expansion failed (`failed`: logged, retried by the sweep's runs); whether it
    stopped with more records waiting (its time was up)."""

    cleared: int
    held: int
    failed: int
    more: bool


def created(session: Session, single: StoredEvent) -> None:
    """Note that this transaction has just inserted `single`, a new live single that it
    will not change again: if the transaction's records are all of such rows, the inline
    upkeep stores their items from them rather than re-reading them (decision HI4)."""
    if not single.event.is_recurring and not single.event.is_exception:
        session.info.setdefault(_CREATED, {})[single.id] = single


def refresh_written(session: Session) -> None:
    """The session's ``before_commit``: re-expand an API request's few recorded changes
    in its own transaction, and replace a pushed single's document in its push's
    (`_pushed_document`); for any other transaction with records, ask for a run after
    the commit (`watch`). Costs nothing for a transaction that wrote no row, and one
    indexed read of ``instance_dirty`` for one that did while the model is off.

    Never fails the write for its own reasons: the general upkeep runs in a savepoint;
    if it raises, the savepoint is rolled back, the records stay (the users' lists are
    expanded until a run takes them), a run is asked for, and the error is logged. A
    create's new singles are stored without a savepoint (decision HV5): their statements
    only add rows keyed by rows this transaction wrote and remove records it holds, so
    they can fail only as its commit would (the server or the connection); such a
    database error fails the write (on PostgreSQL it has aborted the transaction, whose
    ``COMMIT`` would otherwise roll it back without an error: decision RV1). A Python
    error before or between them leaves the records, as above."""
    if session.info.get(_IN_UPKEEP) or not session.info.pop(WRITTEN_KEY, False):
        return  # (the savepoint's own commit calls this hook again)
    fresh: dict[uuid.UUID, StoredEvent] = session.info.pop(_CREATED, {})
    if not in_request():
        pushed = pushed_single(session)
        if pushed is not None and _pushed_document(session, pushed):
            return
        if instance_upkeep.recorded_here(session, up_to=1):
            session.info[KICK_KEY] = True
        return
    # An API request claims its own records at once: one read where a count and then a
    # claim were two (decision HI2). Claimed outside the savepoint, they stay locked to
    # this transaction if the savepoint is rolled back, and are a run's after the commit.
    claimed = instance_upkeep.claim(session, limit=INLINE_RECORDS + 1, mine=True)
    if not claimed:
        return  # nothing recorded, or the model is off (decision V8)
    if len(claimed) > INLINE_RECORDS:
        session.info[KICK_KEY] = True
        return
    session.info[_IN_UPKEEP] = True
    singles: list[StoredEvent] | None = None
    try:
        singles = _new_singles(claimed, fresh)
        if singles is not None:
            _store_new_singles(session, claimed, singles)
        else:
            with session.begin_nested():
                if _inline(session, claimed):
                    session.info[KICK_KEY] = True
    except DBAPIError:
        if singles is not None:
            # No savepoint to roll back to: on PostgreSQL the transaction is aborted,
            # and its COMMIT would be a silent ROLLBACK after a 201 (decision RV1).
            raise
        logger.exception("read model upkeep failed; lists of the users touched are expanded")
        session.info[KICK_KEY] = True
    except Exception:
        logger.exception("read model upkeep failed; lists of the users touched are expanded")
        session.info[KICK_KEY] = True
    finally:
        session.info.pop(_IN_UPKEEP, None)
    session.info.pop(WRITTEN_KEY, None)  # the model's own writes


def records_uncounted(session: Session) -> bool:
    """Whether `refresh_written` would count this transaction's records before its
    commit, and ask for a run if there are any: a transaction that wrote rows the
    triggers may record, not an API request's (it claims them) nor a push's success
    (its pushed single's document). Its last statement may count them itself and hand
    the count to `counted` (a pull's sync log row, decision IO2)."""
    return (
        not session.info.get(_IN_UPKEEP)
        and bool(session.info.get(WRITTEN_KEY))
        and not in_request()
        and pushed_single(session) is None
    )


def counted(session: Session, recorded: int) -> None:
    """This transaction's records were counted by its last statement (`recorded`, of a
    count `records_uncounted` allowed): its commit reads nothing, and asks for a run if
    any. A write after this one flags the session again, and is counted at the commit."""
    session.info.pop(WRITTEN_KEY, None)
    if recorded:
        session.info[KICK_KEY] = True


def _pushed_document(session: Session, single: StoredEvent) -> bool:
    """Keep the model of a push's success of `single` (`calsync.store.db.note_pushed`):
    if this transaction's records all name that single, replace its document and remove
    them (two statements where a run was a job and three transactions, decision IG2).
    False (nothing done, the records left to a run) if another row is recorded, or the
    single has no document (held near, or its item is not stored yet: a run stores it).
    True also when nothing is recorded (the model is off). On SQLite, whose records do
    not tell which transaction wrote them, the records may include an earlier writer's
    (a pull's that moved the single, its run still to come): the single is re-expanded
    instead, item and document (review RY2)."""
    claimed = instance_upkeep.claim(session, limit=INLINE_RECORDS + 1, mine=True)
    if not claimed:
        return True
    if any(r.event_id != single.id or r.series_ref for r in claimed):
        return False
    if not instance_upkeep.records_name_their_writer(session):
        return _reexpanded(session, claimed)
    try:
        body = single_document(single)["body"]
    except Exception:
        logger.exception("read model upkeep failed; a run will re-list the pushed event")
        return False
    return instance_upkeep.replace_document(
        session, single.id, body, records=[r.id for r in claimed]
    )


def _reexpanded(session: Session, claimed: Sequence[Recorded]) -> bool:
    """Re-expand the owners of `claimed` in a savepoint, as a request's inline upkeep
    does; whether every record was removed (else, or on an error, logged, a run is
    asked for)."""
    session.info[_IN_UPKEEP] = True
    try:
        with session.begin_nested():
            kept = _inline(session, claimed)
    except Exception:
        logger.exception("read model upkeep failed; a run will re-list the pushed event")
        return False
    finally:
        session.info.pop(_IN_UPKEEP, None)
        session.info.pop(WRITTEN_KEY, None)  # the model's own writes
    return not kept


def _new_singles(
    claimed: Sequence[Recorded], fresh: dict[uuid.UUID, StoredEvent]
) -> list[StoredEvent] | None:
    """The singles this transaction created (`fresh`: a create) that the `claimed`
    records name, when every record names one of them; else None."""
    if not fresh or not all(r.event_id in fresh and not r.series_ref for r in claimed):
        return None
    return [fresh[i] for i in ordered_ids({r.event_id for r in claimed})]


def _store_new_singles(
    session: Session, claimed: Sequence[Recorded], singles: Sequence[StoredEvent]
) -> None:
    """Store the items of a create's new `singles` from the rows in hand and remove the
    `claimed` records: seven statements fewer than re-expanding them (decision HI4).
    Neither the horizon read nor a savepoint (decisions HV1, HV5): a single's item does
    not depend on the horizon, and the model is on - the triggers recorded these records
    only because a horizon row existed, and switching the model off waits for this
    transaction (`instances.stop_writers`) before it removes it."""
    live = [s for s in singles if _live(s)]
    read_model.add_new_singles(session, live, records=[r.id for r in claimed])


def _inline(session: Session, claimed: Sequence[Recorded]) -> int:
    """Re-expand the owners of this transaction's `claimed` records; the number kept."""
    bounds = instances.horizon(session, filled=False)
    if bounds is None:
        return 0
    return _refresh(session, claimed, bounds)


def _live(single: StoredEvent) -> bool:
    """Whether a single is listed (``instances.insert_singles`` leaves the others out)."""
    return single.deleted_at is None and single.event.status is not EventStatus.CANCELLED


def _refresh(
    session: Session,
    claimed: Sequence[Recorded],
    bounds: tuple[datetime, datetime],
    near: tuple[datetime, datetime] | None = None,
) -> int:
    """Re-expand the owners of `claimed` that no other transaction holds, and remove
    the records of those re-expanded; the number of records kept.

    A record whose owner was held stays; so does every exception's record when any
    owner was held (which master it names is not traced back: keeping one more record
    only costs one more re-expansion)."""
    if not claimed:
        return 0
    owners = set(_owners(session, claimed))
    locked, gone = instance_upkeep.lock_owners_found(session, ordered_ids(owners))
    held = owners - locked - gone
    # an owner whose row is gone has nothing left to replace (decision HS1)
    read_model.replace_owners(session, ordered_ids(locked), bounds, near=near)
    done = [r.id for r in claimed if not held or (r.event_id not in held and not r.series_ref)]
    instance_upkeep.clear(session, done)
    return len(claimed) - len(done)


def _owners(session: Session, claimed: Sequence[Recorded]) -> list[uuid.UUID]:
    """The owners the records touch: the rows themselves, and the masters that the
    exceptions among them name."""
    named = instances.masters_named(
        session, {(r.calendar_id, r.series_ref) for r in claimed if r.series_ref}
    )
    return ordered_ids({r.event_id for r in claimed} | {owner for _, owner in named})


def catch_up(
    sessions: sessionmaker[Session],
    *,
    batch: int = BATCH,
    run_for: float = RUN_FOR,
    monotonic: Callable[[], float] = time.monotonic,
    far: bool = True,
) -> CatchUp:
    """Re-expand every recorded change, `batch` records a transaction, oldest first,
    over the near part of the horizon (decision HC2); then, with `far`, complete the
    owners held near (`batch` owners a transaction): all for at most `run_for` seconds.
    Idempotent, and safe beside writers and other runs: a record claimed by another run
    is skipped, an owner another transaction holds is left with its records (counted in
    `CatchUp.held`). A batch that fails is retried record by record (owner by owner),
    so one failing owner keeps only its own records."""
    deadline = monotonic() + run_for
    after, cleared, held, failed = 0, 0, 0, 0
    while True:
        if monotonic() > deadline:
            return CatchUp(cleared, held, failed, more=True)
        try:
            found = _batch(sessions, after=after, limit=batch)
        except Exception:
            logger.exception("read model upkeep failed; retrying its records one by one")
            found, lost = _one_by_one(sessions, after=after, limit=batch)
            failed += lost
        if found is None:
            break
        after, done, left = found
        cleared, held = cleared + done, held + left
    if not far:
        return CatchUp(cleared, held, failed, more=False)
    more, left, lost = _complete(sessions, batch=batch, deadline=deadline, monotonic=monotonic)
    return CatchUp(cleared, held + left, failed + lost, more=more)


def _complete(
    sessions: sessionmaker[Session],
    *,
    batch: int,
    deadline: float,
    monotonic: Callable[[], float],
) -> tuple[bool, int, int]:
    """The second step: complete the owners held near, `batch` a transaction, until
    `deadline`; (time ran out, owners left because another transaction held them,
    owners whose completion failed: logged, left held for a later run)."""
    after: uuid.UUID | None = None
    left, failed = 0, 0
    while True:
        if monotonic() > deadline:
            return True, left, failed
        try:
            found = _far_batch(sessions, after=after, limit=batch)
        except Exception:
            logger.exception("read model upkeep (far part) failed; retrying one by one")
            found, lost = _far_one_by_one(sessions, after=after, limit=batch)
            failed += lost
        if found is None:
            return False, left, failed
        after, kept = found
        left += kept


def _far_batch(
    sessions: sessionmaker[Session], *, after: uuid.UUID | None, limit: int
) -> tuple[uuid.UUID, int] | None:
    """One transaction: up to `limit` owners held near, after `after`, completed over
    the horizon (those no other transaction holds); (last owner taken, owners left), or
    `None` when none is left (or the model is off)."""
    with sessions() as session, session.begin():
        session.info[_IN_UPKEEP] = True
        instance_upkeep.begin_writing(session)
        bounds = instances.horizon(session, filled=False)
        owners = instance_upkeep.held_owners(session, after=after, limit=limit)
        if bounds is None or not owners:
            return None
        free = instance_upkeep.lock_free_owners(session, owners)
        read_model.extend_owners(session, ordered_ids(free), bounds)
        return owners[-1], len(owners) - len(free)


def _far_one_by_one(
    sessions: sessionmaker[Session], *, after: uuid.UUID | None, limit: int
) -> tuple[tuple[uuid.UUID, int] | None, int]:
    """`_far_batch` of the same owners, one a transaction: an owner that fails is
    logged and left held. (What `_far_batch` answers, the number failed.)"""
    last, left, failed = after, 0, 0
    for _ in range(limit):
        try:
            found = _far_batch(sessions, after=last, limit=1)
        except Exception:
            with sessions() as session:
                owners = instance_upkeep.held_owners(session, after=last, limit=1)
            logger.exception("read model upkeep of the held owner %s failed; kept", owners)
            if not owners:
                break
            last, failed = owners[0], failed + 1
            continue
        if found is None:
            break
        last, kept = found
        left += kept
    return ((last, left) if last is not None and last != after else None), failed


def _batch(
    sessions: sessionmaker[Session], *, after: int, limit: int
) -> tuple[int, int, int] | None:
    """One transaction: claim up to `limit` records above id `after` and re-expand
    them; (last id claimed, records removed, records kept), or `None` when none is left
    (or the model is off)."""
    with sessions() as session, session.begin():
        session.info[_IN_UPKEEP] = True
        instance_upkeep.begin_writing(session)
        bounds = instances.horizon(session, filled=False)
        claimed = instance_upkeep.claim(session, limit=limit, after=after)
        if bounds is None or not claimed:
            return None
        last = claimed[-1].id
        claimed += instance_upkeep.claim_related(
            session,
            users=[r.user_id for r in claimed],
            owners=_owners(session, claimed),
            besides=[r.id for r in claimed],
        )
        kept = _refresh(session, claimed, bounds, read_model.near_range(bounds))
        return last, len(claimed) - kept, kept


def _one_by_one(
    sessions: sessionmaker[Session], *, after: int, limit: int
) -> tuple[tuple[int, int, int] | None, int]:
    """`_batch` of the same records, one record a transaction: a record whose owner
    fails to re-expand is logged and kept. (What `_batch` answers, the number failed.)"""
    last, cleared, held, failed = after, 0, 0, 0
    for _ in range(limit):
        try:
            found = _batch(sessions, after=last, limit=1)
        except Exception:
            logger.exception("read model upkeep of the record after %d failed; kept", last)
            skipped = _next_id(sessions, after=last)
            if skipped is None:
                break
            last, failed = skipped, failed + 1
            continue
        if found is None:
            break
        last, done, left = found
        cleared, held = cleared + done, held + left
    return ((last, cleared, held) if last != after else None), failed


def _next_id(sessions: sessionmaker[Session], *, after: int) -> int | None:
    """The id of the next record above `after` (to go past one that fails)."""
    with sessions() as session:
        claimed = instance_upkeep.claim(session, limit=1, after=after)
        return claimed[0].id if claimed else None


def watch(sessions: sessionmaker[Session], kick: Callable[[], Any]) -> None:
    """Call `kick` after each commit of a session of `sessions` that left records for a
    run (`refresh_written`): it should queue `catch_up` (the ``refresh_read_model``
    job). A kick that fails is logged: the scheduler's sweep finds the records."""

    def after_commit(session: Session) -> None:
        if session.in_nested_transaction() or not session.info.pop(KICK_KEY, False):
            return
        try:
            kick()
        except Exception:
            logger.exception("could not queue the read model's upkeep; the sweep will")

    def after_rollback(session: Session) -> None:
        if not session.in_nested_transaction():
            session.info.pop(KICK_KEY, None)

    event.listen(sessions, "after_commit", after_commit)
    event.listen(sessions, "after_rollback", after_rollback)


def pending(sessions: sessionmaker[Session]) -> bool:
    """Whether any recorded change waits for a run (what the scheduler's sweep asks)."""
    with sessions() as session:
        return instance_upkeep.pending(session)
