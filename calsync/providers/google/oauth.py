"""Google OAuth2: authorization URL, code exchange, identity, refresh and revocation.

The one place that speaks OAuth to Google (through authlib's httpx client). Endpoints are
Google's own unless ``CALSYNC_GOOGLE_OAUTH_BASE`` points at the emulator. Guide:
https://developers.google.com/identity/protocols/oauth2/web-server

Tokens go in and out as :class:`~calsync.store.secrets.Secret` so that none is logged.
Errors are translated here into :class:`InvalidGrant` (the grant is gone: the user must
sign in again; never retry) and :class:`OAuthUnavailable` (try later).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx
from authlib.integrations.base_client.errors import OAuthError as AuthlibOAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Client

from calsync.config import Settings
from calsync.store.secrets import Secret
from calsync.store.tables import utcnow

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
    """OAuth2 client of one calsync installation (one Google Cloud OAuth client)."""

    def __init__(self, settings: Settings, *, endpoints: OAuthEndpoints | None = None) -> None:
        self._client_id = settings.google_client_id
        self._client_secret = Secret(settings.google_client_secret)
        self._redirect_uri = f"{settings.public_url}/auth/google/callback"
        self.endpoints = endpoints or OAuthEndpoints.for_settings(settings)

    def __repr__(self) -> str:
        return f"GoogleOAuth(client_id={self._client_id!r}, endpoints={self.endpoints!r})"

    def authorization_url(
        self, *, state: str, code_verifier: Secret, login_hint: str | None
    ) -> str:
        """The consent URL: code flow, offline access, incremental scopes, PKCE S256."""
        extra: dict[str, str] = {
            "access_type": "offline",
            "include_granted_scopes": "true",
            "prompt": "consent",
        }
        if login_hint:
            extra["login_hint"] = login_hint
        with self._sync_client() as client:
            url, _ = client.create_authorization_url(
                self.endpoints.authorize, state=state, code_verifier=code_verifier.reveal(), **extra
            )
        return str(url)

    async def exchange_code(self, *, code: str, code_verifier: Secret) -> GrantedTokens:
        """Trade an authorization code for tokens.

        Raises:
            InvalidGrant: the code is unknown, used, expired, or the verifier does not match.
            OAuthUnavailable: Google did not answer properly.
        """
        async with self._async_client() as client:
            try:
                token = await client.fetch_token(
                    self.endpoints.token, code=code, code_verifier=code_verifier.reveal()
                )
            except AuthlibOAuthError as exc:
                raise _translate(exc) from None
            except httpx.HTTPError as exc:
                raise OAuthUnavailable(f"token endpoint: {type(exc).__name__}") from None
        return _granted(token)

    async def fetch_identity(self, access_token: Secret) -> GoogleIdentity:
        """The signed-in user's identity (``sub``, ``email``) from the userinfo endpoint.

        Raises:
            OAuthUnavailable: the endpoint failed or answered without an email.
        """
        headers = {"Authorization": f"Bearer {access_token.reveal()}"}
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            try:
                response = await client.get(self.endpoints.userinfo, headers=headers)
            except httpx.HTTPError as exc:
                raise OAuthUnavailable(f"userinfo: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise OAuthUnavailable(f"userinfo answered {response.status_code}")
        info = response.json()
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
        with self._sync_client() as client:
            try:
                token = client.refresh_token(
                    self.endpoints.token, refresh_token=refresh_token.reveal()
                )
            except AuthlibOAuthError as exc:
                raise _translate(exc) from None
            except httpx.HTTPError as exc:
                raise OAuthUnavailable(f"token endpoint: {type(exc).__name__}") from None
        granted = _granted(token)
        if granted.refresh_token is None:
            granted = GrantedTokens(
                granted.access_token, refresh_token, granted.expires_at, granted.scopes
            )
        return granted

    def revoke(self, token: Secret) -> None:
        """Revoke a token at Google; a token Google no longer knows counts as revoked."""
        try:
            httpx.post(self.endpoints.revoke, data={"token": token.reveal()}, timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise OAuthUnavailable(f"revoke: {type(exc).__name__}") from None

    def _sync_client(self) -> OAuth2Client:
        return OAuth2Client(**self._client_options())

    def _async_client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(**self._client_options())

    def _client_options(self) -> dict[str, Any]:
        return {
            "client_id": self._client_id,
            "client_secret": self._client_secret.reveal(),
            "scope": " ".join(SCOPES),
            "redirect_uri": self._redirect_uri,
            "code_challenge_method": "S256",
            "timeout": TIMEOUT,
        }


def _translate(exc: AuthlibOAuthError) -> OAuthError:
    error = _error_code(exc.error)
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
        expires_at=utcnow() + timedelta(seconds=expires_in),
        scopes=str(token.get("scope", "")),
    )
