"""A sync's notices skip the recipients' read only when the calendar's owner is the
organizer and only person of every change (decision IC1), on both databases.

The author of a sync's change is its organizer; the owner is told unless they are it.
So an event without an organizer, or organised by another user, still tells its owner,
and one with another attendee tells that attendee.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import Attendee, Event, EventTime
from calsync.notify.changes import EventChange, events_changed
from calsync.store.tables import NotificationDelivery
from tests.integration.notify.conftest import add_calendar, add_event, add_user

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
ALICE, BOB = "alice@example.com", "bob@example.com"
BEFORE = Event(
    start=EventTime.at(datetime(2026, 6, 3, 14, 0), "UTC"),
    end=EventTime.at(datetime(2026, 6, 3, 15, 0), "UTC"),
    title="Planning",
    organizer_email=ALICE,
    provider_event_id="plan1",
)


@pytest.fixture
def users(sessions: sessionmaker[Session]) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """Alice, Bob, and an event row in Alice's calendar."""
    with sessions.begin() as session:
        alice, bob = add_user(session, ALICE), add_user(session, BOB)
        event_id = add_event(
            session, BEFORE, user_id=alice, calendar_id=add_calendar(session, alice)
        )
    return alice, bob, event_id


@pytest.fixture
def reads(sessions: sessionmaker[Session]) -> Iterator[list[str]]:
    """The recipients' reads sent from now on."""
    seen: list[str] = []

    def record(*args: object) -> None:
        sql = " ".join(str(args[2]).split()).lower()
        if "from users" in sql and "status !=" in sql:
            seen.append(sql)

    engine = sessions.kw["bind"]
    sa.event.listen(engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", record)


def _announce(
    sessions: sessionmaker[Session],
    owner: uuid.UUID,
    event_id: uuid.UUID,
    after: Event,
    before: Event = BEFORE,
) -> list[uuid.UUID]:
    """A sync's change of Alice's row from `before` to `after`, Alice given as the
    calendar's owner: the users told."""
    with sessions.begin() as session:
        events_changed(
            session,
            [EventChange(event_id, before, after, owner)],
            actor_user_id=None,
            source="sync",
            now=NOW,
            sync_owner=(owner, ALICE),
        )
    with sessions() as session:
        return list(
            session.scalars(
                sa.select(NotificationDelivery.user_id).where(NotificationDelivery.kind == "change")
            )
        )


def test_the_owner_as_organizer_and_only_person_reads_and_tells_nobody(
    sessions: sessionmaker[Session], users: tuple[uuid.UUID, uuid.UUID, uuid.UUID], reads: list[str]
) -> None:
    alice, _, event_id = users
    after = dataclasses.replace(
        BEFORE, title="Moved", attendees=(Attendee(email=ALICE, organizer=True),)
    )
    assert _announce(sessions, alice, event_id, after) == []
    assert reads == []


def test_an_event_without_an_organizer_tells_its_owner(
    sessions: sessionmaker[Session], users: tuple[uuid.UUID, uuid.UUID, uuid.UUID], reads: list[str]
) -> None:
    alice, _, event_id = users
    before = dataclasses.replace(BEFORE, organizer_email=None)
    after = dataclasses.replace(before, title="Moved")
    assert _announce(sessions, alice, event_id, after, before) == [alice]
    assert len(reads) == 1


def test_an_event_another_user_organises_tells_the_owner_not_them(
    sessions: sessionmaker[Session], users: tuple[uuid.UUID, uuid.UUID, uuid.UUID], reads: list[str]
) -> None:
    alice, _, event_id = users
    before = dataclasses.replace(BEFORE, organizer_email=BOB)
    after = dataclasses.replace(before, title="Moved")
    assert _announce(sessions, alice, event_id, after, before) == [alice]
    assert len(reads) == 1


def test_another_attendee_is_told(
    sessions: sessionmaker[Session], users: tuple[uuid.UUID, uuid.UUID, uuid.UUID], reads: list[str]
) -> None:
    alice, bob, event_id = users
    after = dataclasses.replace(BEFORE, title="Moved", attendees=(Attendee(email=BOB),))
    assert _announce(sessions, alice, event_id, after) == [bob]
    assert len(reads) == 1


def test_a_row_of_another_owner_is_read(
    sessions: sessionmaker[Session], users: tuple[uuid.UUID, uuid.UUID, uuid.UUID], reads: list[str]
) -> None:
    """A change whose row is Bob's (not the given owner's) is read: Bob is told."""
    _, bob, event_id = users
    after = dataclasses.replace(BEFORE, title="Moved")
    with sessions.begin() as session:
        events_changed(
            session,
            [EventChange(event_id, BEFORE, after, owner_id=bob)],
            actor_user_id=None,
            source="sync",
            now=NOW,
            sync_owner=(users[0], ALICE),
        )
    assert len(reads) == 1
    with sessions() as session:
        told = session.scalars(sa.select(NotificationDelivery.user_id)).all()
    assert told == [bob]
