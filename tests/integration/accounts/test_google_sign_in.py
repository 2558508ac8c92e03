"""The whole Google OAuth dance against the emulator, through HTTP, and what it stores."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import pytest
import sqlalchemy as sa

from calsync.config import Settings
from calsync.providers.errors import AccountNeedsReauth
from calsync.store.tables import AuditEvent, OAuthToken, User
from calsync.sync.connect import connect_user
from tests.conftest import FakeGoogle
from tests.integration.accounts.conftest import App, running_app

pytestmark = pytest.mark.integration


@pytest.fixture(params=["embedded", "production"])
def app(request: pytest.FixtureRequest, fake_google: FakeGoogle) -> Iterator[App]:
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    yield from running_app(fake_google.settings_for(settings))


def consent(app: App, login_hint: str = "alice@example.com") -> httpx.Response:
    """Start sign-in, let the emulator consent, and return calsync's callback answer."""
    start = app.client.get(
        "/auth/google", params={"login_hint": login_hint}, follow_redirects=False
    )
    assert start.status_code == 302
    at_google = httpx.get(start.headers["location"], follow_redirects=False)
    assert at_google.is_redirect
    back = urlsplit(at_google.headers["location"])
    assert back.path == "/auth/google/callback"
    return app.client.get(f"{back.path}?{back.query}")


def callback_query(app: App, login_hint: str = "alice@example.com") -> str:
    start = app.client.get(
        "/auth/google", params={"login_hint": login_hint}, follow_redirects=False
    )
    return urlsplit(httpx.get(start.headers["location"]).headers["location"]).query


def test_the_dance_yields_a_jwt_and_stores_only_ciphertext(app: App) -> None:
    answer = consent(app)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["user"]["email"] == "alice@example.com"
    me = app.client.get("/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.json()["status"] == "active"
    with app.services.sessions() as session:
        row = session.scalar(sa.select(OAuthToken))
        signed_in = session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "sign_in"))
    assert row is not None
    assert row.refresh_token_encrypted is not None
    access = app.services.secrets.decrypt(row.access_token_encrypted)
    refresh = app.services.secrets.decrypt(row.refresh_token_encrypted)
    assert access.encode() not in row.access_token_encrypted
    assert refresh.encode() not in row.refresh_token_encrypted
    assert access not in answer.text
    assert signed_in is not None


def test_the_authorization_url_asks_for_offline_access_with_pkce(app: App) -> None:
    start = app.client.get(
        "/auth/google", params={"login_hint": "bob@example.com"}, follow_redirects=False
    )
    query = parse_qs(urlsplit(start.headers["location"]).query)

    assert query["access_type"] == ["offline"]
    assert query["include_granted_scopes"] == ["true"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["login_hint"] == ["bob@example.com"]
    assert query["redirect_uri"] == ["http://testserver/auth/google/callback"]
    assert "https://www.googleapis.com/auth/calendar" in query["scope"][0].split()


def count(app: App, table: type[User] | type[OAuthToken]) -> int:
    with app.services.sessions() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


def test_a_replayed_callback_is_refused(app: App) -> None:
    query = callback_query(app)
    assert app.client.get(f"/auth/google/callback?{query}").status_code == 200

    replay = app.client.get(f"/auth/google/callback?{query}")

    assert replay.status_code == 400
    assert replay.json()["error"]["code"] == "invalid_state"


@pytest.mark.parametrize("tamper", ["forged state", "no cookie", "no code"])
def test_a_forged_or_incomplete_callback_is_refused_and_stores_nothing(
    app: App, tamper: str
) -> None:
    query = parse_qs(callback_query(app))
    params = {k: v[0] for k, v in query.items()}
    if tamper == "forged state":
        params["state"] = "forged-" + params["state"]
    elif tamper == "no cookie":
        app.client.cookies.clear()
    else:
        params.pop("code")

    answer = app.client.get("/auth/google/callback", params=params)

    assert answer.status_code == 400
    assert count(app, User) == 0
    assert count(app, OAuthToken) == 0


def test_denied_consent_is_a_clear_400_that_stores_nothing(
    app: App, fake_google: FakeGoogle
) -> None:
    fake_google.control.configure(consent_denied=True)

    answer = consent(app)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "consent_denied"
    assert count(app, User) == 0


def test_a_revoked_grant_marks_the_account_and_never_retries(
    app: App, fake_google: FakeGoogle
) -> None:
    # Given a signed-in user whose access token is about to expire
    body = consent(app).json()
    headers = {"Authorization": f"Bearer {body['token']}"}
    user_id = app.client.get("/me", headers=headers).json()["id"]
    with app.services.sessions.begin() as session:
        row = session.scalar(sa.select(OAuthToken))
        assert row is not None
        row.expires_at = app.services.clock() + timedelta(seconds=30)
    # and whose grant the user revoked at Google
    fake_google.control.revoke_user("alice@example.com")
    fake_google.control.clear_requests()

    # When workers ask for a token several times
    for _ in range(5):
        with pytest.raises(AccountNeedsReauth):
            app.services.access_tokens.for_user(uuid.UUID(user_id))

    # Then Google was asked once, and the user sees needs_reauth
    assert len(fake_google.control.requests(path="/token")) == 1
    assert app.client.get("/me", headers=headers).json()["status"] == "needs_reauth"

    # And signing in again restores the account
    assert consent(app).status_code == 200
    assert app.client.get("/me", headers=headers).json()["status"] == "active"
    assert app.services.access_tokens.for_user(uuid.UUID(user_id))


def test_a_token_close_to_expiry_is_refreshed_once(app: App, fake_google: FakeGoogle) -> None:
    body = consent(app).json()
    user_id = uuid.UUID(body["user"]["id"])
    with app.services.sessions.begin() as session:
        row = session.scalar(sa.select(OAuthToken))
        assert row is not None
        old = app.services.secrets.decrypt(row.access_token_encrypted)
        row.expires_at = app.services.clock() + timedelta(seconds=10)
    fake_google.control.clear_requests()

    first = app.services.access_tokens.for_user(user_id)
    second = app.services.access_tokens.for_user(user_id)

    assert first.reveal() != old
    assert second == first
    assert len(fake_google.control.requests(path="/token")) == 1


def test_the_jwt_from_the_dance_works_on_events_after_the_calendars_connect(app: App) -> None:
    # Given a user who signed in through Google
    body = consent(app).json()
    headers = {"Authorization": f"Bearer {body['token']}"}
    # When the connection the callback queued has run (calendar list, channels)
    connect_user(app.services, uuid.UUID(body["user"]["id"]))
    # Then the JWT reads and writes events on the user's primary calendar
    calendars = app.client.get("/calendars", headers=headers)
    assert calendars.status_code == 200, calendars.text
    created = app.client.post(
        "/events",
        headers=headers,
        json={
            "title": "first",
            "start_time": "2026-12-01T09:00:00+01:00",
            "end_time": "2026-12-01T10:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    )
    assert created.status_code == 201, created.text
    listed = app.client.get("/events", headers=headers)
    assert listed.status_code == 200
    assert [e["title"] for e in listed.json()["events"]] == ["first"]
    # And without the JWT, /events is 401
    assert app.client.get("/events").status_code == 401


@pytest.mark.parametrize("mode", ["embedded", "production"])
def test_a_sign_in_begun_on_another_loopback_name_moves_to_the_public_one_first(
    request: pytest.FixtureRequest, fake_google: FakeGoogle, mode: str
) -> None:
    settings = fake_google.settings_for(
        request.getfixturevalue(f"{mode}_settings"), public_url="http://127.0.0.1:8000"
    )
    for running in running_app(settings):
        # When a browser that says "localhost" starts a sign-in
        start = running.client.get(
            "http://localhost:8000/auth/google?login_hint=ann%40example.com",
            follow_redirects=False,
        )
        # Then it is sent to the same path on the public name, with no cookie set yet
        assert start.status_code == 307
        assert start.headers["location"] == (
            "http://127.0.0.1:8000/auth/google?login_hint=ann%40example.com"
        )
        assert "set-cookie" not in start.headers
        # And there the sign-in starts (cookie and redirect to Google)
        there = running.client.get(start.headers["location"], follow_redirects=False)
        assert there.status_code == 302
        assert there.headers["location"].startswith(fake_google.url)
        assert "set-cookie" in there.headers


@pytest.mark.parametrize("mode", ["embedded", "production"])
def test_a_host_that_is_not_loopback_is_never_redirected(
    request: pytest.FixtureRequest, fake_google: FakeGoogle, mode: str
) -> None:
    settings = fake_google.settings_for(
        request.getfixturevalue(f"{mode}_settings"), public_url="https://calsync.example.com"
    )
    for running in running_app(settings):
        # A proxy that forwards with its own Host: a redirect would loop
        start = running.client.get(
            "http://calsync.internal/auth/google?login_hint=ann%40example.com",
            follow_redirects=False,
        )
        assert start.status_code == 302
        assert start.headers["location"].startswith(fake_google.url)
