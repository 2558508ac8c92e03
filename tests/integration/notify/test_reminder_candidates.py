"""`reminder_candidates` picks, from the values of new rows and the owner's preferences,
the new rows `reschedule_many` acts on: passing only those as ``new`` plans the same
reminders as passing every new row."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import Event, EventStatus, EventTime, Reminders
from calsync.notify import on_event_change
from calsync.notify.preferences import DEFAULT_PREFERENCES, Preferences, save_preferences
from calsync.store.tables import NotificationDelivery
from tests.integration.notify.conftest import BOX, add_calendar, add_event, add_user
from tests.strategies import events

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
PREFERENCES = st.sampled_from(
    [
        None,
        Preferences(reminder_minutes=(10,)),
        Preferences(reminder_minutes=(40_320, 5)),
        Preferences(reminder_minutes=()),
        Preferences(channels=("email", "in_app")),
    ]
)


def _planned(
    sessions: sessionmaker[Session],
    batch: list[tuple[Event, str | None, EventStatus]],
    prefs: Preferences | None,
    shift: timedelta,
    only_candidates: bool,
) -> list[tuple[Any, ...]]:
    """The reminder rows a pull inserting `batch` plans (rolled back afterwards)."""
    with sessions.begin() as session:
        user_id = add_user(session, f"{uuid.uuid4().hex[:8]}@example.com")
        if prefs is not None:
            save_preferences(session, user_id, prefs, BOX)
        calendar_id = add_calendar(session, user_id)
        master = Event(
            start=EventTime.at(NOW - timedelta(days=1), "UTC"),
            end=EventTime.at(NOW - timedelta(days=1, hours=-1), "UTC"),
            recurrence=("RRULE:FREQ=DAILY;COUNT=9",),
            provider_event_id="series1",
        )
        add_event(session, master, user_id=user_id, calendar_id=calendar_id)
        inserted = []
        for n, (event, series, status) in enumerate(batch):
            moved = dataclasses.replace(
                event,
                start=_near(event.start, n, shift),
                end=_near(event.end, n, shift),
                recurring_event_id=series,
                original_start=master.start if series else None,
                status=status,
                provider_event_id=f"g{n}",
            )
            event_id = add_event(session, moved, user_id=user_id, calendar_id=calendar_id)
            inserted.append((event_id, moved))
        if only_candidates:
            new = on_event_change.reminder_candidates(session, inserted, user_id=user_id, now=NOW)
        else:
            new = [event_id for event_id, _ in inserted]
        on_event_change.reschedule_many(session, [], new=new, now=NOW)
        ids = {event_id: n for n, (event_id, _) in enumerate(inserted)}
        rows = session.execute(
            sa.select(
                NotificationDelivery.event_id,
                NotificationDelivery.channel,
                NotificationDelivery.lead_minutes,
                NotificationDelivery.occurrence_start,
                NotificationDelivery.due_at,
                NotificationDelivery.status,
            ).where(NotificationDelivery.user_id == user_id)
        ).all()
        session.rollback()
    # the master's id differs between the runs: name rows by position in the batch
    return sorted((ids.get(row[0], -1), *row[1:]) for row in rows)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batch=st.lists(
        st.tuples(
            events(),
            st.sampled_from([None, None, "series1", "gone"]),
            st.sampled_from([EventStatus.CONFIRMED, EventStatus.CONFIRMED, EventStatus.CANCELLED]),
        ),
        min_size=1,
        max_size=6,
    ),
    prefs=PREFERENCES,
    # around now, around when a reminder becomes due by the horizon (48 h, plus a lead
    # time and a day), and around the latest start the query covers (+ four weeks)
    shift=st.sampled_from([timedelta(days=d) for d in (0, 1, 2, 3, 4)] + [timedelta(days=31.5)])
    | st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=34)),
)
def test_the_candidates_plan_what_every_new_row_plans(
    sessions: sessionmaker[Session],
    batch: list[tuple[Event, str | None, EventStatus]],
    prefs: Preferences | None,
    shift: timedelta,
) -> None:
    everything = _planned(sessions, batch, prefs, shift, only_candidates=False)
    candidates = _planned(sessions, batch, prefs, shift, only_candidates=True)
    assert candidates == everything


def _near(value: EventTime, n: int, shift: timedelta) -> EventTime:
    """`value` moved so that the batch starts around `NOW` (+ `shift`), a day apart."""
    base = NOW + shift + timedelta(days=n - 2)
    if value.day is not None:
        return EventTime.on(base.date() + (value.day - value.day.replace(day=1)))
    assert value.instant is not None
    assert value.timezone is not None
    offset = value.instant - value.instant.replace(day=1, hour=0, minute=0, second=0)
    return EventTime(instant=base + offset % timedelta(days=2), timezone=value.timezone)


def test_far_ended_cancelled_and_not_yet_due_new_rows_are_left_out(
    sessions: sessionmaker[Session],
) -> None:
    def timed(start: datetime, **changes: Any) -> Event:
        return Event(
            start=EventTime.at(start, "UTC"),
            end=EventTime.at(start + timedelta(hours=1), "UTC"),
            **changes,
        )

    soon, past = NOW + timedelta(hours=3), NOW - timedelta(days=2)
    rows = {
        "soon": timed(soon),
        "past": timed(past),
        "in a week": timed(NOW + timedelta(days=7)),
        "in a week, a week ahead": timed(
            NOW + timedelta(days=7), reminders=Reminders.minutes(7 * 24 * 60)
        ),
        "far": timed(NOW + timedelta(days=90)),
        "cancelled": timed(soon, status=EventStatus.CANCELLED),
        "exception": timed(past, recurring_event_id="series1"),
        "series": timed(past, recurrence=("RRULE:FREQ=DAILY",)),
    }
    ids = {name: uuid.uuid4() for name in rows}
    with sessions() as session:
        user_id = add_user(session, "someone@example.com")
        picked = on_event_change.reminder_candidates(
            session, [(ids[n], e) for n, e in rows.items()], user_id=user_id, now=NOW
        )
        session.rollback()
    assert {name for name, i in ids.items() if i in picked} == {
        "soon",
        "in a week, a week ahead",
        "exception",
        "series",
    }
    assert DEFAULT_PREFERENCES.reminder_minutes is None  # the event's own reminders count
