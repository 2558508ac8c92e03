"""A pull plans the reminders of its upcoming changes with each owner's preferences,
read with the changed rows rather than by a statement of their own (IH3).

Three users: Ann has preferences of her own (two lead times), Ben keeps the defaults
(the event's own reminder), Cat has asked for no reminders at all. Each moves an upcoming
event of theirs at Google; each pull plans exactly what the owner asked for, on both
databases, and no statement of the pull reads ``notification_preferences`` apart.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
import sqlalchemy as sa

from calsync.store.tables import Event, NotificationDelivery
from calsync.sync.pull import pull_calendar
from tests.integration.sync.conftest import SyncStack

pytestmark = pytest.mark.integration

ANN, BEN, CAT = "ann@example.com", "ben@example.com", "cat@example.com"
#: What each asks for (`PUT /me/preferences`; Ben sends nothing: the defaults).
PREFERENCES: dict[str, dict[str, Any]] = {
    ANN: {"reminder_minutes": [60, 15], "channels": ["email", "push"]},
    CAT: {"reminder_minutes": []},
}
#: The reminders each pull must plan: (lead in minutes, channel).
EXPECTED = {
    ANN: [(15, "email"), (15, "push"), (60, "email"), (60, "push")],
    BEN: [(10, "email")],
    CAT: [],
}


def _times(start: datetime) -> dict[str, Any]:
    return {
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
    }


def _pulled_tomorrow(
    stack: SyncStack, calendars: dict[str, uuid.UUID]
) -> tuple[datetime, dict[str, str]]:
    """An event tomorrow in each of `calendars` (by owner's email), inserted at Google
    by its owner and pulled: its start, and each one's Google id."""
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    own = {}
    for email, calendar_id in calendars.items():
        own[email] = (
            stack.google_as(email)
            .events()
            .insert(calendarId=email, body={"summary": f"{email}'s", **_times(soon)})
            .execute()["id"]
        )
        assert pull_calendar(stack.services, calendar_id).status == "ok"
    return soon, own


def _planned(stack: SyncStack, google_id: str) -> list[tuple[int, str]]:
    """The pending reminders of the event `google_id`: (lead in minutes, channel)."""
    with stack.services.sessions() as session:
        rows = session.execute(
            sa.select(NotificationDelivery.due_at, NotificationDelivery.channel, Event.start_time)
            .join(Event, Event.id == NotificationDelivery.event_id)
            .where(
                Event.google_event_id == google_id,
                NotificationDelivery.kind == "reminder",
                NotificationDelivery.status == "pending",
            )
        ).all()
    return sorted(
        (round((start - due).total_seconds() / 60), channel) for due, channel, start in rows
    )


def test_a_pulls_upcoming_changes_get_their_owners_reminders_without_a_preferences_read(
    hand_stack: SyncStack, statements: list[str]
) -> None:
    users = {email: hand_stack.connect_pulled(email) for email in (ANN, BEN, CAT)}
    calendars = {email: hand_stack.calendar_id(users[email], email) for email in users}
    with httpx.Client(base_url=hand_stack.url) as client:
        for email, wanted in PREFERENCES.items():
            answer = client.put(
                "/me/preferences", json=wanted, headers=hand_stack.headers(users[email])
            )
            assert answer.status_code == 200, answer.text
    # Given each has an event tomorrow (its reminders due within the horizon), pulled
    soon, own = _pulled_tomorrow(hand_stack, calendars)
    for email in users:
        # When its owner moves it an hour later at Google and calsync pulls
        hand_stack.google_as(email).events().patch(
            calendarId=email, eventId=own[email], body=_times(soon + timedelta(hours=1))
        ).execute()
        statements.clear()
        assert pull_calendar(hand_stack.services, calendars[email]).status == "ok"
        # Then the reminders planned are the owner's, before the moved start
        assert _planned(hand_stack, own[email]) == EXPECTED[email], email
        # And no statement read the preferences apart: they came with the changed row
        apart = [s for s in statements if s.startswith("select notification_preferences")]
        assert apart == [], email
    # And Cat, who asked for none, has no reminder pending at all
    with hand_stack.services.sessions() as session:
        owners = set(
            session.scalars(
                sa.select(NotificationDelivery.user_id).where(
                    NotificationDelivery.kind == "reminder",
                    NotificationDelivery.status == "pending",
                )
            )
        )
    assert owners == {users[ANN], users[BEN]}


def test_an_api_edit_committed_while_a_pull_stores_its_listing_is_planned_for(
    hand_stack: SyncStack,
) -> None:
    users = {email: hand_stack.connect_pulled(email) for email in (ANN, BEN)}
    calendars = {email: hand_stack.calendar_id(users[email], email) for email in users}
    with httpx.Client(base_url=hand_stack.url) as client:
        answer = client.put(
            "/me/preferences", json=PREFERENCES[ANN], headers=hand_stack.headers(users[ANN])
        )
        assert answer.status_code == 200, answer.text
    soon, own = _pulled_tomorrow(hand_stack, calendars)
    engine = hand_stack.services.engine
    for email in users:
        with hand_stack.services.sessions() as session:
            local_id = session.scalar(
                sa.select(Event.id).where(Event.google_event_id == own[email])
            )
        # Given the event moved an hour later at Google
        hand_stack.google_as(email).events().patch(
            calendarId=email, eventId=own[email], body=_times(soon + timedelta(hours=1))
        ).execute()
        edited: list[int] = []

        def edit_first(
            *args: Any, email: str = email, local_id: Any = local_id, edited: list[int] = edited
        ) -> None:
            # When its owner retitles it through the API after the pull listed the
            # change and before its transaction stores it (the pull's first write)
            if edited or not str(args[2]).lower().startswith("update calendars set sync_token"):
                return
            with httpx.Client(base_url=hand_stack.url) as client:
                answer = client.put(
                    f"/events/{local_id}",
                    json={"title": "renamed"},
                    headers=hand_stack.headers(users[email]),
                )
            edited.append(answer.status_code)

        sa.event.listen(engine, "before_cursor_execute", edit_first)
        try:
            assert pull_calendar(hand_stack.services, calendars[email]).status == "ok"
        finally:
            sa.event.remove(engine, "before_cursor_execute", edit_first)
        assert edited == [200], email
        # Then the row holds both changes, and its reminders are the owner's, before the
        # moved start (none left at the old one)
        with hand_stack.services.sessions() as session:
            row = session.execute(
                sa.select(Event.title, Event.start_time).where(Event.id == local_id)
            ).one()
        assert (row.title, row.start_time) == ("renamed", soon + timedelta(hours=1)), email
        assert _planned(hand_stack, own[email]) == EXPECTED[email], email
