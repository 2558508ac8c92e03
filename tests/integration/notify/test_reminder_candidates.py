"""`reminder_candidates` picks, from the values of new rows alone, every new row that
`reschedule_many`'s query would select (so a pull may pass only those as ``new``)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import Event, EventStatus, EventTime
from calsync.notify import hooks
from calsync.notify.reminders import DEFAULT_HORIZON
from tests.integration.notify.conftest import add_calendar, add_event, add_user
from tests.strategies import events

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


def _selected(session: Session, ids: list[uuid.UUID], now: datetime) -> set[uuid.UUID]:
    """The new rows `reschedule_many` reads (its query, given every new id)."""
    return {row.id for row in hooks._rows(session, ids, [], now, DEFAULT_HORIZON)}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batch=st.lists(
        st.tuples(
            events(),
            st.sampled_from([None, "series1"]),
            st.sampled_from(list(EventStatus)),
        ),
        min_size=1,
        max_size=8,
    ),
    # now, and the latest start the query covers (now + 48 h + four weeks + a day)
    shift=st.sampled_from([timedelta(0), timedelta(days=31, hours=12)])
    | st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=34)),
)
def test_the_candidates_hold_every_row_the_query_selects(
    sessions: sessionmaker[Session],
    batch: list[tuple[Event, str | None, EventStatus]],
    shift: timedelta,
) -> None:
    inserted = []
    with sessions.begin() as session:
        user_id = add_user(session, f"{uuid.uuid4().hex[:8]}@example.com")
        calendar_id = add_calendar(session, user_id)
        for n, (event, series, status) in enumerate(batch):
            # around now, so that every side of the query's bounds is met
            moved = dataclasses.replace(
                event,
                start=_near(event.start, n, shift),
                end=_near(event.end, n, shift),
                recurring_event_id=series,
                status=status,
                provider_event_id=f"g{n}",
            )
            event_id = add_event(session, moved, user_id=user_id, calendar_id=calendar_id)
            inserted.append((event_id, moved))
        ids = [event_id for event_id, _ in inserted]
        selected = _selected(session, ids, NOW)
        candidates = hooks.reminder_candidates(inserted, now=NOW)
        assert selected <= set(candidates)
        session.rollback()


def _near(value: EventTime, n: int, shift: timedelta) -> EventTime:
    """`value` moved so that the batch starts around `NOW` (+ `shift`), a day apart."""
    base = NOW + shift + timedelta(days=n - 2)
    if value.day is not None:
        return EventTime.on(base.date() + (value.day - value.day.replace(day=1)))
    assert value.instant is not None
    assert value.timezone is not None
    offset = value.instant - value.instant.replace(day=1, hour=0, minute=0, second=0)
    return EventTime(instant=base + offset % timedelta(days=2), timezone=value.timezone)


def test_far_ended_and_cancelled_new_rows_are_left_out() -> None:
    def timed(start: datetime, **changes: object) -> Event:
        return Event(
            start=EventTime.at(start, "UTC"),
            end=EventTime.at(start + timedelta(hours=1), "UTC"),
            **changes,  # type: ignore[arg-type]
        )

    soon, past, far = NOW + timedelta(hours=3), NOW - timedelta(days=2), NOW + timedelta(days=90)
    rows = {
        "soon": timed(soon),
        "past": timed(past),
        "far": timed(far),
        "cancelled": timed(soon, status=EventStatus.CANCELLED),
        "exception": timed(past, recurring_event_id="series1"),
        "series": timed(past, recurrence=("RRULE:FREQ=DAILY",)),
    }
    ids = {name: uuid.uuid4() for name in rows}
    picked = hooks.reminder_candidates([(ids[n], e) for n, e in rows.items()], now=NOW)
    assert {name for name, i in ids.items() if i in picked} == {"soon", "exception", "series"}
