"""`take_attendees` deletes the attendee rows of events and returns them, by event and in
email order, on both databases (one statement built once on PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import Attendee, Event, EventTime, ResponseStatus
from calsync.store.events import attendees_by_event, event_columns, insert_attendees, take_attendees
from calsync.store.tables import Event as EventRow
from calsync.store.tables import EventAttendee
from tests.owners import add_owner


def test_attendees_are_taken_by_event_in_email_order(sessions: sessionmaker[Session]) -> None:
    start = EventTime.at(datetime(2026, 5, 1, 9, tzinfo=UTC), "UTC")
    people = {
        "a": [Attendee(email="zed@x.org"), Attendee(email="amy@x.org", optional=True)],
        "b": [Attendee(email="bob@x.org", response_status=ResponseStatus.ACCEPTED)],
        "c": [Attendee(email="cy@x.org")],
        "none": [],
    }
    with sessions.begin() as session:
        user_id, calendar_id = add_owner(session, email="owner@example.com")
        ids = {name: uuid.uuid4() for name in people}
        for name, event_id in ids.items():
            session.execute(
                sa.insert(EventRow.__table__).values(
                    id=event_id,
                    user_id=user_id,
                    calendar_id=calendar_id,
                    **event_columns(Event(start=start, end=start, title=name)),
                )
            )
        insert_attendees(session, [(ids[n], people[n]) for n in people])
        expected = attendees_by_event(session, [ids["a"], ids["b"], ids["none"]])
    with sessions.begin() as session:
        taken = take_attendees(session, [ids["a"], ids["b"], ids["none"]])
        assert taken.keys() == {ids["a"], ids["b"]}
        for event_id, rows in taken.items():
            assert [(r.email, r.optional, r.response_status) for r in rows] == [
                (r.email, r.optional, r.response_status) for r in expected[event_id]
            ]
        assert take_attendees(session, []) == {}
    with sessions() as session:
        left = session.scalars(sa.select(EventAttendee.email)).all()
    assert left == ["cy@x.org"]
