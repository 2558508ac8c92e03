"""Google OAuth2: authorization URL, code exchange, identity, refresh and revocation.

The one place that speaks OAuth to Google (httpx2 clients shared by the process; authlib
builds the consent URL). Endpoints are
Google's own unless ``CALSYNC_GOOGLE_OAUTH_BASE`` points at the emulator. Guide:
https://developers.google.com/identity/protocols/oauth2/web-server

Tokens go in and out as :class:`~calsync.domain.secret.Secret` so that none is logged.
Errors are translated here into :class:`InvalidGrant` (the grant is gone: the user must
sign in again; never retry) and :class:`OAuthUnavailable` (try later).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import threading
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from calsync.config import Settings
from calsync.domain.secret import Secret

#: The one scope calendar sync needs (calendar list, events, push channels). Since 2024
#: Google's consent screen lets the user untick it (granular permissions), so a sign-in
#: may grant only the Sign-In scopes: see :func:`grants_calendar`.
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
SCOPES = ("openid", "email", "profile", CALENDAR_SCOPE)
TIMEOUT = httpx.Timeout(10.0)


def grants_calendar(scopes: str) -> bool:
    """Whether the space-separated ``scopes`` of a token response (or of stored tokens)
    include :data:`CALENDAR_SCOPE`.

    An empty string counts as granted: RFC 6749 5.1 lets a token response omit ``scope``
    when it is what was asked for, and tokens stored before scopes were checked may hold
    "" (Google itself always lists the granted scopes).
    """
    granted = scopes.split()
    return not granted or CALENDAR_SCOPE in granted


class OAuthError(Exception):
    """Base of the OAuth errors; the message never holds a token."""


class InvalidGrant(OAuthError):
    """Google refused the code or refresh token (``invalid_grant``): revoked, expired or used."""


class OAuthUnavailable(OAuthError):
    """Google's OAuth endpoints could not be reached or answered with a server error."""


@dataclass(frozen=True)
class OAuthEndpoints:
    """Where the OAuth requests go."""

    authorize: str
    token: str
    revoke: str
    userinfo: str

    @classmethod
    def for_settings(cls, settings: Settings) -> OAuthEndpoints:
        """Google's endpoints, or the emulator's under ``google_oauth_base``."""
        base = settings.google_oauth_base
        if base:
            return cls(
                f"{base}/o/oauth2/auth", f"{base}/token", f"{base}/revoke", f"{base}/v1/userinfo"
            )
        return cls(
            "https://accounts.google.com/o/oauth2/v2/auth",
            "https://oauth2.googleapis.com/token",
            "https://oauth2.googleapis.com/revoke",
            "https://openidconnect.googleapis.com/v1/userinfo",
        )


@dataclass(frozen=True)
class GrantedTokens:
    """What a code exchange or refresh gave."""

    access_token: Secret
    refresh_token: Secret | None
    expires_at: datetime
    scopes: str


@dataclass(frozen=True)
class GoogleIdentity:
    """Who signed in, from the userinfo endpoint."""

    subject: str
    email: str
    email_verified: bool
    name: str | None


class GoogleOAuth:
    """OAuth2 client of one calsync installation (one Google Cloud OAuth client).

    Its HTTP clients, and their TLS contexts, are built once per process on first use and
    reused by every call (decisions Q4): one blocking client shared by the worker
    threads (refresh, revoke) and one asynchronous client per event loop (the sign-in's
    code exchange and userinfo call). Building a client loads the CA bundle into a new
    TLS context, which cost a sign-in about 100 ms of CPU when each call built its own.
    :meth:`close` / :meth:`aclose` release their connections at shutdown.
    """

    def __init__(self, settings: Settings, *, endpoints: OAuthEndpoints | None = None) -> None:
        self._client_id = settings.google_client_id
        self._client_secret = Secret(settings.google_client_secret)
        self._redirect_uri = f"{settings.public_url}/auth/google/callback"
        self.endpoints = endpoints or OAuthEndpoints.for_settings(settings)
        self._lock = threading.Lock()
        self._blocking: httpx.Client | None = None
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
        self._by_loop = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"GoogleOAuth(client_id={self._client_id!r}, endpoints={self.endpoints!r})"

    def authorization_url(
        self, *, state: str, code_verifier: Secret, login_hint: str | None
    ) -> str:
        """The consent URL: code flow, offline access, incremental scopes, PKCE S256.

        Pure computation (no HTTP client, no I/O): cheap enough for the event loop."""
        extra: dict[str, str] = {
            "access_type": "offline",
            "include_granted_scopes": "true",
            "prompt": "consent",
        }
        if login_hint:
            extra["login_hint"] = login_hint
        return str(
            prepare_grant_uri(
                self.endpoints.authorize,
                client_id=self._client_id,
                response_type="code",
                redirect_uri=self._redirect_uri,
                scope=" ".join(SCOPES),
                state=state,
                code_challenge=create_s256_code_challenge(code_verifier.reveal()),
                code_challenge_method="S256",
                **extra,
            )
        )

    async def exchange_code(self, *, code: str, code_verifier: Secret) -> GrantedTokens:
        """Trade an authorization code for tokens.

        Raises:
            InvalidGrant: the code is unknown, used, expired, or the verifier does not match.
            OAuthUnavailable: Google did not answer properly.
        """
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self._redirect_uri,
            "code_verifier": code_verifier.reveal(),
            **self._client_credentials(),
        }
        try:
            response = await self._async_client().post(self.endpoints.token, data=form)
        except httpx.HTTPError as exc:
            raise OAuthUnavailable(f"token endpoint: {type(exc).__name__}") from None
        return _granted(_token_answer(response))

    async def fetch_identity(self, access_token: Secret) -> GoogleIdentity:
        """The signed-in user's identity (``sub``, ``email``) from the userinfo endpoint.

        Raises:
            OAuthUnavailable: the endpoint failed or answered without an email.
        """
        headers = {"Authorization": f"Bearer {access_token.reveal()}"}
        try:
            response = await self._async_client().get(self.endpoints.userinfo, headers=headers)
        except httpx.HTTPError as exc:
            raise OAuthUnavailable(f"userinfo: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise OAuthUnavailable(f"userinfo answered {response.status_code}")
        try:
            info = response.json()
        except ValueError:
            raise OAuthUnavailable("userinfo answered something other than JSON") from None
        if not isinstance(info, dict) or not info.get("email") or not info.get("sub"):
            raise OAuthUnavailable("userinfo gave no subject or email")
        return GoogleIdentity(
            subject=str(info["sub"]),
            email=str(info["email"]),
            email_verified=bool(info.get("email_verified", False)),
            name=str(info["name"]) if info.get("name") else None,
        )

    def refresh(self, refresh_token: Secret) -> GrantedTokens:
        """A new access token for ``refresh_token`` (blocking; workers call it).

        Raises:
            InvalidGrant: the refresh token was revoked or expired; never retry.
            OAuthUnavailable: Google did not answer properly; retry later.
        """
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token.reveal(),
            **self._client_credentials(),
        }
        try:
            response = self._blocking_client().post(self.endpoints.token, data=form)
        except httpx.HTTPError as exc:
            raise OAuthUnavailable(f"token endpoint: {type(exc).__name__}") from None
        granted = _granted(_token_answer(response))
        if granted.refresh_token is None:
            granted = GrantedTokens(
                granted.access_token, refresh_token, granted.expires_at, granted.scopes
            )
        return granted

    def revoke(self, token: Secret) -> None:
        """Revoke a token at Google; a token Google no longer knows counts as revoked."""
        try:
            self._blocking_client().post(self.endpoints.revoke, data={"token": token.reveal()})
        except httpx.HTTPError as exc:
            raise OAuthUnavailable(f"revoke: {type(exc).__name__}") from None

    def close(self) -> None:
        """Close the blocking client's connections (the process stops)."""
        with self._lock:
            blocking, self._blocking = self._blocking, None
        if blocking is not None:
            blocking.close()

    async def aclose(self) -> None:
        """Close the running event loop's client (the API stops)."""
        client = self._by_loop.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def _client_credentials(self) -> dict[str, str]:
        # client_secret_post: Google accepts the credentials in the form as well as by
        # Basic authentication, and the form needs no encoding rules of its own.
        return {"client_id": self._client_id, "client_secret": self._client_secret.reveal()}

    def _blocking_client(self) -> httpx.Client:
        with self._lock:
            if self._blocking is None:
                self._blocking = httpx.Client(timeout=TIMEOUT, verify=_tls_context())
            return self._blocking

    def _async_client(self) -> httpx.AsyncClient:
        """This event loop's client (its connections belong to the loop that opened them)."""
        loop = asyncio.get_running_loop()
        client = self._by_loop.get(loop)
        if client is None:
            client = httpx.AsyncClient(timeout=TIMEOUT, verify=_tls_context())
            self._by_loop[loop] = client
        return client


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The TLS context of every OAuth client of the process: loading the CA bundle is the
    expensive part of building a client, so it is done once."""
    return httpx.create_ssl_context()


def _token_answer(response: httpx.Response) -> dict[str, Any]:
    """The token endpoint's JSON answer, or the OAuth error it names (RFC 6749 5.2)."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise OAuthUnavailable(f"token endpoint answered {response.status_code} without JSON")
    if "error" in answer or response.status_code != 200:
        raise _translate(answer.get("error"))
    return answer


def _translate(error_field: object) -> OAuthError:
    error = _error_code(error_field)
    if error == "invalid_grant":
        return InvalidGrant("Google refused the grant (invalid_grant)")
    if error in {"invalid_client", "unauthorized_client", "invalid_request"}:
        return OAuthError(f"Google refused the request ({error})")
    return OAuthUnavailable(f"Google answered {error}")


def _error_code(error: object) -> str:
    """The OAuth error code, also when an endpoint answers Google's JSON error object
    (``{"code": 401, "status": "UNAUTHENTICATED", ...}``) instead of a string."""
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        return str(error.get("status") or error.get("code") or "error")
    return "error"


def _granted(token: dict[str, Any]) -> GrantedTokens:
    access = token.get("access_token")
    if not access:
        raise OAuthUnavailable("the token endpoint gave no access token")
    expires_in = int(token.get("expires_in") or 3600)
    refresh = token.get("refresh_token")
    return GrantedTokens(
        access_token=Secret(str(access)),
        refresh_token=Secret(str(refresh)) if refresh else None,
        expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
        scopes=str(token.get("scope", "")),
    )
