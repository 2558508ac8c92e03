"""The app the hostile-input suites attack: on each database (SQLite with the in-process
broker, PostgreSQL with Redis), through the ASGI app, pointed at the emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from calsync.config import Settings
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, User, running


@pytest.fixture(params=["embedded", "production"])
def hostile(request: pytest.FixtureRequest, fake_google: FakeGoogle) -> Iterator[EventsApp]:
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    yield from running(settings, fake_google)


@pytest.fixture
def alice(hostile: EventsApp) -> User:
    return hostile.connect("alice@example.com")
