"""A pull whose lease another worker took over while it was listing stores nothing: not
the events, not the sync token, not the status; the lease stays the other worker's, and
a later pull that holds the lease stores the listing (against the emulator, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from calsync.config import Settings
from calsync.providers.base import CalendarProvider
from calsync.store.tables import Calendar, Event
from calsync.sync import pull
from calsync.sync.calendar_list import sync_calendar_list
from tests.conftest import FakeGoogle
from tests.integration.sync.conftest import SyncStack, running_stack, sync_settings
from tests.integration.sync.seed import timed

pytestmark = pytest.mark.integration


@pytest.fixture
def quiet_stack(production_settings: Settings, fake_google: FakeGoogle) -> Iterator[SyncStack]:
    """The stack without worker threads: only the test pulls."""
    yield from running_stack(
        sync_settings(production_settings, fake_google), fake_google, threads=0
    )


def stored_titles(stack: SyncStack) -> list[str]:
    with stack.services.sessions() as session:
        return sorted(t or "" for t in session.scalars(sa.select(Event.title)))


def set_lease_owner(stack: SyncStack, calendar_id: object, owner: str | None) -> None:
    """Give the calendar's lease to `owner` for five minutes, or free it (None)."""
    until = sa.func.now() + sa.text("interval '5 minutes'") if owner is not None else None
    with stack.services.sessions.begin() as session:
        session.execute(
            sa.update(Calendar)
            .where(Calendar.id == calendar_id)
            .values(sync_lease_owner=owner, sync_lease_until=until)
        )


def test_a_pull_that_lost_its_lease_while_listing_writes_nothing(
    quiet_stack: SyncStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a connected user with one event on Google, never pulled
    stack = quiet_stack
    stack.connect()
    sync_calendar_list(stack.services, stack.user_id)
    calendar = stack.calendar_row(stack.email)
    stack.google_as().events().insert(calendarId=stack.email, body=timed(1)).execute()
    listing = pull._list_everything_changed

    def listed_then_taken_over(
        provider: CalendarProvider, target: pull._Target
    ) -> tuple[list[object], str | None, bool]:
        answer = listing(provider, target)
        set_lease_owner(stack, target.ref.id, "another-worker:1")
        return answer  # type: ignore[return-value]

    # When another worker takes the lease over while the pull lists
    monkeypatch.setattr(pull, "_list_everything_changed", listed_then_taken_over)
    outcome = pull.pull_calendar(stack.services, calendar.id)

    # Then the pull stores nothing and leaves the lease to the other worker
    assert outcome.status == "busy"
    assert stored_titles(stack) == []
    after = stack.calendar_row(stack.email)
    assert (after.sync_token, after.last_synced_at, after.sync_lease_owner) == (
        None,
        None,
        "another-worker:1",
    )

    # And once the lease is free again, a pull stores the listing and gives the lease back
    monkeypatch.undo()
    set_lease_owner(stack, calendar.id, None)
    assert pull.pull_calendar(stack.services, calendar.id).status == "ok"
    assert stored_titles(stack) == ["Meeting 1"]
    done = stack.calendar_row(stack.email)
    assert done.sync_token is not None
    assert (done.last_sync_status, done.sync_lease_owner, done.sync_lease_until) == (
        "ok",
        None,
        None,
    )
