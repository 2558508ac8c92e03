"""The reconcile's decision table: what one listed version does to its local row."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest

from calsync.domain.models import Event, EventStatus, EventTime
from calsync.sync.reconcile_plan import (
    Action,
    Step,
    Stored,
    action_for,
    live_ids,
    plan,
    unlisted,
)

REMOTE = Event(
    title="Planning",
    start=EventTime.at(datetime(2024, 5, 6, 9), "Europe/Berlin"),
    end=EventTime.at(datetime(2024, 5, 6, 10), "Europe/Berlin"),
    provider_event_id="g1",
    etag='"2"',
)
CANCELLED = dataclasses.replace(REMOTE, status=EventStatus.CANCELLED)
INSTANCE = dataclasses.replace(
    REMOTE,
    provider_event_id="g1_20240506T070000Z",
    recurring_event_id="g1",
    original_start=EventTime.at(datetime(2024, 5, 6, 7, tzinfo=UTC), "UTC"),
)
CANCELLED_INSTANCE = dataclasses.replace(INSTANCE, status=EventStatus.CANCELLED)


def row(
    etag: str | None = '"1"',
    sync_state: str = "synced",
    *,
    deleted: bool = False,
    google_id: str | None = "g1",
    has_base: bool = True,
) -> Stored:
    return Stored(
        id=uuid.uuid4(),
        google_id=google_id,
        etag=etag,
        sync_state=sync_state,
        deleted=deleted,
        has_base=has_base,
    )


@pytest.mark.parametrize(
    ("stored", "remote", "drifted", "action"),
    [
        # the same version: nothing, whatever the row's state (the echo of a push)
        (row('"2"'), REMOTE, False, Action.UNCHANGED),
        (row('"2"', "pending"), REMOTE, False, Action.UNCHANGED),
        (row('"2"', deleted=True), REMOTE, False, Action.UNCHANGED),
        (row('"2"'), CANCELLED, False, Action.UNCHANGED),
        # ... unless the row drifted from it (a verifying listing): overwritten
        (row('"2"'), REMOTE, True, Action.OVERWRITE),
        # new on Google
        (None, REMOTE, False, Action.INSERT),
        (None, INSTANCE, False, Action.INSERT),
        (None, CANCELLED_INSTANCE, False, Action.INSERT),  # stored: it removes an instance
        # a tombstone of an event calsync does not hold
        (None, CANCELLED, False, Action.UNCHANGED),
        # changed on Google, no local edits: Google's version replaces the row
        (row(), REMOTE, False, Action.OVERWRITE),
        (row(None), REMOTE, False, Action.OVERWRITE),
        (row(), CANCELLED_INSTANCE, False, Action.OVERWRITE),
        # changed on both sides: merged
        (row(sync_state="pending"), REMOTE, False, Action.MERGE),
        (row(sync_state="error"), REMOTE, False, Action.MERGE),
        (row(sync_state="conflict"), REMOTE, False, Action.MERGE),
        (row(None, "pending"), REMOTE, False, Action.MERGE),  # an insert whose answer was lost
        (row(sync_state="pending"), CANCELLED_INSTANCE, False, Action.MERGE),
        # a cancelled master or single event deletes the row, whatever its local edits
        (row(), CANCELLED, False, Action.DELETE),
        (row(sync_state="pending"), CANCELLED, False, Action.DELETE),
        (row(sync_state="conflict"), CANCELLED, False, Action.DELETE),
        # deleted here, not pushed yet: the push decides
        (row(deleted=True), REMOTE, False, Action.LEFT_TO_PUSH),
        (row(deleted=True, sync_state="pending"), REMOTE, False, Action.LEFT_TO_PUSH),
        (row(deleted=True), CANCELLED, False, Action.LEFT_TO_PUSH),
        (row(deleted=True), CANCELLED_INSTANCE, False, Action.LEFT_TO_PUSH),
    ],
)
def test_action_for_each_stored_row_and_listed_version(
    stored: Stored | None, remote: Event, drifted: bool, action: Action
) -> None:
    assert action_for(stored, remote, drifted=drifted) is action


def test_the_plan_keeps_listing_order_and_counts_what_changes_nothing() -> None:
    listed = {
        "new": dataclasses.replace(REMOTE, provider_event_id="new"),
        "same": dataclasses.replace(REMOTE, provider_event_id="same"),
        "edited": dataclasses.replace(REMOTE, provider_event_id="edited"),
        "gone": dataclasses.replace(CANCELLED, provider_event_id="gone"),
        "drift": dataclasses.replace(REMOTE, provider_event_id="drift"),
        "mine": dataclasses.replace(REMOTE, provider_event_id="mine"),
    }
    stored = {
        "same": row('"2"', google_id="same"),
        "edited": row(sync_state="pending", google_id="edited"),
        "gone": row(google_id="gone"),
        "drift": row('"2"', google_id="drift"),
        "mine": row(deleted=True, google_id="mine"),
    }
    result = plan(stored, listed, frozenset({"drift"}))
    assert result.steps == (
        Step(Action.INSERT, "new", listed["new"]),
        Step(Action.MERGE, "edited", listed["edited"]),
        Step(Action.DELETE, "gone", listed["gone"]),
        Step(Action.OVERWRITE, "drift", listed["drift"], drifted=True),
    )
    assert result.unchanged == 2  # "same" and "mine"
    assert [s.google_id for s in result.of(Action.INSERT, Action.DELETE)] == ["new", "gone"]


def test_an_empty_listing_plans_nothing() -> None:
    result = plan({"g1": row()}, {})
    assert result.steps == ()
    assert result.unchanged == 0


@pytest.mark.parametrize(
    ("stored", "offered"),
    [
        (row(google_id="away"), True),  # was on Google, no local change: offered
        (row(google_id="away", has_base=False), False),  # never on Google
        (row(google_id=None), False),  # not on Google yet
        (row(google_id="away", sync_state="pending"), False),  # the push settles it
        (row(google_id="away", sync_state="error"), False),
        (row(google_id="away", sync_state="conflict"), False),
        (row(google_id="away", deleted=True), False),  # deleted here: the push's
        (row(google_id="g1"), False),  # listed
        (row(google_id="unreadable"), False),  # listed, but calsync could not read it
    ],
)
def test_which_unlisted_rows_a_full_listing_may_delete(stored: Stored, offered: bool) -> None:
    found = unlisted([stored], {"g1": REMOTE}, frozenset({"unreadable"}))
    assert found == ({stored.google_id: stored.id} if offered else {})


def test_the_guard_counts_as_live_everything_but_tombstones_of_whole_events() -> None:
    listed = {
        "a": REMOTE,
        "b": CANCELLED,
        "c": CANCELLED_INSTANCE,
        "d": INSTANCE,
    }
    assert live_ids(listed) == ["a", "c", "d"]
