"""Granular consent (Google, 2024): a user may untick calendar access on the consent
screen. Through HTTP, the OAuth dance against the emulator, with the queued jobs run by a
worker, on both databases and brokers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx2 as httpx
import pytest
import sqlalchemy as sa

from calsync.config import Settings
from calsync.runtime import worker_threads
from calsync.store.tables import Calendar, OAuthToken, SyncLog, User, WatchChannel
from tests.conftest import FakeGoogle
from tests.integration.accounts.conftest import App, running_app
from tests.integration.accounts.test_google_sign_in import consent

pytestmark = pytest.mark.integration

CALENDAR = "https://www.googleapis.com/auth/calendar"
ONLY_SIGN_IN = ["openid", "email"]


@pytest.fixture(params=["embedded", "production"])
def app(request: pytest.FixtureRequest, fake_google: FakeGoogle) -> Iterator[App]:
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    yield from running_app(fake_google.settings_for(settings))


def run_queued_jobs(app: App) -> None:
    """Let a worker process every job queued so far (the connection, its first pulls)."""
    broker = app.services.broker
    with worker_threads(app.services, threads=2):
        for _ in range(2):  # a job's own follow-ups land on the queues meanwhile
            for queue in broker.get_declared_queues():
                broker.join(queue, timeout=60_000)


def calendars_of(app: App, user_id: str) -> list[str]:
    with app.services.sessions() as session:
        return list(
            session.scalars(
                sa.select(Calendar.provider_calendar_id).where(
                    Calendar.user_id == uuid.UUID(user_id)
                )
            )
        )


def channels_of(app: App, user_id: str) -> int:
    with app.services.sessions() as session:
        count = session.scalar(
            sa.select(sa.func.count())
            .select_from(WatchChannel)
            .where(WatchChannel.user_id == uuid.UUID(user_id))
        )
    return int(count or 0)


def me(app: App, token: str) -> dict[str, object]:
    answer = app.client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_the_emulator_grants_only_the_ticked_scopes(app: App, fake_google: FakeGoogle) -> None:
    # Given a user who will tick no box on the granular consent screen
    fake_google.control.create_user("carol@example.com")
    fake_google.control.set_consent("carol@example.com", ONLY_SIGN_IN)
    start = app.client.get(
        "/auth/google", params={"login_hint": "carol@example.com"}, follow_redirects=False
    )

    # When Google redirects back, the granted scope lacks the calendar, and its token
    # gets Google's 403 insufficientPermissions on the Calendar API
    back = httpx.get(start.headers["location"], follow_redirects=False)
    granted = httpx.QueryParams(back.headers["location"].split("?", 1)[1])["scope"].split()
    assert CALENDAR not in granted
    assert "https://www.googleapis.com/auth/userinfo.email" in granted  # Google's name
    assert "https://www.googleapis.com/auth/userinfo.profile" in granted  # Sign-In: all
    tokens = fake_google.control.issue_tokens("carol@example.com", scopes=granted)
    refused = httpx.get(
        f"{fake_google.url}/calendar/v3/users/me/calendarList",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["errors"][0]["reason"] == "insufficientPermissions"


def test_a_sign_in_without_calendar_access_is_signed_in_but_not_connected(
    app: App, fake_google: FakeGoogle
) -> None:
    # Given Alice, who unticks calendar access, and Bob, who ticks every box
    fake_google.control.create_user("alice@example.com")
    fake_google.control.create_user("bob@example.com")
    fake_google.control.set_consent("alice@example.com", ONLY_SIGN_IN)
    fake_google.control.clear_requests()

    # When both sign in and the queued jobs run
    alice = consent(app, "alice@example.com")
    bob = consent(app, "bob@example.com")
    run_queued_jobs(app)

    # Then Alice gets a clear 403 that still carries her JWT and account
    assert alice.status_code == 403, alice.text
    refusal = alice.json()
    assert refusal["error"]["code"] == "calendar_access_not_granted"
    assert "tick calendar access" in refusal["error"]["message"]
    assert refusal["user"]["calendar_access"] is False
    alice_id = refusal["user"]["id"]
    # and she is active (not needs_reauth), without calendar access, and nothing synced
    shown = me(app, refusal["token"])
    assert (shown["id"], shown["status"], shown["calendar_access"]) == (alice_id, "active", False)
    assert calendars_of(app, alice_id) == []
    assert channels_of(app, alice_id) == 0
    assert fake_google.control.requests(user="alice@example.com", path_regex="^/calendar/") == []
    with app.services.sessions() as session:
        row = session.scalar(sa.select(User).where(User.id == uuid.UUID(alice_id)))
        token = session.scalar(
            sa.select(OAuthToken).where(OAuthToken.user_id == uuid.UUID(alice_id))
        )
        logged = session.scalars(
            sa.select(SyncLog.message).where(SyncLog.user_id == uuid.UUID(alice_id))
        ).all()
    assert row is not None
    assert row.status == "active"
    assert token is not None
    assert token.status == "valid"
    assert CALENDAR not in token.scopes.split()
    assert any("calendar access was not granted" in (m or "") for m in logged)
    # And Bob is connected: his calendar listed and pulled, its channels open
    assert bob.status_code == 200, bob.text
    bob_id = bob.json()["user"]["id"]
    assert bob.json()["user"]["calendar_access"] is True
    assert me(app, bob.json()["token"])["calendar_access"] is True
    assert calendars_of(app, bob_id) == ["bob@example.com"]
    assert channels_of(app, bob_id) == 2  # the calendar list and the primary calendar

    # When Alice signs in again and ticks calendar access
    fake_google.control.set_consent("alice@example.com", None)
    again = consent(app, "alice@example.com")
    run_queued_jobs(app)

    # Then she is connected like Bob, as the same user
    assert again.status_code == 200, again.text
    assert again.json()["user"]["id"] == alice_id
    assert me(app, again.json()["token"])["calendar_access"] is True
    assert calendars_of(app, alice_id) == ["alice@example.com"]
    assert channels_of(app, alice_id) == 2


def test_workers_never_use_tokens_without_calendar_access(
    app: App, fake_google: FakeGoogle
) -> None:
    # Given Alice, connected, who then signs in again unticking calendar access
    fake_google.control.create_user("alice@example.com")
    alice_id = consent(app, "alice@example.com").json()["user"]["id"]
    run_queued_jobs(app)
    assert calendars_of(app, alice_id) == ["alice@example.com"]
    fake_google.control.set_consent("alice@example.com", ONLY_SIGN_IN)
    assert consent(app, "alice@example.com").status_code == 403
    fake_google.control.clear_requests()

    # When a connection and a pull of her calendar are queued several times
    for _ in range(3):
        app.services.jobs.connect_user.send(alice_id)
        with app.services.sessions() as session:
            calendar_id = session.scalar(
                sa.select(Calendar.id).where(Calendar.user_id == uuid.UUID(alice_id))
            )
        app.services.jobs.sync_calendar.send(str(calendar_id))
    run_queued_jobs(app)

    # Then Google saw no call for her, and she was not marked needs_reauth
    assert fake_google.control.requests(user="alice@example.com") == []
    with app.services.sessions() as session:
        status = session.scalar(sa.select(User.status).where(User.id == uuid.UUID(alice_id)))
    assert status == "active"
