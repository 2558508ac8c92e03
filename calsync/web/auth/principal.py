"""Who is calling: the JWT authentication backend and the checks routes call.

Every request with an ``Authorization: Bearer`` header (but ``/metrics``, which has its
own token) is verified (signature, pinned algorithm, expiry, issuer, audience) and its
subject loaded from the database, so a role change or a disabled account takes effect at
once rather than when the token expires. Routes then call :func:`require_user` or
:func:`require_admin`. Failures are counted in the audit trail per client address and
reason (each address is rate limited before it gets here, ``calsync.web.app``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Final

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from calsync.bootstrap import Services
from calsync.domain.accounts import AccountStatus, UserAccount
from calsync.store import audit, users
from calsync.store.db import RequestConnection, held_connection
from calsync.web.auth.tokens import InvalidToken, verify_token
from calsync.web.connections import use_request_connection
from calsync.web.errors import APIError, error_response
from calsync.web.limits import RateDecision, RateLimit, address_bucket, rate_limited_response
from calsync.web.request_limits import add_rate_headers, take_carried

log = logging.getLogger(__name__)

#: Paths that check a bearer token of their own (``/metrics``: ``CALSYNC_METRICS_TOKEN``),
#: which must not be taken for a calsync JWT (and audited as a failed one).
OWN_TOKEN_PATHS: Final = frozenset({"/metrics"})


@dataclass(frozen=True)
class Principal(BaseUser):
    """An authenticated caller."""

    account: UserAccount

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.account.email

    @property
    def identity(self) -> str:
        return str(self.account.id)


@dataclass(frozen=True)
class VerifiedToken(BaseUser):
    """A caller whose token was verified (signature, expiry, issuer, audience) but whose
    account is not read yet: the route reads it in its own worker thread, before
    anything else, with `read_caller` (routes named in `JWTAuthBackend`'s
    `account_in_route`, decision HU1)."""

    user_id: uuid.UUID

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return str(self.user_id)

    @property
    def identity(self) -> str:
        return str(self.user_id)


def caller_id(user: object) -> uuid.UUID | None:
    """The id of an authenticated caller (`Principal` or `VerifiedToken`), else None."""
    if isinstance(user, Principal):
        return user.account.id
    if isinstance(user, VerifiedToken):
        return user.user_id
    return None


#: The 401 of a refused token (`authentication_failed`, `read_caller`).
REFUSED_MESSAGE: Final = "invalid or expired token"
REFUSED_HEADERS: Final = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class JWTAuthBackend(AuthenticationBackend):
    """Starlette authentication backend for calsync's JWT sessions.

    For the routes in `account_in_route` (method, path), it verifies the token on the
    event loop and leaves the account's read to the route's worker thread
    (`VerifiedToken`, `read_caller`): one thread hop a request instead of two
    (decision HU1). For every other route it verifies and reads in a thread of its own
    (`Principal`)."""

    def __init__(
        self, services: Services, *, account_in_route: frozenset[tuple[str, str]] = frozenset()
    ) -> None:
        self.services = services
        self.account_in_route = account_in_route

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        header = conn.headers.get("authorization")
        if header is None or conn.scope["path"] in OWN_TOKEN_PATHS:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            await self._failed(conn, "malformed Authorization header")
        if (conn.scope["method"], conn.scope["path"]) in self.account_in_route:
            return await self._verify_only(conn, token.strip())
        held = await use_request_connection(self.services.engine)
        try:
            account = await run_in_threadpool(self._verify_and_load, token.strip(), held)
        except InvalidToken as exc:
            await self._failed(conn, exc.reason)
        if account is None or account.status is AccountStatus.DISABLED:
            await self._failed(conn, "unknown or disabled user")
        assert account is not None
        return AuthCredentials(["authenticated", account.role.value]), Principal(account)

    async def _verify_only(
        self, conn: HTTPConnection, token: str
    ) -> tuple[AuthCredentials, BaseUser]:
        """The token verified on the loop (an HMAC and its claims: ~0.1 ms of CPU, which
        a thread hop of its own costs more than), its account left to the route."""
        try:
            claims = verify_token(self.services.jwt, token, now=self.services.clock())
            user_id = uuid.UUID(claims.subject)
        except InvalidToken as exc:
            await self._failed(conn, exc.reason)
        except ValueError:
            await self._failed(conn, "unknown or disabled user")
        return AuthCredentials(["authenticated"]), VerifiedToken(user_id)

    def _verify_and_load(self, token: str, held: RequestConnection | None) -> UserAccount | None:
        """Verify the token, then read the account its subject names (`_load`); in a worker
        thread (a signature check is CPU work the event loop must not wait for).

        Raises:
            InvalidToken: the token is not one calsync issued, or has expired.
        """
        claims = verify_token(self.services.jwt, token, now=self.services.clock())
        return self._load(claims.subject, held)

    def _load(self, subject: str, held: RequestConnection | None = None) -> UserAccount | None:
        """The account the token's subject names, read now.

        One statement (no ORM session, which costs more than the read on every request),
        the first on the request's connection (`held`, which the route then uses too), so
        a connection the server dropped is replaced and the read retried
        (`RequestConnection.first_statement`: the API's pool has no pre-ping). Without
        `held` (an app without ``RequestConnectionMiddleware``) on a connection of its own.
        """
        try:
            user_id = uuid.UUID(subject)
        except ValueError:
            return None
        if held is not None:
            return held.first_statement(lambda c: users.account_by_id(c, user_id))
        own = RequestConnection(self.services.engine)
        try:
            return own.first_statement(lambda c: users.account_by_id(c, user_id))
        finally:
            own.close()

    async def _failed(self, conn: HTTPConnection, reason: str) -> None:
        """Refuse the request: 429 when its address's bucket (carried past the address
        limit, `calsync.web.request_limits`) is empty, else audited and 401."""
        taken = await take_carried(conn.scope)
        if taken is not None and not taken[0].allowed:
            raise TokenRefused(reason, rate=taken)
        log.info("authentication failed: %s", reason)
        address = address_bucket(conn.client.host) if conn.client else None
        await run_in_threadpool(self._audit_failure, reason, address, conn.url.path)
        raise TokenRefused(reason, rate=taken)

    def _audit_failure(self, reason: str, address: str | None, path: str) -> None:
        """Counted per (address, reason, minute): a flood is one row per reason, with the
        path of its first request."""
        with self.services.sessions.begin() as session:
            audit.record_repeated(
                session,
                audit.AuditAction.AUTH_FAILED,
                remote_addr=address,
                reason=reason[:200],
                now=self.services.clock(),
                details={"path": path[:200]},
            )


class TokenRefused(AuthenticationError):
    """A refused token, with its address bucket's hit (`rate`) when it took one."""

    def __init__(self, reason: str, *, rate: tuple[RateDecision, RateLimit] | None) -> None:
        super().__init__(reason)
        self.rate = rate


def authentication_failed(_conn: HTTPConnection, exc: Exception) -> Response:
    """The answer to a bad token: 401 with a generic message (the reason stays in logs);
    429 when its address's bucket was empty (`JWTAuthBackend._failed`)."""
    rate = exc.rate if isinstance(exc, TokenRefused) else None
    if rate is not None and not rate[0].allowed:
        response: Response = rate_limited_response(rate[0])
    else:
        response = error_response(401, REFUSED_MESSAGE, headers=REFUSED_HEADERS)
    if rate is not None:
        add_rate_headers(response, *rate)
    return response


def require_user(request: Request) -> UserAccount:
    """The calling user.

    Raises:
        APIError: 401 when the request carries no token.
    """
    principal = request.user
    if not isinstance(principal, Principal):
        # A `VerifiedToken` is only made for routes that read the caller (`read_caller`).
        assert not isinstance(principal, VerifiedToken), "this route reads its caller"
        raise APIError(401, "authentication required", headers={"WWW-Authenticate": "Bearer"})
    return principal.account


def require_token(request: Request) -> None:
    """On the loop, for a route that reads its caller in its thread (`read_caller`): the
    request carries a verified token.

    Raises:
        APIError: 401 when it carries none.
    """
    if not isinstance(request.user, Principal | VerifiedToken):
        raise APIError(401, "authentication required", headers={"WWW-Authenticate": "Bearer"})


def read_caller(request: Request) -> UserAccount:
    """In the route's worker thread: the caller's account, read now as authentication
    reads it for other routes (`JWTAuthBackend._load`: the first statement on the
    request's connection, outside a transaction), so a role change or a disabled
    account takes effect at once. Returns the account authentication read when the
    request has one already (`Principal`).

    Raises:
        APIError: 401 without a token; 401 as for a refused token (audited per address,
            as `JWTAuthBackend._failed` does) when the account is unknown or disabled.
    """
    principal = request.user
    if isinstance(principal, Principal):
        return principal.account
    if not isinstance(principal, VerifiedToken):
        raise APIError(401, "authentication required", headers={"WWW-Authenticate": "Bearer"})
    services: Services = request.app.state.services
    backend = JWTAuthBackend(services)
    account = backend._load(str(principal.user_id), held_connection(services.engine))
    if account is None or account.status is AccountStatus.DISABLED:
        reason = "unknown or disabled user"
        log.info("authentication failed: %s", reason)
        address = address_bucket(request.client.host) if request.client else None
        backend._audit_failure(reason, address, request.url.path)
        raise APIError(401, REFUSED_MESSAGE, headers=REFUSED_HEADERS)
    return account


def require_admin(request: Request) -> UserAccount:
    """The calling user, who must be an admin.

    Raises:
        APIError: 401 without a token, 403 for a user who is not an admin.
    """
    account = require_user(request)
    if not account.is_admin:
        raise APIError(403, "this route is for admins")
    return account
