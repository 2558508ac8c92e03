"""A write route refuses a query parameter it does not take (422 naming it), as every
list does, instead of acting on a default the client did not mean: the event of
``POST /events?calendar_id=C`` used to land on the primary calendar, and
``POST /sync?calendarId=C`` pulled every calendar (decision JN3)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from calsync.domain.accounts import Role
from calsync.store.tables import Event as EventRow
from tests.integration.events.conftest import EventsApp

pytestmark = pytest.mark.integration

GOOD = {"title": "x", "start_time": "2031-03-04T10:00:00Z", "end_time": "2031-03-04T11:00:00Z"}


def _stored_events(app: EventsApp) -> int:
    with app.services.sessions() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(EventRow)) or 0)


def test_a_create_names_an_unknown_query_parameter_with_the_body_and_creates_nothing(
    any_app: EventsApp,
) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    bob = app.connect("bob@example.com")
    for user in (alice, bob):
        answer = app.client.post(
            "/events",
            params={"calendar_id": str(user.calendar_id)},
            json={**GOOD, "reminders": [99999]},
            headers={**user.headers, "Idempotency-Key": "k1"},
        )
        assert answer.status_code == 422, answer.text
        details = answer.json()["error"]["details"]
        assert {(d["field"], d["issue"]) for d in details} == {
            ("calendar_id", "unknown"),
            ("reminders", "invalid"),
        }
        # the key was not spent on the refusal: the corrected request creates the event
        fixed = app.client.post(
            "/events",
            json={**GOOD, "calendar_id": str(user.calendar_id)},
            headers={**user.headers, "Idempotency-Key": "k1"},
        )
        assert fixed.status_code == 201, fixed.text
    assert _stored_events(app) == 2


def test_a_sync_names_an_unknown_query_parameter(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    bob = app.connect("bob@example.com")
    for user in (alice, bob):
        answer = app.client.post(
            "/sync", params={"calendarId": str(user.calendar_id)}, headers=user.headers
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["details"] == [
            {"field": "calendarId", "issue": "unknown", "message": "unknown parameter"}
        ]
        right = app.client.post(
            "/sync", params={"calendar_id": str(user.calendar_id)}, headers=user.headers
        )
        assert right.status_code == 202, right.text
        answered = right.json()
        assert answered["queued"] + answered["already_queued"] == [str(user.calendar_id)]


def test_every_other_write_names_an_unknown_query_parameter_and_changes_nothing(
    any_app: EventsApp,
) -> None:
    """The routes with a body and no parameter: the body's problems and the parameter
    in one 422, as api.md's "on every route" says."""
    app = any_app
    admin = app.connect("admin@example.com", role=Role.ADMIN)
    alice = app.connect("alice@example.com")
    bob = app.connect("bob@example.com")
    subscription = {
        "endpoint": "https://push.example.com/send/abc",
        "keys": {
            "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1Xbjh"
            "azAkj7I99e8QcYP7DkM",
            "auth": "tBHItJI5svbpez7KI4CCXg",
        },
    }
    calls = [
        ("PUT", "/me/preferences", {"change_notices": False}, alice, {"user_id": str(bob.id)}),
        ("POST", "/me/push-subscriptions", subscription, bob, {"user": "alice"}),
        (
            "PATCH",
            f"/calendars/{alice.calendar_id}",
            {"conflict_policy": "manual"},
            alice,
            {"calendar_id": str(alice.calendar_id)},
        ),
        ("PATCH", f"/admin/users/{bob.id}", {"role": "admin"}, admin, {"dry_run": "1"}),
    ]
    for method, path, body, user, params in calls:
        answer = app.client.request(method, path, json=body, params=params, headers=user.headers)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["error"]["details"] == [
            {"field": name, "issue": "unknown", "message": "unknown parameter"} for name in params
        ], path
    assert app.client.get("/me/preferences", headers=alice.headers).json()["change_notices"]
    assert app.client.get("/me", headers=bob.headers).json()["role"] == "user"
    calendars = app.client.get("/calendars", headers=alice.headers).json()["calendars"]
    assert [c["conflict_policy"] for c in calendars] == [None]
