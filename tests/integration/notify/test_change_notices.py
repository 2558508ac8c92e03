"""Change notices: the people of an event hear about changes made by someone else, once."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import icalendar
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import Attendee, Event, EventStatus, EventTime
from calsync.notify.deliveries import deliver_due
from calsync.notify.on_event_change import event_changed
from calsync.notify.preferences import Preferences, save_preferences
from calsync.store.tables import NotificationDelivery
from tests.integration.notify.conftest import (
    BOX,
    SmtpServer,
    add_calendar,
    add_event,
    add_user,
    dispatcher_for,
    update_event,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def berlin(year: int, month: int, day: int, hour: int, minute: int) -> EventTime:
    return EventTime.at(datetime(year, month, day, hour, minute), "Europe/Berlin")


PLANNING = Event(
    start=berlin(2026, 6, 3, 14, 0),
    end=berlin(2026, 6, 3, 15, 0),
    title="Quarterly planning",
    location="Room 1",
    organizer_email="alice@example.com",
    attendees=(
        Attendee(email="alice@example.com", organizer=True),
        Attendee(email="bob@example.com"),
        Attendee(email="carol@elsewhere.org"),
    ),
    provider_event_id="plan1",
)
MOVED = dataclasses.replace(
    PLANNING, start=berlin(2026, 6, 4, 10, 0), end=berlin(2026, 6, 4, 11, 0), location="Room 2"
)


@dataclasses.dataclass
class People:
    alice: uuid.UUID
    bob: uuid.UUID
    event_id: uuid.UUID


@pytest.fixture
def people(sessions: sessionmaker[Session]) -> People:
    with sessions.begin() as session:
        alice = add_user(session, "alice@example.com", "Europe/Berlin")
        bob = add_user(session, "bob@example.com", "America/New_York")
        event_id = add_event(
            session, PLANNING, user_id=alice, calendar_id=add_calendar(session, alice)
        )
    return People(alice, bob, event_id)


def notices(sessions: sessionmaker[Session]) -> list[NotificationDelivery]:
    with sessions() as session:
        return list(session.scalars(sa.select(NotificationDelivery)))


def test_an_attendee_is_told_what_the_organizer_changed(
    sessions: sessionmaker[Session], people: People, smtp_server: SmtpServer
) -> None:
    # When the organizer moves the event through the API
    with sessions.begin() as session:
        update_event(session, people.event_id, MOVED)
        recorded = event_changed(
            session,
            before=PLANNING,
            after=MOVED,
            event_id=people.event_id,
            actor_user_id=people.alice,
            source="api",
            now=NOW,
        )

    # Then Bob (not Alice, who made the change) gets one notice
    assert recorded == 1
    [row] = notices(sessions)
    assert (row.user_id, row.kind, row.channel) == (people.bob, "change", "email")
    assert deliver_due(sessions, dispatcher_for(smtp=smtp_server), now=NOW).sent == 1
    [message] = smtp_server.mailbox.messages
    assert message["To"] == "Bob <bob@example.com>"
    assert message["Subject"].startswith("Updated: Quarterly planning")
    text = message.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    # in Bob's zone: 14:00 Berlin is 08:00 in New York
    assert "Starts: Wed 03 Jun 2026, 08:00 EDT -> Thu 04 Jun 2026, 04:00 EDT" in body
    assert "Where: Room 1 -> Room 2" in body
    [attachment] = list(message.iter_attachments())
    calendar = icalendar.Calendar.from_ical(attachment.get_content())
    assert calendar["method"] == "REQUEST"
    [vevent] = calendar.walk("VEVENT")
    assert vevent.decoded("dtstart") == datetime(2026, 6, 4, 8, 0, tzinfo=UTC)
    assert vevent["location"] == "Room 2"
    attendees = sorted(str(a) for a in vevent.get("attendee"))
    assert "mailto:bob@example.com" in attendees


def test_the_same_change_seen_again_through_sync_is_not_told_twice(
    sessions: sessionmaker[Session], people: People
) -> None:
    with sessions.begin() as session:
        bobs_copy = add_event(
            session, PLANNING, user_id=people.bob, calendar_id=add_calendar(session, people.bob)
        )
    for event_id, source, actor in (
        (people.event_id, "api", people.alice),
        (people.event_id, "api", people.alice),  # a repeated call
        (bobs_copy, "sync", None),  # Bob's own copy of the event, synced from Google
    ):
        with sessions.begin() as session:
            event_changed(
                session,
                before=PLANNING,
                after=MOVED,
                event_id=event_id,
                actor_user_id=actor,
                source=source,  # type: ignore[arg-type]
                now=NOW,
            )

    assert [(n.user_id, n.kind) for n in notices(sessions)] == [(people.bob, "change")]


def test_a_cancellation_through_sync_reaches_the_attendees_not_the_organizer(
    sessions: sessionmaker[Session], people: People, smtp_server: SmtpServer
) -> None:
    cancelled = dataclasses.replace(PLANNING, status=EventStatus.CANCELLED)
    with sessions.begin() as session:
        event_changed(
            session,
            before=PLANNING,
            after=cancelled,
            event_id=people.event_id,
            actor_user_id=None,
            source="sync",
            now=NOW,
        )

    assert [n.user_id for n in notices(sessions)] == [people.bob]
    deliver_due(sessions, dispatcher_for(smtp=smtp_server), now=NOW)
    [message] = smtp_server.mailbox.messages
    assert message["Subject"].startswith("Cancelled: Quarterly planning")
    [attachment] = list(message.iter_attachments())
    assert icalendar.Calendar.from_ical(attachment.get_content())["method"] == "CANCEL"


def test_a_change_by_an_attendee_reaches_the_organizer(
    sessions: sessionmaker[Session], people: People
) -> None:
    with sessions.begin() as session:
        event_changed(
            session,
            before=PLANNING,
            after=dataclasses.replace(PLANNING, title="Planning (moved room)"),
            event_id=people.event_id,
            actor_user_id=people.bob,
            source="api",
            now=NOW,
        )

    [row] = notices(sessions)
    assert row.user_id == people.alice
    assert row.payload is not None
    assert row.payload["changed"] == ["title"]


def test_invitations_through_the_api_but_not_for_whole_calendars_pulled_by_sync(
    sessions: sessionmaker[Session], people: People
) -> None:
    for source in ("sync", "api"):
        with sessions.begin() as session:
            event_changed(
                session,
                before=None,
                after=PLANNING,
                event_id=people.event_id,
                actor_user_id=people.alice if source == "api" else None,
                source=source,
                now=NOW,
            )

    [row] = notices(sessions)
    assert row.user_id == people.bob
    assert row.payload is not None
    assert row.payload["change"] == "created"


def test_no_notice_for_users_who_turned_them_off_or_for_unnoticeable_changes(
    sessions: sessionmaker[Session], people: People
) -> None:
    with sessions.begin() as session:
        save_preferences(session, people.bob, Preferences(change_notices=False), BOX)
        assert (
            event_changed(
                session,
                before=PLANNING,
                after=MOVED,
                event_id=people.event_id,
                actor_user_id=people.alice,
                source="api",
                now=NOW,
            )
            == 0
        )
        assert (
            event_changed(
                session,
                before=PLANNING,
                after=dataclasses.replace(PLANNING, description="agenda attached"),
                event_id=people.event_id,
                actor_user_id=None,
                source="sync",
                now=NOW,
            )
            == 0
        )
    assert notices(sessions) == []


def test_every_chosen_channel_gets_its_own_record(
    sessions: sessionmaker[Session], people: People
) -> None:
    with sessions.begin() as session:
        save_preferences(
            session,
            people.bob,
            Preferences(
                channels=("email", "push", "webhook"), webhook_url="https://hooks.example.com/x"
            ),
            BOX,
        )
        event_changed(
            session,
            before=PLANNING,
            after=MOVED,
            event_id=people.event_id,
            actor_user_id=people.alice,
            source="api",
            now=NOW,
        )

    assert sorted(n.channel for n in notices(sessions)) == ["email", "push", "webhook"]
