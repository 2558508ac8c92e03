"""calsync.web.auth.oauth_state: the signed state + PKCE cookie of one sign-in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calsync.store.secrets import Secret
from calsync.web.auth.oauth_state import (
    STATE_COOKIE_NAME,
    InvalidState,
    OAuthStateConfig,
    code_challenge_s256,
    issue_state_cookie,
    state_cookie_options,
    verify_state_cookie,
)

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
SECRET = "s" * 40
CONFIG = OAuthStateConfig(secret=Secret(SECRET))
UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_like_the_server(secret: str, body: dict[str, Any]) -> str:
    """Re-implements the cookie format, to forge cookies whose only fault is the content."""
    key = hmac.new(secret.encode(), b"calsync/oauth-state/v1", hashlib.sha256).digest()
    signed = "v1." + b64(json.dumps(body).encode())
    return f"{signed}.{b64(hmac.new(key, signed.encode(), hashlib.sha256).digest())}"


def test_rfc7636_appendix_b_example() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge_s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert code_challenge_s256(Secret(verifier)) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_issue_then_verify_round_trips() -> None:
    # Given a sign-in started at NOW
    bundle, cookie = issue_state_cookie(CONFIG, now=NOW)
    # When the callback comes back within max_age with the same state
    back = verify_state_cookie(
        CONFIG, cookie, state_param=bundle.state, now=NOW + timedelta(minutes=9)
    )
    # Then the same verifier comes out
    assert back.code_verifier.reveal() == bundle.code_verifier.reveal()
    assert back.nonce == bundle.state == back.state
    assert back.code_challenge == code_challenge_s256(bundle.code_verifier.reveal())
    assert (back.issued_at, back.expires_at) == (NOW, NOW + timedelta(minutes=10))


def test_generated_values_follow_rfc7636_and_are_random() -> None:
    bundles = [issue_state_cookie(CONFIG, now=NOW)[0] for _ in range(20)]
    verifiers = {b.code_verifier.reveal() for b in bundles}
    states = {b.state for b in bundles}
    assert len(verifiers) == len(states) == 20
    for b in bundles:
        assert 43 <= len(b.code_verifier.reveal()) <= 128
        assert UNRESERVED.fullmatch(b.code_verifier.reveal())
        assert len(b.state) >= 32
        assert b.state not in b.code_verifier.reveal()


def test_cookie_is_cookie_safe_and_small() -> None:
    _, cookie = issue_state_cookie(CONFIG, now=NOW)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", cookie)
    assert len(cookie) < 400


def test_bundle_repr_hides_the_verifier() -> None:
    bundle, _ = issue_state_cookie(CONFIG, now=NOW)
    assert bundle.code_verifier.reveal() not in repr(bundle)
    assert SECRET not in repr(CONFIG)


def _tamper_payload(cookie: str) -> str:
    version, payload, mac = cookie.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body["exp"] += 3600
    return f"{version}.{b64(json.dumps(body).encode())}.{mac}"


def _swap_version(cookie: str) -> str:
    return "v2" + cookie[2:]


@pytest.mark.parametrize(
    ("cookie_of", "state_of", "at", "reason"),
    [
        (lambda c: None, lambda s: s, NOW, "no state cookie"),
        (lambda c: "", lambda s: s, NOW, "no state cookie"),
        (lambda c: c, lambda s: None, NOW, "no state parameter"),
        (lambda c: c, lambda s: "", NOW, "no state parameter"),
        (lambda c: c, lambda s: s + "x", NOW, "does not match"),
        (lambda c: c, lambda s: s[:-1], NOW, "does not match"),
        (lambda c: c, lambda s: "é" * 5, NOW, "does not match"),
        (lambda c: c, lambda s: s, NOW + timedelta(minutes=10), "expired"),
        (lambda c: c, lambda s: s, NOW - timedelta(minutes=1), "future"),
        (_tamper_payload, lambda s: s, NOW, "signature mismatch"),
        (lambda c: c[:-2] + ("AA" if c[-2:] != "AA" else "BB"), lambda s: s, NOW, "mismatch"),
        (_swap_version, lambda s: s, NOW, "malformed"),
        (lambda c: c + ".x", lambda s: s, NOW, "malformed"),
        (lambda c: "garbage", lambda s: s, NOW, "malformed"),
        (lambda c: c.rsplit(".", 1)[0] + ".é", lambda s: s, NOW, "malformed"),
        (lambda c: c + "A" * 2000, lambda s: s, NOW, "too large"),
    ],
)
def test_bad_callbacks_are_refused(
    cookie_of: Any, state_of: Any, at: datetime, reason: str
) -> None:
    bundle, cookie = issue_state_cookie(CONFIG, now=NOW)
    with pytest.raises(InvalidState) as caught:
        verify_state_cookie(CONFIG, cookie_of(cookie), state_param=state_of(bundle.state), now=at)
    assert reason in caught.value.reason
    assert bundle.code_verifier.reveal() not in str(caught.value)


def test_a_cookie_signed_with_another_secret_is_refused() -> None:
    bundle, cookie = issue_state_cookie(OAuthStateConfig(secret=Secret("t" * 40)), now=NOW)
    with pytest.raises(InvalidState, match="signature mismatch"):
        verify_state_cookie(CONFIG, cookie, state_param=bundle.state, now=NOW)


def test_shorter_max_age_on_the_verifier_wins() -> None:
    # A cookie issued under a 10-minute config is not honoured by a 5-minute one.
    bundle, cookie = issue_state_cookie(CONFIG, now=NOW)
    strict = OAuthStateConfig(secret=Secret(SECRET), max_age=timedelta(minutes=5))
    with pytest.raises(InvalidState, match="expired"):
        verify_state_cookie(
            strict, cookie, state_param=bundle.state, now=NOW + timedelta(minutes=6)
        )


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        {"s": "abc", "v": "", "iat": 0, "exp": 2**40},
        {"s": "", "v": "verifier", "iat": 0, "exp": 2**40},
        {"s": "abc", "v": "verifier", "iat": "0", "exp": 2**40},
        {"s": "abc", "v": "verifier", "iat": 0, "exp": True},
        {"s": "abc", "v": "verifier", "iat": 0, "exp": 10**30},
        {"s": 5, "v": "verifier", "iat": 0, "exp": 2**40},
    ],
)
def test_authentic_but_malformed_payloads_are_refused(body: Any) -> None:
    cookie = sign_like_the_server(SECRET, body)
    with pytest.raises(InvalidState, match="malformed"):
        verify_state_cookie(CONFIG, cookie, state_param="abc", now=NOW)


def test_the_forging_helper_matches_the_real_format() -> None:
    # Guards the test above: a well-formed forged body is accepted, so the helper is faithful.
    t = int(NOW.timestamp())
    cookie = sign_like_the_server(SECRET, {"s": "abc", "v": "verifier", "iat": t, "exp": t + 60})
    assert verify_state_cookie(CONFIG, cookie, state_param="abc", now=NOW).code_verifier == Secret(
        "verifier"
    )


@given(st.text(max_size=600), st.text(max_size=50))
def test_arbitrary_cookies_only_raise_invalid_state(cookie: str, state: str) -> None:
    with pytest.raises(InvalidState):
        verify_state_cookie(CONFIG, cookie, state_param=state, now=NOW)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret": Secret("short")},
        {"secret": Secret(SECRET), "max_age": timedelta(0)},
        {"secret": Secret(SECRET), "max_age": timedelta(hours=2)},
    ],
)
def test_config_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="OAuth state") as caught:
        OAuthStateConfig(**kwargs)
    assert "short" not in str(caught.value)


def test_cookie_options_suit_a_cross_site_redirect() -> None:
    options = state_cookie_options(CONFIG, secure=True)
    assert options == {
        "key": STATE_COOKIE_NAME,
        "max_age": 600,
        "path": "/auth/google",
        "secure": True,
        "httponly": True,
        "samesite": "lax",
    }


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        issue_state_cookie(CONFIG, now=datetime(2030, 1, 1))


def test_a_json_error_object_from_the_token_endpoint_is_translated_not_a_crash() -> None:
    import httpx2 as httpx

    from calsync.providers.google.oauth import InvalidGrant, OAuthUnavailable, _token_answer

    google_object = {"error": {"code": 401, "status": "UNAUTHENTICATED"}}
    with pytest.raises(OAuthUnavailable, match="UNAUTHENTICATED"):
        _token_answer(httpx.Response(401, json=google_object))
    with pytest.raises(InvalidGrant):
        _token_answer(httpx.Response(400, json={"error": "invalid_grant"}))
    with pytest.raises(OAuthUnavailable, match="without JSON"):
        _token_answer(httpx.Response(503, text="<html>busy</html>"))
    assert _token_answer(httpx.Response(200, json={"access_token": "a"})) == {"access_token": "a"}
