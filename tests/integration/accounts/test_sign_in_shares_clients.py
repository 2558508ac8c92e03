"""Sign-in is cheap: several users sign in through the emulator's OAuth dance, on both
databases, and after the first one no sign-in (and no token refresh after the first)
builds an HTTP client's TLS context again (decisions Q4)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
import sqlalchemy as sa

from calsync.config import Settings
from calsync.store.secrets import Secret
from calsync.store.tables import OAuthToken, User
from tests.conftest import FakeGoogle
from tests.integration.accounts.conftest import App, running_app

pytestmark = pytest.mark.integration

EMAILS = ["ann@example.com", "ben@example.com", "cat@example.com", "dan@example.com"]


@pytest.fixture(params=["embedded", "production"])
def app(request: pytest.FixtureRequest, fake_google: FakeGoogle) -> Iterator[App]:
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    yield from running_app(fake_google.settings_for(settings))


@pytest.fixture
def tls_contexts(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every `ssl.SSLContext` built from now on (building one loads the CA bundle)."""
    built: list[object] = []
    original = ssl.SSLContext.__new__

    def counting(cls: type[ssl.SSLContext], *args: Any, **kwargs: Any) -> ssl.SSLContext:
        context = original(cls, *args, **kwargs)
        built.append(context)
        return context

    monkeypatch.setattr(ssl.SSLContext, "__new__", counting)
    return built


def sign_in(app: App, email: str) -> dict[str, Any]:
    """The browser's whole dance; returns calsync's callback answer."""
    app.client.cookies.clear()
    start = app.client.get("/auth/google", params={"login_hint": email}, follow_redirects=False)
    assert start.status_code == 302
    with httpx.Client(verify=False) as browser:  # the emulator speaks plain HTTP
        at_google = browser.get(start.headers["location"], follow_redirects=False)
    back = urlsplit(at_google.headers["location"])
    answer = app.client.get(f"{back.path}?{back.query}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_sign_ins_after_the_first_build_no_tls_context(
    app: App, tls_contexts: list[object]
) -> None:
    # Given the first sign-in of the process built what it needed
    sign_in(app, EMAILS[0])
    built_by_first = len(tls_contexts)
    # When three more users sign in
    answers = {email: sign_in(app, email) for email in EMAILS[1:]}
    # Then none of them built a TLS context (the browser's own clients aside: 1 each)
    assert len(tls_contexts) - built_by_first == len(EMAILS) - 1
    # And each got their own account, token and stored Google tokens
    for email, answer in answers.items():
        assert answer["user"]["email"] == email
        me = app.client.get("/me", headers={"Authorization": f"Bearer {answer['token']}"})
        assert me.json()["email"] == email
    with app.services.sessions() as session:
        stored = session.execute(
            sa.select(User.email, OAuthToken.refresh_token_encrypted).join(
                OAuthToken, OAuthToken.user_id == User.id
            )
        ).all()
    refresh_tokens = {email: app.services.secrets.decrypt(token) for email, token in stored}
    assert set(refresh_tokens) == set(EMAILS)
    assert len(set(refresh_tokens.values())) == len(EMAILS)

    # When the workers refresh two users' access tokens
    first = app.services.google_oauth.refresh(Secret(refresh_tokens[EMAILS[0]]))
    before = len(tls_contexts)
    second = app.services.google_oauth.refresh(Secret(refresh_tokens[EMAILS[1]]))
    # Then the second refresh built no TLS context either, and each got its own token
    assert len(tls_contexts) == before
    assert first.access_token.reveal() != second.access_token.reveal()
