"""A pull's change notices read the recipients only when someone may be told (IC1).

A pull of changes made at Google tells the people of each event but its author, the
organizer (a sync does not say who changed it). When the calendar's owner is the
organizer and the only person of every change, nobody is told, and on PostgreSQL the
pull knows it without reading the users: the statement that ends the pull returns the
owner's email. What must not change: an attendee who is another user is told, the owner
of a shared calendar's copy (not its organizer) is told, the owner of an invitation is
told; all on both databases (SQLite still reads the users: its ``RETURNING`` cannot name
the joined table).
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from calsync.store.tables import NotificationDelivery
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.pull import pull_calendar
from tests.integration.sync.conftest import SyncStack

pytestmark = pytest.mark.integration

ANN, BEN, CAT = "ann@example.com", "ben@example.com", "cat@example.com"
TIMES = {
    "start": {"dateTime": "2026-09-01T09:00:00Z"},
    "end": {"dateTime": "2026-09-01T10:00:00Z"},
}


def _recipients_reads(sent: list[str]) -> list[str]:
    """The notices' read of their recipients among `sent` (`recipients.active_users`)."""
    return [s for s in sent if "from users" in s and "status !=" in s]


def _told(stack: SyncStack, google_id: str) -> list[uuid.UUID]:
    """The users told of changes of the events whose Google id is `google_id`."""
    with stack.services.sessions() as session:
        return sorted(
            session.scalars(
                sa.select(NotificationDelivery.user_id).where(
                    NotificationDelivery.kind == "change",
                    NotificationDelivery.payload["event"]["uid"].as_string() == google_id,
                )
            )
        )


def _changed_and_pulled(
    stack: SyncStack, calendar_id: uuid.UUID, google_calendar: str, event_id: str, by: str
) -> None:
    stack.google_as(by).events().patch(
        calendarId=google_calendar, eventId=event_id, body={"summary": "moved on"}
    ).execute()
    assert pull_calendar(stack.services, calendar_id).status == "ok"


def test_a_pull_whose_owner_is_the_only_person_reads_nobody_and_others_are_told(
    hand_stack: SyncStack, statements: list[str]
) -> None:
    postgresql = hand_stack.services.engine.dialect.name == "postgresql"
    users = {email: hand_stack.connect_pulled(email) for email in (ANN, BEN, CAT)}
    calendars = {email: hand_stack.calendar_id(users[email], email) for email in users}
    # Given each of Ann and Ben has an event of their own (no attendees), pulled
    own = {}
    for email in (ANN, BEN):
        own[email] = (
            hand_stack.google_as(email)
            .events()
            .insert(calendarId=email, body={"summary": f"{email} alone", **TIMES})
            .execute()["id"]
        )
        assert pull_calendar(hand_stack.services, calendars[email]).status == "ok"
    # When each changes it at Google and calsync pulls
    for email in (ANN, BEN):
        statements.clear()
        _changed_and_pulled(hand_stack, calendars[email], email, own[email], by=email)
        # Then nobody is told, and on PostgreSQL nobody was read
        assert _told(hand_stack, own[email]) == []
        assert len(_recipients_reads(statements)) == (0 if postgresql else 1), email
    # Given Ann's event with Cat as an attendee, pulled
    invited = (
        hand_stack.google_as(ANN)
        .events()
        .insert(
            calendarId=ANN,
            body={"summary": "with Cat", "attendees": [{"email": CAT}], **TIMES},
        )
        .execute()["id"]
    )
    assert pull_calendar(hand_stack.services, calendars[ANN]).status == "ok"
    # When Ann changes it: the users are read, and Cat alone is told (Ann is the author)
    statements.clear()
    _changed_and_pulled(hand_stack, calendars[ANN], ANN, invited, by=ANN)
    assert len(_recipients_reads(statements)) == 1
    assert _told(hand_stack, invited) == [users[CAT]]


def test_an_invitation_in_the_owners_calendar_tells_the_owner(
    hand_stack: SyncStack, statements: list[str]
) -> None:
    users = {email: hand_stack.connect_pulled(email) for email in (ANN, BEN)}
    ann_calendar = hand_stack.calendar_id(users[ANN], ANN)
    # Given Ann's calendar holds a copy of a meeting Ben organises (imported: Ben is the
    # organizer, Ann the owner of the copy), pulled
    copy = (
        hand_stack.google_as(ANN)
        .events()
        .import_(
            calendarId=ANN,
            body={
                "iCalUID": "bens-meeting@example.com",
                "summary": "Ben's meeting",
                "organizer": {"email": BEN},
                "attendees": [{"email": ANN}, {"email": BEN}],
                **TIMES,
            },
        )
        .execute()["id"]
    )
    assert pull_calendar(hand_stack.services, ann_calendar).status == "ok"
    # When the copy changes at Google and calsync pulls
    statements.clear()
    _changed_and_pulled(hand_stack, ann_calendar, ANN, copy, by=ANN)
    # Then Ann is told (the owner, not the organizer); Ben, the author, is not
    assert len(_recipients_reads(statements)) == 1
    assert _told(hand_stack, copy) == [users[ANN]]


def test_a_shared_calendars_copy_tells_its_owner_not_the_organizer(
    hand_stack: SyncStack, statements: list[str]
) -> None:
    ann = hand_stack.connect_pulled(ANN)
    # Given Ben reads a calendar of Ann's through calsync
    granted = hand_stack.connect(
        BEN, calendars=[{"summary": "Ann's team", "access_role": "reader", "owner": ANN}]
    )
    ben = hand_stack.user_id
    sync_calendar_list(hand_stack.services, ben)
    [team] = [c["id"] for c in granted["calendars"] if c["summary"] == "Ann's team"]
    team_calendar = hand_stack.calendar_id(ben, team)
    meeting = (
        hand_stack.google_as(ANN)
        .events()
        .insert(calendarId=team, body={"summary": "Team day", **TIMES})
        .execute()["id"]
    )
    assert pull_calendar(hand_stack.services, team_calendar).status == "ok"
    # When Ann changes the meeting and calsync pulls Ben's copy of the calendar
    statements.clear()
    _changed_and_pulled(hand_stack, team_calendar, team, meeting, by=ANN)
    # Then Ben, the owner of the copy, is told; Ann is not (the organizer: the author)
    assert len(_recipients_reads(statements)) == 1
    told = _told(hand_stack, meeting)
    assert told == [ben]
    assert ann not in told
