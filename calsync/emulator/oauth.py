"""Google OAuth 2.0 endpoints: authorize (auto consent), token, revoke, userinfo.

- ``GET /o/oauth2/auth`` (also ``/o/oauth2/v2/auth``): consents at once as the user
  named by ``login_hint`` (created if new) and redirects to ``redirect_uri`` with
  ``code``, ``state`` and the granted ``scope``; with ``consent_denied`` configured it
  redirects with ``error=access_denied``. Without ``login_hint`` it answers Google's
  account chooser: a form that asks for an email and repeats the request with it. An
  unknown client is 401 ``invalid_client`` (no redirect). Granular consent as on Google
  since 2024: the Sign-In scopes (``openid``, ``email``, ``profile``) are granted
  together, each other scope only if the user ticks it
  (``POST /emulator/users/{email}/consent``; by default every box is ticked). Granted
  scopes carry Google's names (``email`` is ``.../userinfo.email``).
- ``POST /token`` (also ``/o/oauth2/token``, ``/oauth2/v4/token``): grants
  ``authorization_code`` (one use, 10 minutes, ``redirect_uri`` must match, PKCE
  ``S256``/``plain`` checked) and ``refresh_token``; client credentials by
  ``client_secret_post`` or ``client_secret_basic``. As on Google, a refresh token is
  returned only for ``access_type=offline`` and only on a user's first consent to the
  client, unless ``prompt=consent`` asks again. No ``id_token`` is issued.
- ``POST /revoke``: revokes the grant behind an access or refresh token.
- ``GET /v1/userinfo``, ``/oauth2/v3/userinfo`` (OpenID shape), ``/oauth2/v2/userinfo``.

Errors use OAuth's ``{"error", "error_description"}`` shape.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlparse, urlunparse

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from calsync.emulator.accounts import (
    AUTH_CODE_TTL,
    AccessToken,
    AuthCode,
    consented_scopes,
    pkce_s256,
)
from calsync.emulator.frontend import USER_SCOPE_KEY
from calsync.emulator.state import EmulatorState

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = f'Bearer error="{error}"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


_CHOOSER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - calsync emulator</title></head>
<body>
<h1>Choose an account</h1>
<p>The calsync emulator stands in for Google: type any email address to sign in as that
user (created if new). Nothing leaves this machine.</p>
<form method="get" action="{action}">
{hidden}
<label>Email <input type="email" name="login_hint" required autofocus></label>
<button type="submit">Next</button>
</form>
</body></html>
"""


def account_chooser(request: Request) -> Response:
    """Google's account chooser, shown when no ``login_hint`` names the user: a form that
    asks for an email and sends the same authorization request again with it."""
    hidden = "\n".join(
        f'<input type="hidden" name="{html.escape(key)}" value="{html.escape(value)}">'
        for key, value in request.query_params.multi_items()
        if key != "login_hint"
    )
    page = _CHOOSER.format(action=html.escape(request.url.path), hidden=hidden)
    return HTMLResponse(page, headers=NO_STORE)


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlparse(url)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunparse(parts._replace(query=query))


async def _form(request: Request) -> dict[str, str]:
    raw = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}


class OAuthEndpoints:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    async def authorize(self, request: Request) -> Response:
        params = request.query_params
        state = self.state
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        if client_id not in state.config.clients:
            return oauth_error("invalid_client", "The OAuth client was not found.", 401)
        target = urlparse(redirect_uri)
        if target.scheme not in ("http", "https") or not target.netloc:
            return oauth_error("redirect_uri_mismatch", "Missing or invalid redirect_uri.")
        extra = {"state": params["state"]} if "state" in params else {}
        if params.get("response_type") != "code":
            return RedirectResponse(
                _with_query(redirect_uri, {"error": "unsupported_response_type"} | extra)
            )
        scope = params.get("scope", "").split()
        if not scope:
            return oauth_error("invalid_request", "Missing required parameter: scope")
        login_hint = params.get("login_hint", "").strip()
        if "@" not in login_hint:
            return account_chooser(request)
        if state.config.consent_denied:
            return RedirectResponse(_with_query(redirect_uri, {"error": "access_denied"} | extra))
        method = params.get("code_challenge_method")
        challenge = params.get("code_challenge")
        if challenge and (method or "plain") not in ("S256", "plain"):
            return RedirectResponse(_with_query(redirect_uri, {"error": "invalid_request"} | extra))
        offline = params.get("access_type") == "offline"
        with state.lock:
            user = state.create_user(login_hint)
            granted = consented_scopes(scope, state.accounts.consents.get(user.email))
            consent_key = (user.email, client_id)
            first = consent_key not in state.accounts.offline_consents
            issue_refresh = offline and (first or "consent" in params.get("prompt", "").split())
            if offline:
                state.accounts.offline_consents.add(consent_key)
            code = AuthCode(
                code="4/" + secrets.token_urlsafe(32),
                client_id=client_id,
                redirect_uri=redirect_uri,
                email=user.email,
                scopes=granted,
                code_challenge=challenge,
                code_challenge_method=(method or "plain") if challenge else None,
                expires_at=state.clock.now() + AUTH_CODE_TTL,
                issue_refresh_token=issue_refresh,
            )
            state.accounts.codes[code.code] = code
        request.scope[USER_SCOPE_KEY] = user.email
        answer = {"code": code.code} | extra | {"scope": " ".join(granted), "authuser": "0"}
        return RedirectResponse(_with_query(redirect_uri, answer), status_code=302)

    def _client(self, request: Request, form: dict[str, str]) -> str | None:
        """The authenticated client id, by basic auth or form fields; None if invalid."""
        header = request.headers.get("authorization", "")
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if header[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(header[6:].strip()).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            user, _, password = decoded.partition(":")
            client_id, secret = unquote(user), unquote(password)
        expected = self.state.config.clients.get(client_id or "")
        if client_id is None or expected is None or secret is None:
            return None
        return client_id if hmac.compare_digest(expected, secret) else None

    def _token_body(self, token: AccessToken, *, refresh: str | None) -> dict[str, Any]:
        ttl = round((token.expires_at - self.state.clock.now()).total_seconds())
        body: dict[str, Any] = {
            "access_token": token.token,
            "expires_in": ttl,
            "scope": " ".join(token.grant.scopes),
            "token_type": "Bearer",
        }
        if refresh is not None:
            body["refresh_token"] = refresh
        return body

    async def token(self, request: Request) -> Response:
        form = await _form(request)
        client_id = self._client(request, form)
        if client_id is None:
            return oauth_error("invalid_client", "Unauthorized", 401)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(request, form, client_id)
        if grant_type == "refresh_token":
            return self._refresh(request, form, client_id)
        return oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _exchange_code(self, request: Request, form: dict[str, str], client_id: str) -> Response:
        state = self.state
        with state.lock:
            now = state.clock.now()
            code = state.accounts.codes.get(form.get("code", ""))
            if code is None or code.client_id != client_id:
                return oauth_error("invalid_grant", "Malformed auth code.")
            if code.used or now >= code.expires_at:
                return oauth_error("invalid_grant", "Bad Request")
            if form.get("redirect_uri") != code.redirect_uri:
                return oauth_error("redirect_uri_mismatch", "Bad Request")
            if code.code_challenge is not None:
                verifier = form.get("code_verifier")
                if not verifier:
                    return oauth_error("invalid_grant", "Missing code verifier.")
                computed = (
                    verifier if code.code_challenge_method == "plain" else pkce_s256(verifier)
                )
                if not hmac.compare_digest(computed, code.code_challenge):
                    return oauth_error("invalid_grant", "Invalid code verifier.")
            code.used = True
            token = state.accounts.issue(
                code.email,
                client_id=client_id,
                scopes=code.scopes,
                with_refresh_token=code.issue_refresh_token,
                now=now,
                ttl=timedelta(seconds=state.config.token_ttl_seconds),
            )
            request.scope[USER_SCOPE_KEY] = code.email
            body = self._token_body(token, refresh=token.grant.refresh_token)
        return JSONResponse(body, headers=NO_STORE)

    def _refresh(self, request: Request, form: dict[str, str], client_id: str) -> Response:
        state = self.state
        with state.lock:
            grant = state.accounts.refresh_tokens.get(form.get("refresh_token", ""))
            if grant is None or grant.revoked or grant.client_id != client_id:
                return oauth_error("invalid_grant", "Token has been expired or revoked.")
            token = state.accounts.mint(
                grant,
                now=state.clock.now(),
                ttl=timedelta(seconds=state.config.token_ttl_seconds),
            )
            request.scope[USER_SCOPE_KEY] = grant.email
            body = self._token_body(token, refresh=None)
        return JSONResponse(body, headers=NO_STORE)

    async def revoke(self, request: Request) -> Response:
        form = await _form(request)
        token = form.get("token") or request.query_params.get("token", "")
        with self.state.lock:
            revoked = self.state.accounts.revoke(token)
        if not revoked:
            return oauth_error("invalid_token", "Token expired or revoked")
        return JSONResponse({})

    async def userinfo(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        token = token or request.query_params.get("access_token", "")
        state = self.state
        with state.lock:
            found = state.accounts.lookup_access(token, now=state.clock.now())
            user = state.accounts.user(found.email) if found else None
        if user is None:
            return oauth_error("invalid_request", "Invalid Credentials", 401)
        request.scope[USER_SCOPE_KEY] = user.email
        given, _, family = user.name.partition(" ")
        if request.url.path == "/oauth2/v2/userinfo":
            return JSONResponse(
                {
                    "id": user.sub,
                    "email": user.email,
                    "verified_email": True,
                    "name": user.name,
                    "given_name": given,
                    "family_name": family,
                }
            )
        return JSONResponse(
            {
                "sub": user.sub,
                "name": user.name,
                "given_name": given,
                "family_name": family,
                "email": user.email,
                "email_verified": True,
            }
        )

    async def openid_configuration(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/o/oauth2/v2/auth",
                "token_endpoint": f"{base}/token",
                "userinfo_endpoint": f"{base}/v1/userinfo",
                "revocation_endpoint": f"{base}/revoke",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["plain", "S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                ],
            }
        )


def oauth_routes(state: EmulatorState) -> list[Route]:
    endpoints = OAuthEndpoints(state)
    return [
        Route("/o/oauth2/auth", endpoints.authorize, methods=["GET"]),
        Route("/o/oauth2/v2/auth", endpoints.authorize, methods=["GET"]),
        Route("/token", endpoints.token, methods=["POST"]),
        Route("/o/oauth2/token", endpoints.token, methods=["POST"]),
        Route("/oauth2/v4/token", endpoints.token, methods=["POST"]),
        Route("/revoke", endpoints.revoke, methods=["POST", "GET"]),
        Route("/o/oauth2/revoke", endpoints.revoke, methods=["POST", "GET"]),
        Route("/v1/userinfo", endpoints.userinfo, methods=["GET"]),
        Route("/oauth2/v3/userinfo", endpoints.userinfo, methods=["GET"]),
        Route("/oauth2/v2/userinfo", endpoints.userinfo, methods=["GET"]),
        Route("/.well-known/openid-configuration", endpoints.openid_configuration, methods=["GET"]),
    ]
