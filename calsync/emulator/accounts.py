"""Users, OAuth grants, authorization codes and tokens.

A *grant* is one user's consent to one OAuth client for some scopes; its refresh token
(if any) and every access token minted from it die together when it is revoked, as on
Google. Expiry is judged by the emulator clock the caller passes in.

Not thread-safe by itself: ``EmulatorState.lock`` guards it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from calsync.emulator import ids

SCOPE_CALENDAR = "https://www.googleapis.com/auth/calendar"
SCOPE_CALENDAR_READONLY = "https://www.googleapis.com/auth/calendar.readonly"
SCOPE_EVENTS = "https://www.googleapis.com/auth/calendar.events"
SCOPE_EVENTS_READONLY = "https://www.googleapis.com/auth/calendar.events.readonly"
SCOPE_CALENDARLIST = "https://www.googleapis.com/auth/calendar.calendarlist"
SCOPE_CALENDARLIST_READONLY = "https://www.googleapis.com/auth/calendar.calendarlist.readonly"

FULL_SCOPES: tuple[str, ...] = (
    "openid",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
    SCOPE_CALENDAR,
)
EVENT_READ_SCOPES = frozenset(
    {SCOPE_CALENDAR, SCOPE_CALENDAR_READONLY, SCOPE_EVENTS, SCOPE_EVENTS_READONLY}
)
EVENT_WRITE_SCOPES = frozenset({SCOPE_CALENDAR, SCOPE_EVENTS})
CALENDAR_READ_SCOPES = frozenset(
    {SCOPE_CALENDAR, SCOPE_CALENDAR_READONLY, SCOPE_CALENDARLIST, SCOPE_CALENDARLIST_READONLY}
)
CALENDAR_WRITE_SCOPES = frozenset({SCOPE_CALENDAR})
SCOPE_USERINFO_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
SCOPE_USERINFO_PROFILE = "https://www.googleapis.com/auth/userinfo.profile"
#: The short names Google accepts in ``scope`` and the names its token response lists.
SCOPE_ALIASES = {"email": SCOPE_USERINFO_EMAIL, "profile": SCOPE_USERINFO_PROFILE}
#: Google's Sign-In scopes: consented to on one page, all or nothing. Every other scope
#: is a checkbox of the granular consent screen that follows (Google's granular
#: permissions guide, 2024), which the user may leave unticked.
SIGN_IN_SCOPES = frozenset({"openid", SCOPE_USERINFO_EMAIL, SCOPE_USERINFO_PROFILE})
AUTH_CODE_TTL = timedelta(minutes=10)


@dataclass
class User:
    email: str
    name: str
    sub: str
    time_zone: str = "UTC"
    # calendar id -> change number of this user's calendarList entry
    calendar_list: dict[str, int] = field(default_factory=dict)
    removed_calendars: dict[str, int] = field(default_factory=dict)
    list_seq: int = 0

    def touch_entry(self, calendar_id: str) -> None:
        self.list_seq += 1
        self.removed_calendars.pop(calendar_id, None)
        self.calendar_list[calendar_id] = self.list_seq

    def remove_entry(self, calendar_id: str) -> None:
        if self.calendar_list.pop(calendar_id, None) is not None:
            self.list_seq += 1
            self.removed_calendars[calendar_id] = self.list_seq


@dataclass
class Grant:
    id: str
    email: str
    client_id: str
    scopes: tuple[str, ...]
    refresh_token: str | None
    revoked: bool = False


@dataclass
class AccessToken:
    token: str
    grant: Grant
    expires_at: datetime
    revoked: bool = False

    @property
    def email(self) -> str:
        return self.grant.email

    def valid_at(self, now: datetime) -> bool:
        return not self.revoked and not self.grant.revoked and now < self.expires_at


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    email: str
    scopes: tuple[str, ...]
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: datetime
    issue_refresh_token: bool
    used: bool = False


def canonical_scope(scope: str) -> str:
    """The name Google's token response gives ``scope`` (``email`` is ``.../userinfo.email``)."""
    return SCOPE_ALIASES.get(scope, scope)


def consented_scopes(requested: list[str], ticked: frozenset[str] | None) -> tuple[str, ...]:
    """What a user grants when asked for ``requested``: every Sign-In scope, and of the
    others those in ``ticked`` (all of them when ``ticked`` is None: the user ticks every
    box). Names are canonical and in the order asked, without repeats."""
    granted: list[str] = []
    for scope in map(canonical_scope, requested):
        chosen = ticked is None or scope in SIGN_IN_SCOPES or scope in ticked
        if chosen and scope not in granted:
            granted.append(scope)
    return tuple(granted)


def pkce_s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class AccountStore:
    """Users and everything OAuth issues to them."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.grants: dict[str, Grant] = {}
        self.codes: dict[str, AuthCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        # (email, client_id) pairs that have consented with offline access before
        self.offline_consents: set[tuple[str, str]] = set()
        # every `sub` ever given out: Google never gives one to a second account
        self.subjects: set[str] = set()
        # email -> the non-Sign-In scopes the user ticks on the granular consent screen
        # (canonical names); a user missing here ticks every box
        self.consents: dict[str, frozenset[str]] = {}

    def user(self, email: str) -> User | None:
        return self.users.get(email.lower())

    def ensure_user(self, email: str, *, name: str | None = None, time_zone: str = "UTC") -> User:
        """The user ``email``, created if new with a ``sub`` no account ever had (Google's
        is a numeric string of 21 digits, stable for the account's life)."""
        key = email.lower()
        existing = self.users.get(key)
        if existing is not None:
            return existing
        user = User(
            email=key,
            name=name or key.split("@", 1)[0].replace(".", " ").title(),
            sub=self._new_subject(),
            time_zone=time_zone,
        )
        self.users[key] = user
        return user

    def _new_subject(self) -> str:
        while True:
            sub = str(100000000000000000000 + secrets.randbelow(10**20))
            if sub not in self.subjects:
                self.subjects.add(sub)
                return sub

    def forget_user(self, email: str) -> User:
        """Delete the account ``email``: its grants die and its consents are forgotten, so
        an account created later with the same email is a stranger (a new ``sub``, a first
        consent). Raises KeyError for an unknown email."""
        key = email.lower()
        user = self.users.pop(key)
        self.revoke_user(key)
        self.offline_consents = {pair for pair in self.offline_consents if pair[0] != key}
        self.consents.pop(key, None)
        return user

    def issue(
        self,
        email: str,
        *,
        client_id: str,
        scopes: tuple[str, ...],
        with_refresh_token: bool,
        now: datetime,
        ttl: timedelta,
    ) -> AccessToken:
        """A new grant and its first access token."""
        refresh = ids.new_secret("1//") if with_refresh_token else None
        grant = Grant(ids.new_secret("g-"), email.lower(), client_id, scopes, refresh)
        self.grants[grant.id] = grant
        if refresh is not None:
            self.refresh_tokens[refresh] = grant
        return self.mint(grant, now=now, ttl=ttl)

    def mint(self, grant: Grant, *, now: datetime, ttl: timedelta) -> AccessToken:
        token = AccessToken(ids.new_secret("ya29."), grant, now + ttl)
        self.access_tokens[token.token] = token
        return token

    def lookup_access(self, token: str, *, now: datetime) -> AccessToken | None:
        """The live access token ``token``; None when unknown, expired or revoked."""
        found = self.access_tokens.get(token)
        return found if found is not None and found.valid_at(now) else None

    def revoke(self, token: str) -> bool:
        """Revoke the grant behind an access or refresh token; False when unknown."""
        grant = self.refresh_tokens.get(token)
        if grant is None and token in self.access_tokens:
            grant = self.access_tokens[token].grant
        if grant is None or grant.revoked:
            return False
        grant.revoked = True
        return True

    def revoke_user(self, email: str) -> int:
        """Revoke every grant of ``email`` (the user removed the app's access)."""
        count = 0
        for grant in self.grants.values():
            if grant.email == email.lower() and not grant.revoked:
                grant.revoked = True
                count += 1
        return count

    def expire_access(self, token: str, *, now: datetime) -> None:
        found = self.access_tokens.get(token)
        if found is not None:
            found.expires_at = min(found.expires_at, now)
