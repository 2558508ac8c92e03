"""A calsync user connected to the emulator, and Google clients acting as them.

The user exists in calsync's database with tokens the emulator issued (stored with
``save_tokens``, so the real ``AccessTokens`` hands them out and refreshes them), and in
the emulator with a primary calendar. Sleeps are recorded, never slept.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.emulator.testing import EmulatorControl, build_calendar_service
from calsync.providers.google.client import GoogleCalendarClient
from calsync.providers.google.factory import GoogleProviders
from calsync.providers.quota import QuotaLimiter, quota_limiter
from tests.conftest import FakeGoogle
from tests.google_users import connect_google_user
from tests.migrated import upgrade

EMAIL = "alice@example.com"
EVENTS_PATH = r"/calendar/v3/calendars/[^/]+/events$"


@dataclass
class Connected:
    """One connected user and the means to act for them, on both sides."""

    services: Services
    google: FakeGoogle
    user_id: uuid.UUID
    email: str
    google_tokens: dict[str, Any]
    limiter: QuotaLimiter
    providers: GoogleProviders
    sleeps: list[float] = field(default_factory=list)
    _closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def control(self) -> EmulatorControl:
        return self.google.control

    @property
    def calendar_id(self) -> str:
        return self.email  # the primary calendar

    def client(self, **options: Any) -> GoogleCalendarClient:
        """A client as ``GoogleProviders`` makes it, or with test ``options``."""
        if not options:
            return self.providers.for_user(self.user_id)
        defaults: dict[str, Any] = {
            "tokens": self.services.access_tokens,
            "quota": self.limiter,
            "sleep": self.sleeps.append,
        }
        client = GoogleCalendarClient(
            user_id=self.user_id, settings=self.services.settings, **(defaults | options)
        )
        self._closers.append(client.close)
        return client

    def remote(self) -> Any:
        """The user acting on Google directly (another Google client, not calsync)."""
        tokens = self.control.issue_tokens(self.email)
        service = build_calendar_service(self.google.url, tokens["access_token"])
        self._closers.append(service.close)
        return service

    def close(self) -> None:
        for close in self._closers:
            close()
        self.providers.close()  # and the limiter

    def stored_access_token(self) -> str:
        return self.services.access_tokens.for_user(self.user_id).reveal()

    def google_requests(self, **filters: str) -> list[dict[str, Any]]:
        return self.control.requests(**filters)


def connect(services: Services, google: FakeGoogle, email: str = EMAIL) -> Connected:
    account, granted = connect_google_user(services, google.control, email)
    sleeps: list[float] = []
    limiter = quota_limiter(services.settings, sleep=sleeps.append)
    return Connected(
        services=services,
        google=google,
        user_id=account.id,
        email=email,
        google_tokens=granted,
        limiter=limiter,
        providers=GoogleProviders(
            services.settings, services.access_tokens, limiter, sleeps.append
        ),
        sleeps=sleeps,
    )


def started(settings: Settings) -> Services:
    services = bootstrap(settings)
    if settings.is_embedded:
        upgrade(services.engine)
    return services


@pytest.fixture
def services(production_settings: Settings, fake_google: FakeGoogle) -> Iterator[Services]:
    """Production wiring (PostgreSQL, Redis) pointed at the emulator."""
    services = started(fake_google.settings_for(production_settings))
    yield services
    services.close()


@pytest.fixture
def alice(services: Services, fake_google: FakeGoogle) -> Iterator[Connected]:
    connected = connect(services, fake_google)
    yield connected
    connected.close()


@pytest.fixture(params=["embedded", "production"])
def alice_in_each_mode(
    request: pytest.FixtureRequest, fake_google: FakeGoogle
) -> Iterator[Connected]:
    """Alice connected in embedded mode (SQLite, in-process quota) and in production."""
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    services = started(fake_google.settings_for(settings))
    connected = connect(services, fake_google)
    yield connected
    connected.close()
    services.close()
