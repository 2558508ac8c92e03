"""Bugs the multi-tenant simulation (tests/sim, docs/faults.md) found in syncing, with
worker threads: each test names the seed that showed it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2 as httpx
import pytest

from calsync.config import Settings
from calsync.store.db import make_engine
from calsync.web.auth.tokens import issue_token
from tests.conftest import FakeGoogle
from tests.integration.sync.conftest import SyncStack, running_stack, sync_settings, wait_until
from tests.migrated import upgrade

pytestmark = pytest.mark.integration


@pytest.fixture(params=["embedded", "production"])
def any_stack(request: pytest.FixtureRequest, fake_google: FakeGoogle) -> Iterator[SyncStack]:
    """The stack with worker threads on each database (and its broker)."""
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    if settings.is_embedded:  # the PostgreSQL test database is migrated already
        engine = make_engine(settings.database_url)
        upgrade(engine)
        engine.dispose()
    yield from running_stack(sync_settings(settings, fake_google), fake_google)


def test_post_sync_picks_up_a_calendar_shared_while_notifications_were_lost(
    any_stack: SyncStack,
) -> None:
    """Seed 1822356739 (embedded): a calendar shared with a user while Google's
    notifications were dropped never reached calsync, and ``POST /sync`` did not help:
    the calendar list was read only at sign-in and on a calendarList notification."""
    stack = any_stack
    stack.connect()
    stack.services.jobs.connect_user.send(str(stack.user_id))
    wait_until(lambda: stack.events_channel() is not None, 30, "the channels")
    # Given another user shares a calendar while every notification is lost
    stack.control.add_fault(kind="drop_push", count=None)
    team = stack.control.create_user("bob@example.com", calendars=[{"summary": "team"}])
    shared = team["calendars"][1]["id"]
    stack.control.share(shared, stack.email, "reader")
    token = issue_token(
        stack.services.jwt, subject=str(stack.user_id), email=stack.email, role="user"
    )
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token}"}) as client:
        # When the user asks for a sync
        assert client.post("/sync").status_code == 202

        # Then the shared calendar is listed
        def listed() -> bool:
            calendars = client.get("/calendars").json()["calendars"]
            return shared in {c["google_calendar_id"] for c in calendars}

        wait_until(listed, 30, "the shared calendar to be listed")
