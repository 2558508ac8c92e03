"""The periodic refresh is set-based; it must plan exactly what the per-event path plans.

Given a mixed set of events (a series with a moved, a cancelled and a deleted exception,
all-day events, events across a DST change, far and past ones, a cancelled one) owned by
users with default and custom preferences (several lead times and channels, quiet hours)
and some reminder rows already there (a stale pending one, a pending one whose due time is
out of date, a sent one), when the batched :func:`refresh_reminders` runs, then the
reminder rows are exactly those that replanning each upcoming event on its own
(:func:`reschedule_user`, one event at a time) leaves, at several moments.
On PostgreSQL, two refreshes at once leave the same rows as one.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import Event, EventStatus, EventTime, Reminders
from calsync.notify.preferences import (
    Preferences,
    QuietHours,
    load_preferences,
    save_preferences,
)
from calsync.notify.reminders import (
    DEFAULT_HORIZON,
    latest_start,
    refresh_reminders,
    reminder_key,
    replan_many,
    reschedule_user,
)
from calsync.store import upcoming
from calsync.store.db import make_engine, make_session_factory
from calsync.store.migrate import upgrade
from calsync.store.tables import Event as EventRow
from calsync.store.tables import NotificationDelivery, User
from tests.integration.notify.conftest import BOX, add_calendar, add_event, add_user

pytestmark = pytest.mark.integration

# Berlin moves to summer time at 02:00 local on 29 March 2026; Sydney leaves it on 5 April.
NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
MOMENTS = (NOW, NOW + timedelta(hours=20), NOW + timedelta(days=2, hours=3))


def at(zone: str, year: int, month: int, day: int, hour: int, minute: int = 0) -> EventTime:
    return EventTime.at(datetime(year, month, day, hour, minute), zone)


def timed(zone: str, start: datetime, title: str, *leads: int, **changes: Any) -> Event:
    return Event(
        start=EventTime.at(start, zone),
        end=EventTime.at(start + timedelta(hours=1), zone),
        title=title,
        reminders=Reminders.minutes(*leads) if leads else Reminders(),
        **changes,
    )


def all_day(day: date, title: str, *leads: int) -> Event:
    return Event(
        start=EventTime.on(day),
        end=EventTime.on(day + timedelta(days=1)),
        title=title,
        reminders=Reminders.minutes(*leads),
    )


def seed(sessions: sessionmaker[Session]) -> tuple[set[uuid.UUID], list[dict[str, Any]]]:
    """The mixed set; returns its users and the reminder rows stored before any refresh."""
    with sessions.begin() as session:
        berlin = add_user(session, "berlin@example.com", "Europe/Berlin")
        sydney = add_user(session, "sydney@example.com", "Australia/Sydney")
        early = add_user(session, "early@example.com", "America/New_York")
        save_preferences(
            session,
            sydney,
            Preferences(
                reminder_minutes=(5, 15, 60),
                channels=("email", "webhook"),
                webhook_url="https://hooks.example.com/calsync",
                quiet_hours=QuietHours(time(22, 0), time(7, 0)),
            ),
            BOX,
        )
        save_preferences(
            session,
            early,
            Preferences(reminder_minutes=(2880, 30), channels=("email", "push")),
            BOX,
        )
        events: dict[str, uuid.UUID] = {}

        def add(owner: uuid.UUID, name: str, event: Event) -> uuid.UUID:
            calendar_id = calendars[owner]
            events[name] = add_event(session, event, user_id=owner, calendar_id=calendar_id)
            return events[name]

        calendars = {u: add_calendar(session, u) for u in (berlin, sydney, early)}
        zone = "Europe/Berlin"
        # a daily series across the DST change, with a moved, a cancelled and a deleted
        # exception
        series = timed(
            zone,
            datetime(2026, 3, 26, 8, 30),
            "Stand-up",
            10,
            30,
            recurrence=("RRULE:FREQ=DAILY;COUNT=10",),
            provider_event_id="standup",
        )
        add(berlin, "series", series)
        moved = dataclasses.replace(
            series,
            recurrence=(),
            start=at(zone, 2026, 3, 29, 11),
            end=at(zone, 2026, 3, 29, 12),
            recurring_event_id="standup",
            original_start=at(zone, 2026, 3, 29, 8, 30),
            provider_event_id="standup_20260329",
        )
        add(berlin, "moved", moved)
        cancelled = dataclasses.replace(
            moved,
            start=at(zone, 2026, 3, 30, 8, 30),
            end=at(zone, 2026, 3, 30, 9, 30),
            original_start=at(zone, 2026, 3, 30, 8, 30),
            status=EventStatus.CANCELLED,
            provider_event_id="standup_20260330",
        )
        add(berlin, "cancelled exception", cancelled)
        deleted = dataclasses.replace(
            moved,
            start=at(zone, 2026, 3, 28, 9),
            end=at(zone, 2026, 3, 28, 10),
            original_start=at(zone, 2026, 3, 28, 8, 30),
            provider_event_id="standup_20260328",
        )
        deleted_id = add(berlin, "deleted exception", deleted)
        session.execute(sa.update(EventRow).where(EventRow.id == deleted_id).values(deleted_at=NOW))
        # single events: across the DST change, all-day, far ahead, past, cancelled
        add(berlin, "after dst", timed(zone, datetime(2026, 3, 29, 3, 30), "Early train", 60))
        add(berlin, "all-day", all_day(date(2026, 3, 29), "Offsite", 600, 0))
        add(berlin, "far", timed(zone, datetime(2026, 4, 20, 9), "Far away", 10))
        add(berlin, "past", timed(zone, datetime(2026, 3, 27, 9), "Yesterday", 10))
        add(
            berlin,
            "cancelled",
            timed(zone, datetime(2026, 3, 29, 15), "Off", 10, status=EventStatus.CANCELLED),
        )
        add(berlin, "no reminders", timed(zone, datetime(2026, 3, 28, 18), "Quiet one"))
        zone = "Australia/Sydney"
        add(sydney, "late night", timed(zone, datetime(2026, 3, 29, 23, 30), "Late call"))
        add(sydney, "sydney all-day", all_day(date(2026, 3, 30), "Holiday"))
        # begins at 13:00 UTC the day before: its 60-minute reminder is due at NOW + 48 h
        add(sydney, "edge", all_day(date(2026, 3, 31), "At the horizon"))
        add(
            sydney,
            "weekly",
            timed(
                zone,
                datetime(2026, 3, 2, 6, 45),
                "Weekly",
                recurrence=("RRULE:FREQ=WEEKLY;BYDAY=MO,SU",),
                provider_event_id="weekly",
            ),
        )
        zone = "America/New_York"
        add(early, "in three days", timed(zone, datetime(2026, 3, 31, 10), "Two days' notice"))
        add(early, "in five days", timed(zone, datetime(2026, 4, 2, 10), "Beyond the horizon"))
        # rows already there: a stale pending one, one with an outdated due time, a sent one
        after_dst = events["after dst"]
        start = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
        stored = [
            reminder_row(after_dst, berlin, start + timedelta(hours=1), 60, "email", "pending"),
            reminder_row(after_dst, berlin, start, 60, "email", "pending", due_late=True),
            reminder_row(
                events["late night"],
                sydney,
                datetime(2026, 3, 29, 12, 30, tzinfo=UTC),
                15,
                "webhook",
                "sent",
            ),
        ]
        session.execute(sa.insert(NotificationDelivery), stored)
    return {berlin, sydney, early}, stored


def reminder_row(
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    start: datetime,
    lead: int,
    channel: str,
    status: str,
    *,
    due_late: bool = False,
) -> dict[str, Any]:
    due = start - timedelta(minutes=lead) + (timedelta(minutes=5) if due_late else timedelta())
    return {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "event_id": event_id,
        "kind": "reminder",
        "channel": channel,
        "occurrence_start": start,
        "lead_minutes": lead,
        "dedupe_key": reminder_key(event_id, start, lead, channel),
        "status": status,
        "due_at": due,
        "attempts": 0,
        "payload": {"occurrence_end": (start + timedelta(hours=1)).isoformat()},
        "created_at": NOW,
        "updated_at": NOW,
    }


def reminders(sessions: sessionmaker[Session]) -> set[tuple[Any, ...]]:
    """The stored reminder rows, without their ids and bookkeeping times."""
    with sessions() as session:
        return {
            (
                row.event_id,
                row.user_id,
                row.dedupe_key,
                row.channel,
                row.lead_minutes,
                row.occurrence_start.replace(tzinfo=UTC) if row.occurrence_start else None,
                row.due_at.replace(tzinfo=UTC),
                row.status,
                json.dumps(row.payload, sort_keys=True),
            )
            for row in session.scalars(
                sa.select(NotificationDelivery).where(NotificationDelivery.kind == "reminder")
            )
        }


def restore(sessions: sessionmaker[Session], stored: list[dict[str, Any]]) -> None:
    with sessions.begin() as session:
        session.execute(sa.delete(NotificationDelivery))
        session.execute(sa.insert(NotificationDelivery), stored)


def per_event(sessions: sessionmaker[Session], users: set[uuid.UUID], now: datetime) -> int:
    """The per-event path: each upcoming event replanned on its own."""
    with sessions.begin() as session:
        return sum(reschedule_user(session, user_id, now=now) for user_id in users)


@pytest.mark.parametrize("now", MOMENTS, ids=["now", "in 20 h", "in 51 h"])
def test_the_batched_refresh_plans_what_the_per_event_path_plans(
    sessions: sessionmaker[Session], now: datetime
) -> None:
    users, stored = seed(sessions)
    # Given the rows the per-event path leaves
    replanned = per_event(sessions, users, now)
    expected = reminders(sessions)
    assert len(expected) > len(stored)  # it planned something
    # When the same starting rows are refreshed in batches (small ones: several chunks)
    restore(sessions, stored)
    assert refresh_reminders(sessions, now=now, batch_size=3) == replanned
    # Then the rows are the same, and a second run changes nothing
    assert reminders(sessions) == expected
    assert refresh_reminders(sessions, now=now) == replanned
    assert reminders(sessions) == expected


def test_the_mixed_set_exercises_every_planning_rule(sessions: sessionmaker[Session]) -> None:
    """Guards the comparison above against a set that plans too little to compare."""
    seed(sessions)
    refresh_reminders(sessions, now=NOW)
    rows = reminders(sessions)
    channels = {row[3] for row in rows if row[7] == "pending"}
    assert channels == {"email", "webhook", "push"}
    assert {row[4] for row in rows} >= {0, 5, 10, 15, 30, 60, 600, 2880}
    starts = {row[5] for row in rows}
    # the moved occurrence at its new time (09:00 UTC, summer time), not the old one
    assert datetime(2026, 3, 29, 9, 0, tzinfo=UTC) in starts
    assert datetime(2026, 3, 29, 6, 30, tzinfo=UTC) not in starts
    # nothing for the deleted or the cancelled occurrence of the series
    assert datetime(2026, 3, 28, 7, 30, tzinfo=UTC) not in starts
    assert datetime(2026, 3, 30, 6, 30, tzinfo=UTC) not in starts
    # the all-day event begins at midnight in Berlin (summer time starts at 02:00 that day)
    assert datetime(2026, 3, 28, 23, 0, tzinfo=UTC) in starts
    # the all-day event in Sydney whose first reminder is due right at the horizon
    assert datetime(2026, 3, 30, 13, 0, tzinfo=UTC) in starts
    # the stale pending row went; the sent one stayed
    statuses = [row[7] for row in rows]
    assert statuses.count("sent") == 1


def test_two_refreshes_at_once_leave_what_one_leaves(pg_url: str) -> None:
    engines = [make_engine(pg_url, pool_size=2) for _ in range(2)]
    try:
        upgrade(engines[0])
        first, second = (make_session_factory(e) for e in engines)
        users, stored = seed(first)
        per_event(first, users, NOW)
        expected = reminders(first)
        restore(first, stored)
        errors: list[BaseException] = []
        barrier = threading.Barrier(2)

        def run(sessions: sessionmaker[Session]) -> None:
            try:
                barrier.wait(5)
                for _ in range(3):
                    refresh_reminders(sessions, now=NOW, batch_size=2)
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=run, args=(s,)) for s in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert reminders(second) == expected
    finally:
        for engine in engines:
            engine.dispose()


def test_replan_many_told_which_events_have_pending_rows_plans_the_same(
    sessions: sessionmaker[Session],
) -> None:
    """The form the sync hooks use: rows and owners already read, pending ones known."""
    users, stored = seed(sessions)
    per_event(sessions, users, NOW)
    expected = reminders(sessions)
    restore(sessions, stored)
    with sessions.begin() as session:
        rows = upcoming.page(session, NOW, latest_start(NOW, DEFAULT_HORIZON))
        zones: dict[uuid.UUID, str] = {
            user_id: zone for user_id, zone in session.execute(sa.select(User.id, User.timezone))
        }
        owners = {u: (load_preferences(session, u), zones[u]) for u in users}
        replan_many(session, rows, owners, now=NOW, pending={r["event_id"] for r in stored})
    assert reminders(sessions) == expected
