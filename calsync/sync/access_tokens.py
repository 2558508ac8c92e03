"""Valid Google access tokens for workers: refreshed before expiry, once, under a lock.

A use case, not a provider's: it reads and writes the store (the credentials, the audit
trail, the sync log), and hands a provider only tokens, through the provider's
`calsync.providers.google.calls.TokenSource` port (issue 20 item 7).

Every Calendar API call a worker makes starts with :meth:`AccessTokens.for_user`. A token
that expires within the margin is refreshed first; a 401 from the API leads to exactly one
:meth:`AccessTokens.after_unauthorized` and one retry. Refreshing takes a per-user lock in
this process and the token row's ``FOR UPDATE`` lock in PostgreSQL, and re-reads the row
inside it, so concurrent workers refresh once and the others use the result.

This is the one path by which anything reads a user's Google token: no statement
elsewhere reads the token rows (a pull that once read the token in its lease statement
got another user's token on SQLite).

When Google answers ``invalid_grant`` the account is marked ``needs_reauth``, the sync log
and audit trail record it, and :class:`AccountNeedsReauth` is raised; from then on no call
reaches Google for that user until they sign in again, so a revoked grant never becomes a
retry storm. The mark is a compare-and-set on the refused tokens: a sign-in that stored
new ones meanwhile is left alone, and the refresh goes on with them (decision F1).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.secret import Secret
from calsync.providers.errors import AccountNeedsReauth, AccountNotConnected
from calsync.providers.google.oauth import GoogleOAuth, InvalidGrant, grants_calendar
from calsync.store import audit, credentials, sync_logs
from calsync.store.secrets import SecretBox

__all__ = ["REFRESH_MARGIN", "AccessTokens", "AccountNeedsReauth", "AccountNotConnected"]

REFRESH_MARGIN = timedelta(minutes=5)


class AccessTokens:
    """Hands out valid access tokens, refreshing them through :class:`GoogleOAuth`."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        box: SecretBox,
        oauth: GoogleOAuth,
        clock: Callable[[], datetime],
        *,
        margin: timedelta = REFRESH_MARGIN,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self._oauth = oauth
        self._clock = clock
        self._margin = margin
        self._locks: dict[uuid.UUID, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def for_user(self, user_id: uuid.UUID) -> Secret:
        """A token valid for at least the margin.

        Raises:
            AccountNeedsReauth: the grant was revoked (now or before).
            AccountNotConnected: no tokens are stored for the user, or they lack calendar
                access.
            OAuthUnavailable: Google could not refresh it just now; retry later.
        """
        stored = self._read(user_id)
        current = self._usable(user_id, stored)
        if current is not None:
            return current
        return self._refresh(user_id, rejected=None)

    def _read(self, user_id: uuid.UUID) -> credentials.StoredCredentials | None:
        """The stored credentials, read outside any transaction when the sessions are
        bound to an engine (`credentials.read_credentials`), else in a session."""
        bind = self._sessions.kw.get("bind")
        if isinstance(bind, Engine):
            return credentials.read_credentials(bind, self._box, user_id)
        with self._sessions() as session:
            return credentials.load_credentials(session, self._box, user_id)

    def _expiring(self, expires_at: datetime | None) -> bool:
        return expires_at is not None and expires_at - self._margin <= self._clock()

    def after_unauthorized(self, user_id: uuid.UUID, rejected: Secret) -> Secret:
        """A fresh token after the API refused ``rejected`` with 401; call it once per 401.

        Raises the same errors as :meth:`for_user`.
        """
        return self._refresh(user_id, rejected=rejected)

    def _usable(
        self, user_id: uuid.UUID, stored: credentials.StoredCredentials | None
    ) -> Secret | None:
        if stored is None:
            raise AccountNotConnected(f"user {user_id} has no Google tokens")
        if stored.status != "valid":
            raise AccountNeedsReauth(user_id)
        if not grants_calendar(stored.scopes):
            raise AccountNotConnected(f"user {user_id} did not grant calendar access")
        if self._expiring(stored.expires_at):
            return None
        return stored.access_token

    def _refresh(self, user_id: uuid.UUID, *, rejected: Secret | None) -> Secret:
        with self._lock_for(user_id):
            current = self._refresh_locked(user_id, rejected=rejected)
        if current is None:  # signed in meanwhile, new tokens about to expire: refresh those
            return self._refresh(user_id, rejected=None)
        return current

    def _refresh_locked(self, user_id: uuid.UUID, *, rejected: Secret | None) -> Secret | None:
        with self._sessions.begin() as session:
            # Google's token endpoint is called under this lock: on SQLite it must not
            # stop every writer meanwhile (`stop_writers`).
            stored = credentials.load_credentials(
                session, self._box, user_id, lock=True, stop_writers=False
            )
            if stored is not None and stored.status == "valid":
                if not grants_calendar(stored.scopes):  # signed in meanwhile without it
                    raise AccountNotConnected(f"user {user_id} did not grant calendar access")
                already_fresh = (
                    stored.access_token != rejected
                    if rejected is not None
                    else self._usable(user_id, stored) is not None
                )
                if already_fresh:  # another worker refreshed while we waited
                    return stored.access_token
            elif stored is not None:
                raise AccountNeedsReauth(user_id)
            if stored is None:
                raise AccountNotConnected(f"user {user_id} has no Google tokens")
            if stored.refresh_token is None:
                reason = "no refresh token stored"
            else:
                try:
                    granted = self._oauth.refresh(stored.refresh_token)
                except InvalidGrant:
                    reason = "Google refused the refresh token"
                else:
                    credentials.save_tokens(
                        session,
                        self._box,
                        user_id=user_id,
                        access_token=granted.access_token,
                        refresh_token=granted.refresh_token,
                        expires_at=granted.expires_at,
                        scopes=granted.scopes or stored.scopes,
                    )
                    return granted.access_token
        # Marked in a transaction of its own, which locks the user's row before the token
        # row's, as the sign-in does (else the two deadlock on PostgreSQL). Another
        # process may meanwhile send the refused refresh token once more: harmless.
        return self._revoked(user_id, stored, reason)

    def _revoked(
        self, user_id: uuid.UUID, refused: credentials.StoredCredentials, reason: str
    ) -> Secret | None:
        """Google refused the grant of the tokens `refused`: mark the account
        ``needs_reauth`` and raise `AccountNeedsReauth`; but if the user signed in again
        meanwhile (new tokens are stored), the refusal was about the old grant: nothing
        is marked and the new access token is returned (None if it is about to expire
        and must be refreshed) (decision F1)."""
        with self._sessions.begin() as session:
            credentials.lock_user(session, user_id)
            current = credentials.load_credentials(session, self._box, user_id, lock=True)
            # The same tokens, by value (a key rotation re-encrypts them, which changes
            # the stamp but not the grant); then marked only if still stored as read now.
            same = current is not None and current.access_token == refused.access_token
            if (
                same
                and current is not None
                and credentials.mark_needs_reauth(session, user_id, refused=current.stamp)
            ):
                sync_logs.record(
                    session,
                    user_id=user_id,
                    kind=sync_logs.LogKind.AUTH,
                    status=sync_logs.LogStatus.ERROR,
                    at=self._clock(),
                    message=f"Google access was revoked ({reason}); sign in again to resume sync",
                )
                audit.record(
                    session,
                    audit.AuditAction.TOKEN_REVOKED,
                    subject_id=user_id,
                    details={"reason": reason},
                )
                marked = True
            else:
                marked = False
        if marked:
            raise AccountNeedsReauth(user_id)
        return self._usable(user_id, current)  # raises for flagged or missing tokens

    def _lock_for(self, user_id: uuid.UUID) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(user_id, threading.Lock())
