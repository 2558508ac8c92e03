"""Events survive a trip through the ``events`` and ``event_attendees`` rows, on both databases."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import Event, EventTime
from calsync.store.events import event_columns, load_stored, replace_attendees
from calsync.store.tables import Event as EventRow
from calsync.store.tables import User
from tests.owners import add_owner
from tests.strategies import events


def _store(session: Session, event: Event) -> uuid.UUID:
    user_id, calendar_id = add_owner(session)
    event_id = uuid.uuid4()
    session.execute(
        sa.insert(EventRow.__table__).values(
            id=event_id, user_id=user_id, calendar_id=calendar_id, **event_columns(event)
        )
    )
    replace_attendees(session, [(event_id, event.attendees)])
    return event_id


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(event=events())
def test_an_event_reads_back_as_it_was_written(
    sessions: sessionmaker[Session], event: Event
) -> None:
    event = dataclasses.replace(
        event,
        provider_event_id=f"g{uuid.uuid4().hex}",
        etag='"5"',
        sequence=2,
        organizer_email="owner@example.com",
        updated=datetime(2026, 5, 1, tzinfo=UTC),
    )
    with sessions.begin() as session:
        event_id = _store(session, event)
    with sessions() as session:
        stored = load_stored(session, event_id)
    assert stored is not None
    assert stored.event == dataclasses.replace(event, calsync_id=str(event_id))
    # and the unchecked construction (Event.trusted) holds what the checked one makes of it
    assert stored.event == dataclasses.replace(stored.event)
    assert type(stored.event.metadata) is type(event.metadata)
    assert all(
        t.instant is None or t.instant.tzinfo is UTC for t in (stored.event.start, stored.event.end)
    )


def test_exceptions_keep_a_timed_or_whole_day_original_start(
    sessions: sessionmaker[Session],
) -> None:
    for original in (
        EventTime.at(datetime(2026, 3, 29, 0, 0), "UTC"),
        EventTime.on(date(2026, 3, 29)),
    ):
        exception = Event(
            start=EventTime.on(date(2026, 3, 30)),
            end=EventTime.on(date(2026, 3, 31)),
            recurring_event_id="series1",
            original_start=original,
        )
        with sessions.begin() as session:
            event_id = _store(session, exception)
        with sessions() as session:
            stored = load_stored(session, event_id)
        assert stored is not None
        assert stored.event.original_start == original


def test_attendees_who_are_users_are_linked_to_them(sessions: sessionmaker[Session]) -> None:
    from calsync.domain.models import Attendee
    from calsync.store.tables import EventAttendee

    with sessions.begin() as session:
        colleague = User(email="colleague@example.com")
        session.add(colleague)
        session.flush()
        event = Event(
            start=EventTime.on(date(2026, 1, 1)),
            end=EventTime.on(date(2026, 1, 2)),
            attendees=(Attendee(email="colleague@example.com"), Attendee(email="x@ext.org")),
        )
        event_id = _store(session, event)
        colleague_id = colleague.id
    with sessions() as session:
        links = dict(
            session.execute(
                sa.select(EventAttendee.email, EventAttendee.user_id).where(
                    EventAttendee.event_id == event_id
                )
            ).all()
        )
    assert links == {"colleague@example.com": colleague_id, "x@ext.org": None}
