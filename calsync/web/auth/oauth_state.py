"""The OAuth ``state`` and PKCE verifier of one browser's sign-in, kept in a signed cookie.

``GET /auth/google`` calls :func:`issue_state_cookie`, sets the cookie, and redirects
to Google with ``state=bundle.state`` and ``code_challenge=bundle.code_challenge``
(method ``S256``). ``GET /auth/google/callback`` calls :func:`verify_state_cookie`
with the cookie and the ``state`` query parameter, then claims ``bundle.nonce`` in a
one-time store (for example Redis ``SET NX`` with a TTL of ``max_age``) before it
exchanges the code with ``code_verifier=bundle.code_verifier.reveal()``.

This module binds the callback to the browser that started the flow (login CSRF),
expires the bundle, and detects tampering. It does not enforce one-time use (the
caller's nonce store does), does not talk to Google, and does not set cookies.
The cookie is signed, not encrypted: the verifier is visible to the browser that
holds it, which is the party it belongs to; RFC 7636 only needs it hidden from
whoever intercepts the authorization code.

Token generation and the S256 transform are authlib's
(``authlib.common.security.generate_token``, ``authlib.oauth2.rfc7636``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, TypedDict, TypeGuard

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from calsync.store.secrets import Secret
from calsync.web.auth.moments import utc_moment

__all__ = [
    "STATE_COOKIE_NAME",
    "InvalidState",
    "OAuthState",
    "OAuthStateConfig",
    "StateCookieOptions",
    "code_challenge_s256",
    "issue_state_cookie",
    "state_cookie_options",
    "verify_state_cookie",
]

STATE_COOKIE_NAME: Final = "calsync_oauth_state"

_VERSION: Final = "v1"
_KEY_LABEL: Final = b"calsync/oauth-state/v1"
_STATE_LENGTH: Final = 32  # 62-symbol alphabet: about 190 bits
_VERIFIER_LENGTH: Final = 48  # RFC 7636: 43..128 unreserved characters; what authlib uses
_MAX_COOKIE_CHARS: Final = 1024
_MIN_SECRET_BYTES: Final = 32
_CLOCK_SKEW: Final = timedelta(seconds=30)


class InvalidState(Exception):
    """The state cookie is missing, forged, expired, or does not match ``state``.

    ``reason`` is for server logs; it never contains the cookie or the verifier.
    Answer the client with a generic 400.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OAuthStateConfig:
    """The HMAC secret (32 bytes or more) and how long a sign-in may take.

    The signing key is derived from ``secret`` with a fixed label, so sharing the
    JWT secret cannot let one kind of token pass for the other.

    Raises:
        ValueError: a short secret, or a ``max_age`` outside 1 s..1 h.
    """

    secret: Secret
    max_age: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if len(self.secret.reveal().encode("utf-8")) < _MIN_SECRET_BYTES:
            raise ValueError(f"the OAuth state secret must be at least {_MIN_SECRET_BYTES} bytes")
        if not timedelta(seconds=1) <= self.max_age <= timedelta(hours=1):
            raise ValueError("the OAuth state max_age must be between 1 second and 1 hour")

    def _mac(self, message: bytes) -> bytes:
        key = hmac.new(self.secret.reveal().encode("utf-8"), _KEY_LABEL, hashlib.sha256).digest()
        return hmac.new(key, message, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class OAuthState:
    """One sign-in attempt: the ``state`` parameter and the PKCE verifier."""

    state: str
    code_verifier: Secret
    issued_at: datetime
    expires_at: datetime

    @property
    def nonce(self) -> str:
        """The one-time-use key for the caller's nonce store (the ``state`` value)."""
        return self.state

    @property
    def code_challenge(self) -> str:
        """``code_challenge`` for the authorization URL (method ``S256``)."""
        return code_challenge_s256(self.code_verifier)


class StateCookieOptions(TypedDict):
    """Keyword arguments for ``starlette.responses.Response.set_cookie``."""

    key: str
    max_age: int
    path: str
    secure: bool
    httponly: bool
    samesite: Literal["lax"]


def code_challenge_s256(verifier: str | Secret) -> str:
    """Return ``BASE64URL(SHA256(verifier))`` without padding (RFC 7636 4.2)."""
    value = verifier.reveal() if isinstance(verifier, Secret) else verifier
    challenge: str = create_s256_code_challenge(value)
    return challenge


def issue_state_cookie(
    config: OAuthStateConfig, *, now: datetime | None = None
) -> tuple[OAuthState, str]:
    """Start a sign-in: a fresh random state and verifier, and the signed cookie value.

    The cookie value is ASCII (base64url and dots), well under 4 KiB.
    """
    issued = utc_moment(now).replace(microsecond=0)
    bundle = OAuthState(
        state=generate_token(_STATE_LENGTH),
        code_verifier=Secret(generate_token(_VERIFIER_LENGTH)),
        issued_at=issued,
        expires_at=issued + config.max_age,
    )
    body = json.dumps(
        {
            "s": bundle.state,
            "v": bundle.code_verifier.reveal(),
            "iat": int(bundle.issued_at.timestamp()),
            "exp": int(bundle.expires_at.timestamp()),
        },
        separators=(",", ":"),
    )
    signed = f"{_VERSION}.{_b64encode(body.encode())}"
    return bundle, f"{signed}.{_b64encode(config._mac(signed.encode()))}"


def verify_state_cookie(
    config: OAuthStateConfig,
    cookie: str | None,
    *,
    state_param: str | None,
    now: datetime | None = None,
) -> OAuthState:
    """Check the callback's cookie against its ``state`` query parameter.

    Returns the bundle when the cookie is authentic, unexpired (``exp`` and the
    config's ``max_age``), and its state equals ``state_param`` (constant time).
    It does not mark the nonce used; the caller must, before the code exchange.

    Raises:
        InvalidState: for every failure; see its ``reason``.
    """
    moment = utc_moment(now)
    if not cookie:
        raise InvalidState("no state cookie")
    if not state_param:
        raise InvalidState("no state parameter")
    if len(cookie) > _MAX_COOKIE_CHARS:
        raise InvalidState("state cookie too large")
    payload = _authentic_payload(config, cookie)
    bundle = _bundle(payload)
    if bundle.expires_at <= moment or bundle.issued_at + config.max_age <= moment:
        raise InvalidState("state cookie expired")
    if bundle.issued_at > moment + _CLOCK_SKEW:
        raise InvalidState("state cookie issued in the future")
    if not hmac.compare_digest(bundle.state.encode(), state_param.encode("utf-8", "replace")):
        raise InvalidState("state parameter does not match the cookie")
    return bundle


def state_cookie_options(config: OAuthStateConfig, *, secure: bool) -> StateCookieOptions:
    """Cookie attributes for the state cookie (pass ``secure=False`` only for plain-HTTP dev).

    ``SameSite=Lax``, not ``Strict``: the callback is a cross-site top-level
    navigation from Google, which ``Strict`` would strip the cookie from.
    """
    return StateCookieOptions(
        key=STATE_COOKIE_NAME,
        max_age=int(config.max_age.total_seconds()),
        path="/auth/google",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def _authentic_payload(config: OAuthStateConfig, cookie: str) -> object:
    parts = cookie.split(".")
    if len(parts) != 3 or parts[0] != _VERSION:
        raise InvalidState("malformed state cookie")
    signed = f"{parts[0]}.{parts[1]}"
    try:
        mac = _b64decode(parts[2])
    except (ValueError, binascii.Error):
        raise InvalidState("malformed state cookie") from None
    if not hmac.compare_digest(mac, config._mac(signed.encode("ascii", "replace"))):
        raise InvalidState("state cookie signature mismatch")
    try:
        return json.loads(_b64decode(parts[1]))
    except (ValueError, binascii.Error):
        raise InvalidState("malformed state cookie payload") from None


def _bundle(payload: object) -> OAuthState:
    if not isinstance(payload, dict):
        raise InvalidState("malformed state cookie payload")
    state, verifier = payload.get("s"), payload.get("v")
    issued, expires = payload.get("iat"), payload.get("exp")
    if not (isinstance(state, str) and state and isinstance(verifier, str) and verifier):
        raise InvalidState("malformed state cookie payload")
    if not (_is_int(issued) and _is_int(expires)):
        raise InvalidState("malformed state cookie payload")
    try:
        issued_at = datetime.fromtimestamp(issued, tz=UTC)
        expires_at = datetime.fromtimestamp(expires, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidState("malformed state cookie payload") from None
    return OAuthState(state, Secret(verifier), issued_at, expires_at)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not ASCII")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
