"""Who lists: the account the authentication backend reads (`users.account_by_id`) is
`find_by_id`'s, and a change of the user row (disabled, role, zone) applies to the very
next list, warm list memos or not; another user's event ids stay invisible."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from calsync.domain.accounts import Role
from calsync.store.tables import User as UserRow
from calsync.store.users import find_by_id
from calsync.web.auth.principal import JWTAuthBackend
from tests.integration.events.conftest import EventsApp

pytestmark = pytest.mark.integration

MARCH = {"start_date": "2031-03-01", "end_date": "2031-03-31", "expand": "true"}


def set_user(app: EventsApp, user_id: uuid.UUID, **values: str) -> None:
    with app.services.sessions.begin() as session:
        session.execute(sa.update(UserRow).where(UserRow.id == user_id).values(**values))


def test_the_backend_reads_the_account_the_repository_does(any_app: EventsApp) -> None:
    alice = any_app.local_user("alice@example.com", Role.ADMIN)
    set_user(any_app, alice.id, display_name="Alice", timezone="Asia/Tokyo")
    backend = JWTAuthBackend(any_app.services)
    with any_app.services.sessions() as session:
        expected = find_by_id(session, alice.id)
    assert expected is not None
    assert backend._load(str(alice.id)) == expected
    assert backend._load(str(uuid.uuid4())) is None
    assert backend._load("not a uuid") is None


def test_a_disabled_user_is_refused_at_once_and_a_zone_change_applies(app: EventsApp) -> None:
    # Given a user whose month was listed (memos warm)
    alice = app.connect("alice@example.com")
    app.create(
        alice,
        {
            "title": "weekly",
            "start_time": "2031-03-03T22:00:00Z",
            "end_time": "2031-03-03T23:00:00Z",
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
        },
    )
    first = app.client.get("/events", params=MARCH, headers=alice.headers)
    assert first.status_code == 200
    assert len(first.json()["events"]) == 3
    # When her zone changes, her dates are days in the new zone at once
    fourth = MARCH | {"start_date": "2031-03-04", "end_date": "2031-03-04"}
    assert app.client.get("/events", params=fourth, headers=alice.headers).json()["events"] == []
    set_user(app, alice.id, timezone="Pacific/Kiritimati")  # UTC+14: March 3 22:00 is the 4th
    shifted = app.client.get("/events", params=fourth, headers=alice.headers)
    assert [e["start_time"] for e in shifted.json()["events"]] == ["2031-03-03T22:00:00+00:00"]
    # And when she is disabled, her next list is refused
    set_user(app, alice.id, status="disabled")
    refused = app.client.get("/events", params=MARCH, headers=alice.headers)
    assert refused.status_code == 401


def test_another_users_event_is_404(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    bob = app.connect("bob@example.com")
    created = app.create(
        alice,
        {
            "title": "mine",
            "start_time": "2031-03-03T10:00:00Z",
            "end_time": "2031-03-03T11:00:00Z",
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=2"],
        },
    )
    assert app.client.get("/events", params=MARCH, headers=bob.headers).json()["events"] == []
    for event_id in (created["id"], f"{created['id']}_20310303T100000Z"):
        assert app.client.get(f"/events/{event_id}", headers=bob.headers).status_code == 404
