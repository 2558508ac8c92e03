"""OAuth 2.0: authorization code with PKCE, refresh, revoke, userinfo, token expiry."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx2 as httpx
import pytest
from google.auth.exceptions import RefreshError

from calsync.emulator.testing import EmulatorControl, build_calendar_service
from tests.integration.emulator.conftest import Account, Target
from tests.integration.emulator.helpers import google_error

CLIENT = ("calsync-dev", "calsync-dev-secret")
REDIRECT = "http://127.0.0.1:9/auth/google/callback"
SCOPES = "openid email https://www.googleapis.com/auth/calendar"


@pytest.fixture
def http(target: Target, control: EmulatorControl) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=target.base_url) as client:
        yield client


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(http: httpx.Client, email: str, challenge: str, **extra: str) -> dict[str, str]:
    """GET /o/oauth2/auth and return the query of the redirect it answers with."""
    params = {
        "client_id": CLIENT[0],
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": SCOPES,
        "state": "st-123",
        "login_hint": email,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "access_type": "offline",
    } | extra
    response = http.get("/o/oauth2/auth", params=params)
    assert response.status_code in (302, 307)
    location = urlparse(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def exchange(http: httpx.Client, code: str, verifier: str, **extra: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": CLIENT[0],
        "client_secret": CLIENT[1],
    } | extra
    return http.post("/token", data=form)


def login(http: httpx.Client, email: str) -> dict[str, Any]:
    verifier, challenge = pkce()
    query = authorize(http, email, challenge)
    response = exchange(http, query["code"], verifier)
    assert response.status_code == 200
    return dict(response.json())


def test_code_flow_with_pkce_gives_tokens_that_work(http: httpx.Client, target: Target) -> None:
    verifier, challenge = pkce()
    query = authorize(http, "newcomer@example.com", challenge)
    assert query["state"] == "st-123"

    tokens = exchange(http, query["code"], verifier).json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["refresh_token"]
    assert "https://www.googleapis.com/auth/calendar" in tokens["scope"].split()

    service = build_calendar_service(target.base_url, tokens["access_token"])
    entries = service.calendarList().list().execute()["items"]
    assert [e["id"] for e in entries] == ["newcomer@example.com"]
    service.close()
    for path in ("/v1/userinfo", "/oauth2/v3/userinfo"):
        info = http.get(path, headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert info.json()["email"] == "newcomer@example.com"
        assert info.json()["email_verified"] is True
        assert info.json()["sub"]
        assert info.json()["name"]


def test_codes_are_single_use_and_pkce_is_checked(http: httpx.Client) -> None:
    verifier, challenge = pkce()
    code = authorize(http, "pkce@example.com", challenge)["code"]
    wrong = exchange(http, code, "not-the-verifier")
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    missing = exchange(http, code, "")
    assert missing.json()["error"] == "invalid_grant"
    assert exchange(http, code, verifier).status_code == 200
    reused = exchange(http, code, verifier)
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")


def test_codes_expire(http: httpx.Client, control: EmulatorControl) -> None:
    verifier, challenge = pkce()
    code = authorize(http, "slow@example.com", challenge)["code"]
    control.advance_clock(601)
    assert exchange(http, code, verifier).json()["error"] == "invalid_grant"


def test_client_credentials_by_basic_auth_and_bad_secret(http: httpx.Client) -> None:
    verifier, challenge = pkce()
    code = authorize(http, "basic@example.com", challenge)["code"]
    bad = http.post(
        "/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=(CLIENT[0], "wrong"),
    )
    assert (bad.status_code, bad.json()["error"]) == (401, "invalid_client")
    good = http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=CLIENT,
    )
    assert good.status_code == 200


def test_refresh_and_revoke(http: httpx.Client, target: Target) -> None:
    tokens = login(http, "refresher@example.com")
    refreshed = http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=CLIENT,
    ).json()
    assert refreshed["access_token"] != tokens["access_token"]
    assert "refresh_token" not in refreshed

    assert http.post("/revoke", data={"token": tokens["refresh_token"]}).status_code == 200
    again = http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=CLIENT,
    )
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
    api = http.get(
        "/calendar/v3/users/me/calendarList",
        headers={"Authorization": f"Bearer {refreshed['access_token']}"},
    )
    assert api.status_code == 401
    unknown = http.post("/revoke", data={"token": "nothing"})
    assert unknown.status_code == 400


def test_refresh_token_only_on_first_consent_unless_prompted(http: httpx.Client) -> None:
    assert "refresh_token" in login(http, "twice@example.com")
    assert "refresh_token" not in login(http, "twice@example.com")
    verifier, challenge = pkce()
    code = authorize(http, "twice@example.com", challenge, prompt="consent")["code"]
    assert "refresh_token" in exchange(http, code, verifier).json()


def test_denied_consent_redirects_with_access_denied(
    http: httpx.Client, control: EmulatorControl
) -> None:
    control.configure(consent_denied=True)
    query = authorize(http, "refuser@example.com", pkce()[1])
    assert query == {"error": "access_denied", "state": "st-123"}


def test_unknown_client_is_refused_without_redirect(http: httpx.Client) -> None:
    response = http.get(
        "/o/oauth2/auth",
        params={"client_id": "stranger", "redirect_uri": REDIRECT, "response_type": "code"},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_the_client_refreshes_an_expired_token_by_itself(
    control: EmulatorControl, account: Account
) -> None:
    control.advance_clock(3601)
    control.clear_requests()
    assert account.service.calendarList().list().execute()["items"]
    statuses = [(r["path"], r["status"]) for r in control.requests()]
    assert statuses == [
        ("/calendar/v3/users/me/calendarList", 401),
        ("/token", 200),
        ("/calendar/v3/users/me/calendarList", 200),
    ]


def test_revoked_access_surfaces_as_invalid_grant(
    control: EmulatorControl, account: Account
) -> None:
    control.revoke_user(account.email)
    with pytest.raises(RefreshError) as caught:
        account.service.calendarList().list().execute()
    assert "invalid_grant" in str(caught.value)


def test_token_lifetime_is_configurable(http: httpx.Client, control: EmulatorControl) -> None:
    control.configure(token_ttl_seconds=600)
    assert login(http, "short@example.com")["expires_in"] == 600


def test_read_only_scope_cannot_write(
    control: EmulatorControl, target: Target, account: Account
) -> None:
    readonly = control.issue_tokens(
        account.email, scopes=["https://www.googleapis.com/auth/calendar.readonly"]
    )
    service = build_calendar_service(target.base_url, readonly["access_token"])
    assert service.events().list(calendarId="primary").execute()["items"] == []
    write = service.events().insert(calendarId="primary", body={"summary": "x"})
    assert google_error(write.execute)[:2] == (403, "insufficientPermissions")
    service.close()
