"""The notice routes over HTTP, in both modes: preferences, push subscriptions, records."""

from __future__ import annotations

import base64
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from calsync.store.tables import NotificationDelivery, PushSubscription
from tests.integration.accounts.conftest import App

pytestmark = pytest.mark.integration

DEFAULTS = {
    "reminder_minutes": None,
    "channels": ["email"],
    "webhook_url": None,
    "webhook_secret": None,
    "change_notices": True,
    "quiet_hours": None,
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def subscription(endpoint: str = "https://push.example.net/send/abc") -> dict[str, Any]:
    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return {
        "endpoint": endpoint,
        "expirationTime": None,
        "keys": {"p256dh": b64(public), "auth": b64(os.urandom(16))},
    }


def test_preferences_start_as_defaults_and_change_field_by_field(app: App) -> None:
    _, headers = app.user("pat@example.com")

    assert app.client.get("/me/preferences", headers=headers).json() == DEFAULTS

    answer = app.client.put(
        "/me/preferences",
        headers=headers,
        json={
            "reminder_minutes": [10, 60],
            "channels": ["email", "push", "webhook"],
            "webhook_url": "https://hooks.example.com/calsync",
            "quiet_hours": {"start": "22:00", "end": "07:00"},
        },
    )
    assert answer.status_code == 200
    saved = answer.json()
    assert saved["webhook_secret"].startswith("whsec_")
    assert saved | {"webhook_secret": None} == {
        "reminder_minutes": [10, 60],
        "channels": ["email", "push", "webhook"],
        "webhook_url": "https://hooks.example.com/calsync",
        "webhook_secret": None,
        "change_notices": True,
        "quiet_hours": {"start": "22:00", "end": "07:00"},
    }
    # A later change keeps the other fields and the same secret
    again = app.client.put("/me/preferences", headers=headers, json={"change_notices": False})
    assert again.json() == saved | {"change_notices": False}
    assert app.client.get("/me/preferences", headers=headers).json() == again.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reminder_minutes": [-5]}, "reminder_minutes"),
        ({"channels": ["sms"]}, "channels"),
        ({"channels": ["webhook"]}, "webhook_url"),
        ({"webhook_url": "https://10.0.0.1/hook"}, "webhook_url"),
        ({"webhook_url": "http://hooks.example.com/"}, "webhook_url"),
        ({"change_notices": 1}, "change_notices"),
        ({"quiet_hours": {"start": "9", "end": "10"}}, "quiet_hours"),
        ({"colour": "blue"}, "colour"),
        ({"webhook_secret": "mine"}, "webhook_secret"),
    ],
)
def test_bad_preferences_are_422_naming_the_field_and_change_nothing(
    app: App, body: dict[str, Any], field: str
) -> None:
    _, headers = app.user("pat@example.com")

    answer = app.client.put("/me/preferences", headers=headers, json=body)

    assert answer.status_code == 422
    error = answer.json()["error"]
    assert [d["field"] for d in error["details"]] == [field]
    assert app.client.get("/me/preferences", headers=headers).json() == DEFAULTS


def test_the_routes_need_a_token_and_json(app: App) -> None:
    assert app.client.get("/me/preferences").status_code == 401
    assert app.client.get("/me/notices").status_code == 401
    assert app.client.post("/me/push-subscriptions", json=subscription()).status_code == 401
    _, headers = app.user("pat@example.com")
    assert app.client.put("/me/preferences", headers=headers, content=b"{}").status_code == 415


def test_push_subscriptions_are_registered_once_per_endpoint_and_deleted(app: App) -> None:
    account, headers = app.user("pat@example.com")
    body = subscription()

    first = app.client.post("/me/push-subscriptions", headers=headers, json=body)
    again = app.client.post("/me/push-subscriptions", headers=headers, json=body)

    assert first.status_code == 201
    assert again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    with app.services.sessions() as session:
        [row] = session.query(PushSubscription).all()
        assert row.user_id == account.id
    # another user cannot delete it
    _, other = app.user("sam@example.com")
    path = f"/me/push-subscriptions/{first.json()['id']}"
    assert app.client.delete(path, headers=other).status_code == 404
    assert app.client.delete(path, headers=headers).status_code == 204
    assert app.client.delete(path, headers=headers).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": "http://push.example.net/x"}, "endpoint"),
        ({"endpoint": "https://127.0.0.1/x"}, "endpoint"),
        ({"keys": {"p256dh": "abc", "auth": b64(os.urandom(16))}}, "keys.p256dh"),
        ({"keys": {"p256dh": None, "auth": b64(os.urandom(16))}}, "keys.p256dh"),
        ({"keys": "x"}, "keys"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_push_subscriptions_are_422(app: App, change: dict[str, Any], field: str) -> None:
    _, headers = app.user("pat@example.com")
    body = subscription() | change

    answer = app.client.post("/me/push-subscriptions", headers=headers, json=body)

    assert answer.status_code == 422
    assert [d["field"] for d in answer.json()["error"]["details"]] == [field]


def add_notices(app: App, user_id: uuid.UUID, count: int) -> None:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    with app.services.sessions.begin() as session:
        for i in range(count):
            session.add(
                NotificationDelivery(
                    user_id=user_id,
                    kind="reminder" if i % 2 else "change",
                    channel="email",
                    dedupe_key=f"test|{user_id}|{i}",
                    status="sent" if i % 3 else "failed",
                    reason=None if i % 3 else "the mail server answered 550",
                    due_at=start + timedelta(minutes=i),
                    created_at=start + timedelta(minutes=i),
                    payload={"event": {"title": f"Event {i}"}},
                )
            )


def test_notices_are_listed_newest_first_a_page_at_a_time_and_only_the_callers(
    app: App,
) -> None:
    pat, headers = app.user("pat@example.com")
    sam, sam_headers = app.user("sam@example.com")
    add_notices(app, pat.id, 7)
    add_notices(app, sam.id, 3)

    titles: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = app.client.get("/me/notices", headers=headers, params=params).json()
        titles += [n["title"] for n in page["notices"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert titles == [f"Event {i}" for i in reversed(range(7))]
    assert pages == 3
    assert len(app.client.get("/me/notices", headers=sam_headers).json()["notices"]) == 3
    failed = app.client.get("/me/notices", headers=headers, params={"status": "failed"}).json()
    assert [n["reason"] for n in failed["notices"]] == ["the mail server answered 550"] * 3
    assert {n["kind"] for n in failed["notices"]} <= {"reminder", "change"}


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"limit": "0"}, 422),
        ({"limit": "201"}, 422),
        ({"status": "lost"}, 422),
        ({"kind": "spam"}, 422),
        ({"cursor": "not-a-cursor"}, 422),
    ],
)
def test_bad_notice_queries(app: App, params: dict[str, str], status: int) -> None:
    _, headers = app.user("pat@example.com")
    assert app.client.get("/me/notices", headers=headers, params=params).status_code == status
