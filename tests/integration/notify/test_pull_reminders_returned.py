"""A pull plans the reminders of the rows it updated from what its ``UPDATE`` returned,
without reading those rows again (IS1), and plans what the per-event planner plans.

Five users in five zones with different preferences (the differential test's) are
synced; then an incremental listing changes every stored event: singles moved into the
next days, exceptions moved to begin in a few hours (so that a master's "upcoming"
depends on an exception written by the same statement), masters retitled. The
reminders the pull plans must be those `reschedule_reminders` plans for each changed
row (the per-event planner, in `reschedule_many`'s place), and those of the pull with
the returned rows thrown away (read again, as before); on PostgreSQL, the only rows
read for planning are series masters (re-read after their exceptions), never the
updated rows themselves.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import Event, EventTime
from calsync.notify.on_event_change import reschedule_reminders
from calsync.store.tables import Event as EventRow
from calsync.sync import reconcile
from calsync.sync.reconcile import CalendarRef
from tests.integration.notify.test_reminder_plan_differential import (
    NOW,
    USERS,
    Rows,
    _pulled,
    _rows,
    _user,
    calendar,
)

pytestmark = pytest.mark.integration

LATER = NOW + timedelta(hours=3)


def _everything_changed(seed: int, listing: list[Event]) -> list[Event]:
    """Every event of `listing` changed (a new etag): singles moved to begin within the
    next three days, exceptions moved to begin in two hours, masters retitled."""
    rng = random.Random(seed)
    changed = []
    for event in listing:
        if event.recurring_event_id is not None or not event.is_recurring:
            hours = 2 if event.recurring_event_id is not None else rng.randint(1, 72)
            if event.all_day:
                day = (LATER + timedelta(hours=hours)).date()
                start, end = EventTime.on(day), EventTime.on(day + timedelta(days=1))
            else:
                instant = LATER + timedelta(hours=hours, minutes=rng.randint(0, 59))
                start = EventTime.at(instant, "Asia/Kolkata")
                end = EventTime.at(instant + timedelta(hours=1), "Asia/Kolkata")
            zone = event.timezone if event.all_day else None
            event = dataclasses.replace(event, start=start, end=end, timezone=zone)
        else:
            event = dataclasses.replace(event, title=event.title + " (new title)")
        changed.append(dataclasses.replace(event, etag=f'"{event.etag}-moved"'))
    return changed


def _synced(sessions: sessionmaker[Session], tag: str, seed: int) -> list[tuple[CalendarRef, Any]]:
    refs = []
    with sessions.begin() as session:
        for n, (zone, prefs) in enumerate(USERS):
            refs.append(_user(session, f"{tag}-{n}@example.com", zone, prefs))
    listings = [calendar(seed * 10 + n) for n in range(len(refs))]
    with sessions.begin() as session:
        for ref, listing in zip(refs, listings, strict=True):
            _pulled(session, ref, listing, True, NOW)
    return list(zip(refs, listings, strict=True))


def _pull_all(sessions: sessionmaker[Session], synced: list[tuple[CalendarRef, Any]]) -> Rows:
    with sessions.begin() as session:
        for n, (ref, listing) in enumerate(synced):
            _pulled(session, ref, _everything_changed(n, listing), False, LATER)
    with sessions() as session:
        return _rows(session, [ref.user_id for ref, _ in synced])


def _per_event(
    session: Session,
    event_ids: Any,
    *,
    new: Any = (),
    now: Any = None,
    written: Any = None,
) -> None:
    """`reschedule_many` as its contract states it: `reschedule_reminders` of each row."""
    for event_id in [*event_ids, *new]:
        reschedule_reminders(session, event_id, now=now)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_pull_plans_its_updated_rows_from_the_update_as_the_per_event_planner(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    synced = _synced(sessions, f"ret{seed}", seed)
    users = [ref.user_id for ref, _ in synced]
    reads: list[Any] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if " AS upcoming" in statement:
            reads.append(parameters)

    engine = sessions.kw["bind"]
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        # When every stored event changed at Google and the change is pulled
        pulled = _pull_all(sessions, synced)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert pulled, "the changes have reminders due within the horizon"
    # Then the reminders are what the per-event planner plans for each changed row
    with monkeypatch.context() as patch:
        patch.setattr(reconcile, "reschedule_many", _per_event)
        alone = _pull_all(sessions, _synced(sessions, f"alone{seed}", seed))
    assert pulled == alone
    # And what the pull plans when it reads the updated rows again, as before
    again = _synced(sessions, f"again{seed}", seed)

    def written_dropped(*args: Any, **kwargs: Any) -> dict[uuid.UUID, Any]:
        update_events(*args, **kwargs)
        return {}

    update_events = reconcile.update_events
    monkeypatch.setattr(reconcile, "update_events", written_dropped)
    reread = _pull_all(sessions, again)
    assert reread == pulled
    if engine.dialect.name != "postgresql":
        return  # SQLite's updates run one per row, and return nothing
    # And on PostgreSQL, no updated row but series masters was read for planning
    with sessions() as session:
        masters = set(
            session.scalars(
                sa.select(EventRow.id).where(
                    EventRow.user_id.in_(users), EventRow.is_recurring.is_(True)
                )
            )
        )
    read = {event_id for parameters in reads for event_id in parameters["ids"]}
    assert read <= masters
    assert len(reads) <= len(users)  # one read of masters per pull at most
