"""Bugs the fault suite found, each pinned by a deterministic reproduction.

1. A pull that merged a remote copy with unpushed local edits *while a push of the same
   event was on its way to Google* left the event ``pending`` for ever: the merge saw
   the push's outbox rows and queued nothing of its own, then the push closed those rows
   (its write was of the older version), found nothing pending and stopped. Found by
   killing a worker mid-insert (tests/faults/test_worker_kill.py); fixed in
   ``calsync.sync.reconcile`` (a merge that needs a push always queues its own row).
2. A pull and a push deadlocked in PostgreSQL (one of them failed and was retried): the
   pull locked its calendar row ``FOR UPDATE`` and then wrote events; the push's second
   write of an event in one transaction runs the foreign-key check, ``FOR KEY SHARE`` on
   the same calendar row, which ``FOR UPDATE`` blocks. Found under the PostgreSQL outage
   scenario's traffic; fixed in ``calsync.store.pull_leases`` (``FOR NO KEY UPDATE``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.config import Settings
from calsync.providers.base import CalendarProvider, ProviderSource
from calsync.store import outbox, pull_leases
from calsync.store.tables import Event as EventRow
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, running

pytestmark = [pytest.mark.faults, pytest.mark.integration]


class _Hooked:
    """A provider that runs `before_patch` once, just before its first patch."""

    def __init__(self, inner: CalendarProvider, before_patch: list[Callable[[], None]]):
        self._inner = inner
        self._before_patch = before_patch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def patch_event(self, *args: Any, **kwargs: Any) -> Any:
        while self._before_patch:
            self._before_patch.pop()()
        return self._inner.patch_event(*args, **kwargs)


class HookedProviders:
    def __init__(self, inner: ProviderSource) -> None:
        self.inner = inner
        self.before_patch: list[Callable[[], None]] = []

    def for_user(self, user_id: uuid.UUID) -> Any:
        return _Hooked(self.inner.for_user(user_id), self.before_patch)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def app(production_settings: Settings, fake_google: FakeGoogle) -> Iterator[EventsApp]:
    yield from running(production_settings, fake_google)


def test_a_merge_during_a_push_of_the_same_event_is_pushed_too(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    hooked = HookedProviders(app.services.providers)
    app.services.providers = hooked
    # Given an event whose insert reached Google but whose answer was lost (Google holds
    # it under calsync's id)
    created = app.create(
        alice,
        {"title": "t", "start_time": "2031-03-04T10:00:00Z", "end_time": "2031-03-04T11:00:00Z"},
    )
    app.remote(alice).insert(
        calendarId=alice.primary,
        body={
            "id": created["google_event_id"],
            "summary": "t",
            "start": {"dateTime": "2031-03-04T10:00:00Z"},
            "end": {"dateTime": "2031-03-04T11:00:00Z"},
        },
    ).execute()
    # And a local edit that Google's copy does not have yet
    edited = app.put(alice, created["id"], {"description": "local edit"})
    assert edited.status_code == 200
    # When the retried push (409, read back, patch) runs while a pull merges Google's
    # older copy with the unpushed edit - the pull lands between the read and the patch
    hooked.before_patch.append(lambda: app.pull(alice))
    app.clock.advance(hours=2)
    app.push_all()
    # Then the merged version was pushed as well: synced, nothing left behind
    assert not hooked.before_patch, "the pull ran during the push"
    shown = app.get(alice, created["id"])
    assert shown["sync_state"] == "synced", shown
    with app.services.sessions() as session:
        assert outbox.pending_writes(session, uuid.UUID(created["id"])) is None
    remote = app.google_event(alice, created["google_event_id"])
    assert remote["description"] == "local edit"


def test_a_pull_holding_its_calendar_does_not_block_event_writes(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    created = app.create(
        alice,
        {"title": "t", "start_time": "2031-03-04T10:00:00Z", "end_time": "2031-03-04T11:00:00Z"},
    )
    assert alice.calendar_id is not None
    engine = app.services.engine
    # Given a pull that holds its calendar's row lock (the lease check)
    with engine.connect() as pull, engine.connect() as push, pull.begin():
        held = pull_leases.still_held(Session(bind=pull), alice.calendar_id, owner="nobody")
        assert held is False
        # When a push writes the calendar's event twice in one transaction (as
        # record_pushed does: its second UPDATE runs the foreign-key check)
        with push.begin():
            push.execute(sa.text("SET LOCAL lock_timeout = '3s'"))
            for state in ("pending", "synced"):
                push.execute(
                    sa.update(EventRow)
                    .where(EventRow.id == uuid.UUID(created["id"]))
                    .values(sync_state=state)
                )
    # Then it went through without waiting for the pull (no lock timeout raised)
