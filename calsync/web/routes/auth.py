"""Google sign-in: ``GET /auth/google`` and ``GET /auth/google/callback``.

The flow is OAuth2's authorization code with PKCE (S256) and a ``state`` bound to the
browser by a signed, short-lived cookie. The callback redeems the state once (a replay is
refused), exchanges the code (the web layer's one call to Google), stores the tokens
encrypted, and answers with a calsync JWT. Every refusal of the flow itself is a 400
that stores nothing but its audit row.

Users are matched on Google's subject (``sub``), not on the email
(:func:`calsync.store.users.sign_in_google`): an email that belongs to a user bound to
another Google account is refused with 409 and audited until an admin releases it
(``POST /admin/users/{id}/release-email``); a disabled user is refused with 403.

Granular consent (Google, 2024): the user may untick calendar access on the consent
screen, and the token response's ``scope`` then lacks it. The sign-in still succeeds as
an identity (the user is created or found, the tokens are stored with the scopes they
have, the account stays ``active``), but nothing is connected: no connection is queued,
no worker uses those tokens (:mod:`calsync.sync.access_tokens`), and the answer is
403 ``calendar_access_not_granted`` carrying the JWT and the user with
``calendar_access: false``. Signing in again with calendar ticked connects as usual.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from calsync.bootstrap import Services
from calsync.domain.accounts import AccountStatus, UserAccount
from calsync.providers.google.oauth import (
    CALENDAR_SCOPE,
    GoogleIdentity,
    GrantedTokens,
    InvalidGrant,
    OAuthError,
    OAuthUnavailable,
    grants_calendar,
)
from calsync.store import audit, credentials, oauth_states, sync_logs, users
from calsync.sync.connect import NOT_CONNECTED_MESSAGE
from calsync.web.auth.oauth_state import (
    InvalidState,
    OAuthState,
    issue_state_cookie,
    state_cookie_options,
    verify_state_cookie,
)
from calsync.web.auth.tokens import issue_token
from calsync.web.errors import APIError
from calsync.web.limits import address_bucket
from calsync.web.serializers import account_json

log = logging.getLogger(__name__)

MAX_LOGIN_HINT = 320

NOT_GRANTED_MESSAGE: Final = (
    "Google calendar access was not granted, so calsync cannot sync your calendars; "
    "sign in again and tick calendar access on Google's consent screen"
)

#: The ``error`` values of an authorization response (RFC 6749 4.1.2.1, OpenID Connect
#: 3.1.2.6) and Google's own; another value is audited as "(other)", so refusal reasons
#: stay a small fixed set (they key the audit trail's counted rows).
OAUTH_ERRORS: Final = frozenset(
    {
        "access_denied",
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
        "admin_policy_enforced",
        "disallowed_useragent",
        "org_internal",
    }
)


async def start_google_sign_in(request: Request) -> Response:
    """Redirect the browser to Google's consent page, binding the attempt to a cookie.

    ``login_hint`` is optional: Google then lets the person pick or type their account
    (the emulator asks for an email). A browser that came in by another loopback name
    than ``CALSYNC_PUBLIC_URL`` has (``localhost`` for ``127.0.0.1``) is first sent to
    the public one, since the cookie is kept per host name and Google sends the browser
    back to the public URL: the callback would find no cookie."""
    services: Services = request.app.state.services
    canonical = _public_origin_redirect(request, services.settings.public_url)
    if canonical is not None:
        return canonical
    login_hint = request.query_params.get("login_hint")
    if login_hint is not None and (len(login_hint) > MAX_LOGIN_HINT or "@" not in login_hint):
        raise APIError(400, "login_hint must be an email address", code="invalid_login_hint")
    bundle, cookie = issue_state_cookie(services.oauth_state, now=services.clock())
    url = services.google_oauth.authorization_url(
        state=bundle.state, code_verifier=bundle.code_verifier, login_hint=login_hint
    )
    response = RedirectResponse(url, status_code=302)
    options = state_cookie_options(services.oauth_state, secure=_is_https(services))
    response.set_cookie(value=cookie, **options)
    return response


async def finish_google_sign_in(request: Request) -> Response:
    """Complete the sign-in and answer ``{"token": JWT, "user": {...}}``; without calendar
    access, 403 ``calendar_access_not_granted`` with the same two fields added."""
    services: Services = request.app.state.services
    address = request.client.host if request.client else None
    bundle, code = await _redeemed_callback(services, request, address)
    tokens, identity = await _exchange(services, code=code, bundle=bundle, address=address)
    calendar_access = grants_calendar(tokens.scopes)
    account = await _signed_in(services, identity, tokens, address, calendar_access)
    jwt = issue_token(
        services.jwt,
        subject=str(account.id),
        email=account.email,
        role=account.role.value,
        now=services.clock(),
    )
    user = account_json(account) | {"calendar_access": calendar_access}
    if calendar_access:
        response = JSONResponse({"token": jwt, "user": user})
    else:
        # An error, since calsync cannot do its work; the JWT still comes along, so the
        # client can show the account (GET /me) and send the user back to Google.
        refusal = {
            "code": "calendar_access_not_granted",
            "message": NOT_GRANTED_MESSAGE,
            "details": [{"missing_scope": CALENDAR_SCOPE}],
        }
        response = JSONResponse({"error": refusal, "token": jwt, "user": user}, status_code=403)
    cookie = state_cookie_options(services.oauth_state, secure=False)
    response.delete_cookie(cookie["key"], path=cookie["path"])
    return response


async def _redeemed_callback(
    services: Services, request: Request, address: str | None
) -> tuple[OAuthState, str]:
    """The callback's state (checked against its cookie, then redeemed once) and its
    authorization code. Raises a 400 `APIError` for a refused consent, a missing,
    forged, expired or replayed state, or no code; all but the missing code are audited."""
    params = request.query_params
    if params.get("error"):
        error = params["error"] if params["error"] in OAUTH_ERRORS else "(other)"
        await _refuse(services, address, f"consent {error}")
        raise APIError(400, "Google sign-in was not granted", code="consent_denied")
    cookie_name = state_cookie_options(services.oauth_state, secure=False)["key"]
    try:
        bundle = verify_state_cookie(
            services.oauth_state,
            request.cookies.get(cookie_name),
            state_param=params.get("state"),
            now=services.clock(),
        )
    except InvalidState as exc:
        await _refuse(services, address, exc.reason)
        raise APIError(
            400, "the sign-in state is missing, forged or expired", code="invalid_state"
        ) from None
    code = params.get("code")
    if not code:
        raise APIError(400, "the callback carries no authorization code", code="missing_code")
    if not await run_in_threadpool(_redeem_state, services, bundle):
        await _refuse(services, address, "replayed state")
        raise APIError(400, "this sign-in was already completed", code="invalid_state")
    return bundle, code


async def _signed_in(
    services: Services,
    identity: GoogleIdentity,
    tokens: GrantedTokens,
    address: str | None,
    calendar_access: bool,
) -> UserAccount:
    """`_connect` in a worker thread; its refusals audited and answered: 409 for an email
    of another Google account, 403 for a disabled user (nothing else written)."""
    try:
        return await run_in_threadpool(
            _connect, services, identity, tokens, address, calendar_access
        )
    except users.EmailOfAnotherAccount as conflict:
        details = {
            "reason": "email of another Google account",
            "email": conflict.email,
            "google_subject": conflict.subject,
        }
        await run_in_threadpool(_record_refusal, services, conflict.user_id, address, details)
        raise APIError(
            409,
            "this email belongs to another Google account; an admin must decide",
            code="email_of_another_account",
        ) from None
    except _Disabled as disabled:
        details = {"reason": "disabled user"}
        await run_in_threadpool(_record_refusal, services, disabled.user_id, address, details)
        raise APIError(403, "this account is disabled", code="account_disabled") from None


async def _exchange(
    services: Services, *, code: str, bundle: OAuthState, address: str | None
) -> tuple[GrantedTokens, GoogleIdentity]:
    try:
        tokens = await services.google_oauth.exchange_code(
            code=code, code_verifier=bundle.code_verifier
        )
        identity = await services.google_oauth.fetch_identity(tokens.access_token)
    except InvalidGrant:
        await _refuse(services, address, "code refused by Google")
        raise APIError(400, "Google refused the authorization code", code="invalid_grant") from None
    except OAuthUnavailable as exc:
        log.warning("Google OAuth unavailable: %s", exc)
        raise APIError(
            503, "Google sign-in is unavailable; try again", headers={"Retry-After": "10"}
        ) from None
    except OAuthError as exc:
        log.error("Google OAuth refused our request: %s", exc)
        raise APIError(502, "Google refused the sign-in request") from None
    if not identity.email_verified:
        await _refuse(services, address, "unverified email")
        raise APIError(400, "the Google account's email is not verified", code="unverified_email")
    return tokens, identity


def _redeem_state(services: Services, bundle: OAuthState) -> bool:
    """Mark the state used; False when it already was (a replay)."""
    return oauth_states.redeem_state(
        services.sessions,
        nonce=bundle.nonce,
        keep_until=bundle.expires_at + timedelta(minutes=1),
        now=services.clock(),
    )


class _Disabled(Exception):
    """The Google account is a disabled user's: nothing is stored."""

    def __init__(self, user_id: uuid.UUID) -> None:
        super().__init__(f"user {user_id} is disabled")
        self.user_id = user_id


def _connect(
    services: Services,
    identity: GoogleIdentity,
    tokens: GrantedTokens,
    address: str | None,
    calendar_access: bool,
) -> UserAccount:
    """Find or create the user the Google account is and store their tokens, in one
    transaction, then queue the connection of their calendars, only with
    ``calendar_access`` (the tokens grant the calendar scope). Without it the account is
    active but not connected: its tokens are stored with the scopes they have, which
    keeps every worker from using them (:mod:`calsync.sync.access_tokens`), and
    the sync log says why.

    Raises:
        users.EmailOfAnotherAccount: (from the store) nothing was written.
        _Disabled: the user is disabled; nothing was written.
    """
    with services.sessions.begin() as session:
        account = users.sign_in_google(
            session, subject=identity.subject, email=identity.email, display_name=identity.name
        )
        if account.status is AccountStatus.DISABLED:
            raise _Disabled(account.id)
        _store_sign_in(session, services, account.id, identity, tokens, address, calendar_access)
        refreshed = users.find_by_id(session, account.id)
    assert refreshed is not None
    if calendar_access:
        # After the commit: the worker must find the tokens. Lists the calendars, queues
        # their first pulls and opens the push channels (calsync.sync.connect).
        services.jobs.connect_user.send(str(account.id))
    return refreshed


def _store_sign_in(
    session: Session,
    services: Services,
    user_id: uuid.UUID,
    identity: GoogleIdentity,
    tokens: GrantedTokens,
    address: str | None,
    calendar_access: bool,
) -> None:
    """In `_connect`'s transaction: store the user's tokens (with the scopes they have),
    end a ``needs_reauth``, audit the sign-in and, without calendar access, say in the
    sync log why nothing is connected."""
    # The user's row before the token row's, as a refresh that finds the grant revoked
    # locks them (`AccessTokens._revoked`): the two wait for each other in one order.
    credentials.lock_user(session, user_id)
    credentials.save_tokens(
        session,
        services.secrets,
        user_id=user_id,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_at=tokens.expires_at,
        scopes=tokens.scopes,
        provider_subject=identity.subject,
    )
    # A grant without calendar access is alive, not revoked: "not connected" is not
    # "needs_reauth", which says Google refused the grant. Decided on the row as it is
    # now, not on `account`: a refresh that found the old grant revoked may have
    # marked it since it was read (issue 15, decision F1).
    credentials.reactivate(session, user_id)
    audit.record(
        session,
        audit.AuditAction.SIGN_IN,
        actor_id=user_id,
        subject_id=user_id,
        remote_addr=address,
        details={"provider": "google", "calendar_access": calendar_access},
    )
    if not calendar_access:
        sync_logs.record(
            session,
            user_id=user_id,
            kind=sync_logs.LogKind.AUTH,
            status=sync_logs.LogStatus.ERROR,
            at=services.clock(),
            message=NOT_CONNECTED_MESSAGE,
        )


def _record_refusal(
    services: Services, user_id: uuid.UUID, address: str | None, details: dict[str, str]
) -> None:
    """Audit a Google sign-in refused for the user ``user_id`` (one row each: every one
    took a completed consent at Google, so they cannot come in floods)."""
    with services.sessions.begin() as session:
        audit.record(
            session,
            audit.AuditAction.SIGN_IN_REFUSED,
            subject_id=user_id,
            remote_addr=address,
            details=details,
        )


async def _refuse(services: Services, address: str | None, reason: str) -> None:
    """Count a failed sign-in (anyone can send these: one row per address, reason and
    minute, see :func:`calsync.store.audit.record_repeated`)."""

    def write() -> None:
        with services.sessions.begin() as session:
            audit.record_repeated(
                session,
                audit.AuditAction.SIGN_IN_FAILED,
                remote_addr=address_bucket(address) if address else None,
                reason=reason,
                now=services.clock(),
            )

    await run_in_threadpool(write)


_LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})


def _is_loopback(host: str | None) -> bool:
    name = (host or "").strip("[]").lower()
    return name in _LOOPBACK_NAMES or name.endswith(".localhost")


def _public_origin_redirect(request: Request, public_url: str) -> Response | None:
    """A redirect to the same path on the public URL when the request reached calsync by
    another loopback name than the public URL's; None otherwise. Only loopback names
    are rewritten: behind a proxy, the ``Host`` calsync sees may differ from the public
    one for every request, and a redirect there would loop."""
    public = urlsplit(public_url)
    asked = request.url
    if asked.hostname == public.hostname or not (
        _is_loopback(asked.hostname) and _is_loopback(public.hostname)
    ):
        return None
    target = urlunsplit((public.scheme, public.netloc, asked.path, asked.query, ""))
    return RedirectResponse(target, status_code=307)


def _is_https(services: Services) -> bool:
    return services.settings.public_url.startswith("https://")
