"""A change made while a user connects is synced, however quick the first pull is.

Connecting lists the calendars, opens their push channels and queues their first pulls.
CI once lost a third user's first event on SQLite: the worker ran the queued first pull
before the channel was open, the event was added in between, and with no channel to
push it, nothing pulled again until the safety-net sweep. The channels now open first.

Both databases, two users; the jobs' use cases run by hand (no worker threads) so the
test puts the quick worker exactly where it hurt.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.bootstrap import Services
from calsync.store.tables import Calendar
from calsync.sync import connect
from calsync.sync.pull import pull_calendar
from tests.integration.sync.conftest import SyncStack

pytestmark = pytest.mark.integration

ANN, BEN = "ann@example.com", "ben@example.com"


def run_queued_pulls(stack: SyncStack) -> int:
    """Run every queued pull, as a worker would (several rounds while pulls queue more)."""
    ran = 0
    for _ in range(5):
        with stack.services.sessions() as session:
            queued = session.scalars(
                sa.select(Calendar.id).where(Calendar.sync_queued_at.is_not(None))
            ).all()
        if not queued:
            return ran
        for calendar_id in queued:
            assert pull_calendar(stack.services, calendar_id).status == "ok"
            ran += 1
    raise AssertionError("pulls kept queueing more pulls")


def add_meeting(stack: SyncStack, email: str, title: str) -> None:
    stack.google_as(email).events().insert(
        calendarId="primary",
        body={
            "summary": title,
            "start": {"dateTime": "2026-06-01T09:00:00Z"},
            "end": {"dateTime": "2026-06-01T10:00:00Z"},
        },
    ).execute()


def local_titles(stack: SyncStack, user_id: uuid.UUID, email: str) -> set[str]:
    with stack.services.sessions() as session:
        google_id = session.scalar(
            sa.select(Calendar.provider_calendar_id).where(
                Calendar.user_id == user_id, Calendar.provider_calendar_id == email
            )
        )
    assert google_id is not None
    return {event.title for event in stack.local_events(google_id).values()}


def test_an_event_added_between_a_quick_first_pull_and_the_channel_is_synced(
    hand_stack: SyncStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = hand_stack
    # Given Ann is connected and synced, and Ben signs in after her
    stack.connect_pulled(ANN)
    ann = stack.user_id
    stack.connect(BEN)
    ben = stack.user_id
    opening = connect.ensure_channels
    pulled_before_channel: list[int] = []

    def open_slowly(services: Services, user_id: uuid.UUID) -> Any:
        # A worker quicker than the channel: what is queued so far is pulled now; then
        # Ben adds an event with another client before his channel is live.
        pulled_before_channel.append(run_queued_pulls(stack))
        add_meeting(stack, BEN, "added while connecting")
        return opening(services, user_id)

    monkeypatch.setattr(connect, "ensure_channels", open_slowly)
    # When Ben's connection runs, and then every pull it queued
    assert connect.connect_user(stack.services, ben)
    run_queued_pulls(stack)
    # Then his event is in calsync, and no pull had run before his channel opened
    assert local_titles(stack, ben, BEN) == {"added while connecting"}
    assert pulled_before_channel == [0]
    # And Ann's calendar is untouched by Ben's connection
    assert local_titles(stack, ann, ANN) == set()
