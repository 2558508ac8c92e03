"""A 422 names every invalid field at once, on every route that takes a body (issue 18
item 10): a client fixes its request in one round trip, not one field per attempt. And
nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from calsync.domain.accounts import Role
from calsync.store.tables import Event as EventRow
from calsync.store.tables import OutboxEntry
from tests.integration.events.conftest import EventsApp

pytestmark = pytest.mark.integration

GOOD = {"title": "x", "start_time": "2031-03-04T10:00:00Z", "end_time": "2031-03-04T11:00:00Z"}
#: The issue's example: three stages used to stop at the first (the timezone).
THREE_BAD = {"start_time": "nope", "timezone": "Mars/Base", "reminders": [99999]}


def _fields(response: Any) -> set[str]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    for detail in error["details"]:
        assert detail["field"] in error["message"]
    return {d["field"] for d in error["details"]}


def _stored(app: EventsApp) -> tuple[int, int]:
    with app.services.sessions() as session:
        events = session.scalar(sa.select(sa.func.count()).select_from(EventRow))
        outbox = session.scalar(sa.select(sa.func.count()).select_from(OutboxEntry))
        return int(events or 0), int(outbox or 0)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            {**THREE_BAD, "end_time": "2031-03-04T11:00:00Z"},
            {"start_time", "timezone", "reminders"},
        ),
        # the times parse but need a zone; the texts and lists break calsync's rules
        (
            {
                "start_time": "2031-03-04T10:00:00",
                "end_time": "later",
                "title": "t" * 1025,
                "attendees": ["not-an-email"],
                "reminders": [-5],
                "metadata": {"k": {"nested": 1}},
                "colour": "red",
            },
            {"start_time", "end_time", "title", "attendees", "reminders", "metadata", "colour"},
        ),
        # a type error, a read-only field and a rule broken by a value of the right type
        (
            {**GOOD, "location": 5, "etag": '"x"', "description": "d" * 8193},
            {"location", "etag", "description"},
        ),
    ],
)
def test_create_names_every_bad_field(
    any_app: EventsApp, body: dict[str, Any], fields: set[str]
) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    response = app.client.post("/events", json=body, headers=alice.headers)
    assert _fields(response) == fields
    assert _stored(app) == (0, 0)


def test_create_names_a_bad_idempotency_key_with_the_body(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    response = app.client.post(
        "/events",
        json={**GOOD, "reminders": [99999]},
        headers=alice.headers | {"Idempotency-Key": "k" * 256},
    )
    assert _fields(response) == {"Idempotency-Key", "reminders"}


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_names_every_bad_field_for_each_user(any_app: EventsApp, method: str) -> None:
    app = any_app
    users = [app.connect(f"{name}@example.com") for name in ("alice", "bob")]
    for user in users:
        created = app.create(user, GOOD)
        before = app.get(user, created["id"])
        response = app.client.request(
            method,
            f"/events/{created['id']}",
            json={**THREE_BAD, "title": "t" * 1025},
            headers=user.headers,
            params={"scope": "sometimes"},
        )
        assert _fields(response) == {"scope", "start_time", "timezone", "reminders", "title"}
        assert app.get(user, created["id"]) == before


def test_preferences_name_every_bad_field(any_app: EventsApp) -> None:
    app = any_app
    for name in ("alice", "bob"):
        user = app.connect(f"{name}@example.com")
        before = app.client.get("/me/preferences", headers=user.headers).json()
        response = app.client.put(
            "/me/preferences",
            json={
                "reminder_minutes": [-1],
                "channels": ["pigeon"],
                "change_notices": "yes",
                "quiet_hours": {"start": "25:00", "end": "07:00"},
                "webhook_secret": "mine",
                "colour": "red",
            },
            headers=user.headers,
        )
        assert _fields(response) == {
            "reminder_minutes",
            "channels",
            "change_notices",
            "quiet_hours",
            "webhook_secret",
            "colour",
        }
        assert app.client.get("/me/preferences", headers=user.headers).json() == before


def test_a_push_subscription_names_every_bad_field(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    response = app.client.post(
        "/me/push-subscriptions",
        json={
            "endpoint": 5,
            "keys": {"p256dh": "AAAA", "auth": "!!"},
            "expirationTime": "soon",
            "extra": 1,
        },
        headers=alice.headers,
    )
    assert _fields(response) == {"endpoint", "keys.p256dh", "keys.auth", "expirationTime", "extra"}


def test_admin_and_calendar_changes_name_every_bad_field(any_app: EventsApp) -> None:
    app = any_app
    admin = app.connect("admin@example.com", role=Role.ADMIN)
    alice = app.connect("alice@example.com")
    response = app.client.patch(
        f"/admin/users/{alice.id}",
        json={"role": "king", "status": "asleep", "email": "x@example.com"},
        headers=admin.headers,
    )
    assert _fields(response) == {"role", "status", "email"}
    assert app.client.get("/me", headers=alice.headers).json()["role"] == "user"
    response = app.client.patch(
        f"/calendars/{alice.calendar_id}",
        json={"conflict_policy": "coin_toss", "colour": "red"},
        headers=alice.headers,
    )
    assert _fields(response) == {"conflict_policy", "colour"}


def test_every_field_error_says_what_to_fix_on_every_route(any_app: EventsApp) -> None:
    """api.md: ``details`` is a list of ``{"field", "issue", "message"}``. An unknown or
    read-only field of the preferences, a push subscription, a calendar or a user used
    to come back without its message, where the events' body gave one."""
    app = any_app
    admin = app.connect("admin@example.com", role=Role.ADMIN)
    alice = app.connect("alice@example.com")
    bob = app.connect("bob@example.com")
    calls = [
        ("PUT", "/me/preferences", {"colour": "red", "webhook_secret": "mine"}, alice),
        ("PUT", "/me/preferences", {"id": "x"}, bob),
        ("POST", "/me/push-subscriptions", {"extra": 1}, bob),
        ("PATCH", f"/calendars/{alice.calendar_id}", {"colour": "red"}, alice),
        ("PATCH", f"/admin/users/{bob.id}", {"email": "x@example.com"}, admin),
        ("POST", "/events", {**GOOD, "id": "x", "colour": "red"}, bob),
    ]
    for method, path, body, user in calls:
        response = app.client.request(method, path, json=body, headers=user.headers)
        assert response.status_code == 422, response.text
        for detail in response.json()["error"]["details"]:
            assert set(detail) == {"field", "issue", "message"}, (path, detail)
            assert detail["message"], (path, detail)
