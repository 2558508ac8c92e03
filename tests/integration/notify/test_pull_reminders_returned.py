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

And pulls that move events into and out of the horizon, retime them, cancel them and
un-cancel them, for four users of whom three share a calendar (each owns rows of the
same Google events) and one has turned reminders off, leave each user exactly the
pending reminders a fresh planning of the stored rows gives (JF1).
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.conflicts import ConflictPolicy
from calsync.domain.models import Event, EventStatus, EventTime
from calsync.notify.on_event_change import reschedule_reminders
from calsync.notify.preferences import Preferences, save_preferences
from calsync.store.tables import Calendar, NotificationDelivery
from calsync.store.tables import Event as EventRow
from calsync.sync import reconcile
from calsync.sync.reconcile import CalendarRef
from tests.integration.notify.conftest import BOX, add_user
from tests.integration.notify.test_reminder_plan_differential import (
    NOW,
    USERS,
    Rows,
    _length,
    _pulled,
    _rows,
    _shifted,
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


#: The shared calendar's Google id: three of the four users below hold its events.
SHARED = "team@group.calendar.google.com"
#: Zone and preferences (None: the defaults) of each user; all but the first share.
OWNERS: list[tuple[str, Preferences | None]] = [
    ("UTC", None),
    ("Asia/Kolkata", Preferences(reminder_minutes=())),  # reminders off
    ("America/Los_Angeles", Preferences(reminder_minutes=(0, 1440), channels=("email", "in_app"))),
    ("Pacific/Kiritimati", None),
]


def _team(listing: list[Event]) -> list[Event]:
    """`listing` under Google ids of its own (the users' own calendars use the same)."""

    def named(google_id: str | None) -> str | None:
        return None if google_id is None else f"team-{google_id}"

    return [
        dataclasses.replace(
            e,
            provider_event_id=named(e.provider_event_id),
            recurring_event_id=named(e.recurring_event_id),
        )
        for e in listing
    ]


def _at(event: Event, start: datetime) -> Event:
    """`event` moved to begin at `start`, as long as it was (all-day ones on that day)."""
    length = _length(event)
    if event.all_day:
        day = EventTime.on(start.date())
        return dataclasses.replace(event, start=day, end=_shifted(day, length))
    begin = EventTime.at(start, event.start.timezone or "UTC")
    return dataclasses.replace(event, start=begin, end=_shifted(begin, length))


def _turned(rng: random.Random, state: dict[str, Event], step: int) -> list[Event]:
    """An incremental listing of changes to `state` (the calendar as Google has it, by
    id; updated in place): cancelled events un-cancelled into the next day; the others
    moved into the horizon, moved weeks out of it, retimed by minutes, cancelled or
    left alone; series masters retimed by an hour or left alone."""
    changed = []
    for google_id, event in state.items():
        if event.status is EventStatus.CANCELLED:
            kind = "uncancelled"
        elif event.is_recurring:
            kind = rng.choice(["retimed", "kept"])
        else:
            kind = rng.choice(["in", "out", "retimed", "cancelled", "kept", "kept"])
        start = event.start.instant or datetime.combine(event.start.day or NOW.date(), time())
        if kind == "kept":
            continue
        if kind == "cancelled":
            event = dataclasses.replace(event, status=EventStatus.CANCELLED)
        elif kind in ("in", "uncancelled"):
            soon = NOW + timedelta(hours=rng.randint(1, 40), minutes=rng.randint(0, 59))
            event = dataclasses.replace(_at(event, soon), status=EventStatus.CONFIRMED)
        elif kind == "out":
            event = _at(event, NOW + timedelta(days=rng.randint(20, 30)))
        else:
            by = timedelta(hours=1) if event.is_recurring else timedelta(minutes=rng.randint(5, 50))
            event = _at(event, start.replace(tzinfo=start.tzinfo or UTC) + by)
        event = dataclasses.replace(event, etag=f'"{event.etag}-{step}"')
        state[google_id] = event
        changed.append(event)
    return changed


def _owners(session: Session, tag: str) -> list[list[CalendarRef]]:
    """`OWNERS` as new users, each with a calendar of their own, all but the first
    with one of the shared calendar too."""
    refs = []
    for n, (zone, prefs) in enumerate(OWNERS):
        user_id = add_user(session, f"{tag}-{n}@example.com", timezone=zone)
        if prefs is not None:
            save_preferences(session, user_id, prefs, BOX)
        calendars = []
        for google_id in ["primary"] if n == 0 else ["primary", SHARED]:
            row = Calendar(user_id=user_id, provider_calendar_id=google_id, access_role="owner")
            session.add(row)
            session.flush()
            calendars.append(
                CalendarRef(id=row.id, user_id=user_id, policy=ConflictPolicy.REMOTE_WINS)
            )
        refs.append(calendars)
    return refs


def _pending(session: Session, users: list[uuid.UUID]) -> Rows:
    return [row for row in _rows(session, users) if row[7] == "pending"]


def _planned_afresh(sessions: sessionmaker[Session], users: list[uuid.UUID]) -> Rows:
    """The users' pending reminders as the per-event planner plans them from the stored
    rows, from nothing (rolled back)."""
    with sessions.begin() as session:
        session.execute(
            sa.delete(NotificationDelivery).where(NotificationDelivery.user_id.in_(users))
        )
        ids = session.scalars(sa.select(EventRow.id).where(EventRow.user_id.in_(users))).all()
        for event_id in ids:
            reschedule_reminders(session, event_id, now=NOW)
        afresh = _pending(session, users)
        session.rollback()
    return afresh


@pytest.mark.parametrize("seed", [3, 4])
def test_pulls_that_move_retime_cancel_and_uncancel_leave_what_a_fresh_planning_gives(
    sessions: sessionmaker[Session], seed: int
) -> None:
    with sessions.begin() as session:
        refs = _owners(session, f"turn{seed}")
    users = [calendars[0].user_id for calendars in refs]
    shared = _team(calendar(seed * 10 + 9))
    own = [calendar(seed * 10 + n) for n in range(len(refs))]
    states = [{e.provider_event_id: e for e in listing} for listing in [shared, *own]]
    with sessions.begin() as session:
        for calendars, listing in zip(refs, own, strict=True):
            for ref in calendars:
                _pulled(session, ref, shared if ref is not calendars[0] else listing, True, NOW)
    rng = random.Random(seed)
    for step in (1, 2):
        # When Google's copies change: the shared calendar's once, seen by each sharer
        team, *changes = [_turned(rng, state, step) for state in states]
        with sessions.begin() as session:
            for calendars, listing in zip(refs, changes, strict=True):
                _pulled(session, calendars[0], listing, False, NOW)
                for ref in calendars[1:]:
                    _pulled(session, ref, team, False, NOW)
        # Then each user's pending reminders are those planned afresh from the rows
        with sessions() as session:
            pulled = _pending(session, users)
        assert pulled == _planned_afresh(sessions, users), step
        # the shared events' reminders are their owners', and none for reminders off
        by_user = {n: {row[1] for row in pulled if row[0] == n} for n in range(len(users))}
        assert by_user[0], step
        assert not by_user[1], step
        assert {g for g in by_user[2] & by_user[3] if g.startswith("team-")}, step
