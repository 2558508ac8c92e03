"""The mass-deletion guard, on both databases, with Google's listings thinned out by the
emulator (`drop_items`): a full listing that would delete most of a calendar is held
until a second listing agrees, and a disagreeing one releases the hold."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from calsync.scheduler import due_audits
from calsync.store.tables import Event as EventRow
from tests.integration.events.conftest import EventsApp
from tests.integration.sync.guarded import (
    audit,
    calendar_json,
    calendar_uuid,
    counter,
    forget_sync_token,
    google_rows,
    hide_events,
    local_rows,
    logs,
    pull,
    seeded,
)

pytestmark = pytest.mark.integration

HOLDS = "calsync_deletion_holds_total"


def recheck_delay(app: EventsApp) -> timedelta:
    return timedelta(seconds=app.services.settings.deletion_recheck_seconds)


def test_a_410_then_a_nearly_empty_listing_holds_the_deletions_until_a_second_agrees(
    app: EventsApp,
) -> None:
    alice = seeded(app, "alice@example.com", 30)
    bob = seeded(app, "bob@example.com", 30)
    held, applied = counter(HOLDS, outcome="held"), counter(HOLDS, outcome="applied")
    # Given Google forgets Alice's sync token and from now on lists 2 of her 30 events
    forget_sync_token(app, alice)
    hide_events(app, alice, keep=2)

    # When her calendar is pulled (410, then a full listing)
    pull(app, alice)

    # Then nothing is deleted, and the calendar, its log and the metric say why
    assert len(local_rows(app, alice)) == 30
    assert calendar_json(app, alice)["sync"]["status"] == "held"
    entry = logs(app, alice, kind="full_sync")[0]
    assert entry["status"] == "held"
    assert entry["details"] | {"held": 28, "hold": "held", "deleted": 0} == entry["details"]
    assert counter(HOLDS, outcome="held") == held + 1
    # And Bob's calendar is untouched
    assert calendar_json(app, bob)["sync"]["status"] == "ok"
    assert len(local_rows(app, bob)) == 30

    # When an incremental pull runs meanwhile, the calendar stays held
    pull(app, alice)
    assert calendar_json(app, alice)["sync"]["status"] == "held"
    # And a full listing before the recheck delay decides nothing
    app.clock.advance(minutes=1)
    assert calendar_uuid(alice) not in due_audits(app.services, app.clock())
    audit(app, alice)
    assert len(local_rows(app, alice)) == 30
    assert calendar_json(app, alice)["sync"]["status"] == "held"

    # When the recheck is due, the scheduler claims Alice's audit; Google still lists 2
    app.clock.advance(seconds=recheck_delay(app).total_seconds())
    assert calendar_uuid(alice) in due_audits(app.services, app.clock())
    audit(app, alice)

    # Then the second listing agreed: the 28 held events are deleted, the hold is gone
    # (Google's listing, still thinned for Alice, shows the two that stay)
    assert local_rows(app, alice) == google_rows(app, alice)
    assert len(local_rows(app, alice)) == 2
    assert calendar_json(app, alice)["sync"]["status"] == "ok"
    audited = logs(app, alice, kind="audit")[0]
    assert audited["status"] == "ok"
    assert audited["details"] | {"hold": "applied", "deleted": 28, "held": 0} == audited["details"]
    assert counter(HOLDS, outcome="applied") == applied + 1
    # And Bob still has all of his
    assert len(local_rows(app, bob)) == 30
    assert calendar_json(app, bob)["sync"]["status"] == "ok"


def test_a_second_listing_that_lists_the_events_again_releases_the_hold(app: EventsApp) -> None:
    alice = seeded(app, "alice@example.com", 30)
    bob = seeded(app, "bob@example.com", 25)
    released = counter(HOLDS, outcome="released")
    # Given one listing of Alice's calendar after a 410 comes back empty (a glitch)
    forget_sync_token(app, alice)
    hide_events(app, alice, keep=0, count=1)
    pull(app, alice)
    assert calendar_json(app, alice)["sync"]["status"] == "held"

    # When Google is listed again after the delay, with every event there
    app.clock.advance(seconds=recheck_delay(app).total_seconds() + 1)
    audit(app, alice)

    # Then the hold is released and nothing was deleted
    assert local_rows(app, alice) == google_rows(app, alice)
    assert len(local_rows(app, alice)) == 30
    assert calendar_json(app, alice)["sync"]["status"] == "ok"
    audited = logs(app, alice, kind="audit")[0]
    assert audited["details"] | {"hold": "released", "deleted": 0, "held": 0} == audited["details"]
    assert counter(HOLDS, outcome="released") == released + 1
    # And Bob's calendar was never part of it
    assert len(local_rows(app, bob)) == 25
    assert logs(app, bob, kind="audit") == []


@pytest.mark.parametrize(
    ("events", "listed"),
    [(15, 0), (50, 28)],
    ids=["20 or fewer deletions", "half or less of the calendar"],
)
def test_a_full_listing_deletes_at_once_below_the_guards_threshold(
    app: EventsApp, events: int, listed: int
) -> None:
    alice = seeded(app, "alice@example.com", events)
    # Given a 410 and a full listing that lacks some events (no tombstones for them)
    forget_sync_token(app, alice)
    hide_events(app, alice, keep=listed, count=1)

    # When the calendar is pulled
    pull(app, alice)

    # Then the unlisted rows are deleted at once: nothing is held
    assert len(local_rows(app, alice)) == listed
    assert calendar_json(app, alice)["sync"]["status"] == "ok"
    entry = logs(app, alice, kind="full_sync")[0]
    assert entry["status"] == "ok"
    assert entry["details"]["deleted"] == events - listed
    assert "held" not in entry["details"]


def test_a_full_listing_leaves_rows_with_unpushed_local_changes_to_the_push(
    app: EventsApp,
) -> None:
    alice = seeded(app, "alice@example.com", 5)
    edited_google_id = sorted(local_rows(app, alice))[0]
    with app.services.sessions() as session:
        event_id = session.scalar(
            sa.select(EventRow.id).where(EventRow.google_event_id == edited_google_id)
        )
    # Given Alice edited an event through the API and the edit is not pushed yet
    answer = app.put(alice, str(event_id), {"title": "edited in calsync"})
    assert answer.status_code == 200, answer.text
    # When a 410 is followed by a full listing that lacks every event
    forget_sync_token(app, alice)
    hide_events(app, alice, keep=0, count=1)
    pull(app, alice)

    # Then the four synced rows are gone and the edited one waits for its push
    rows = local_rows(app, alice)
    assert list(rows) == [edited_google_id]
    assert app.get(alice, str(event_id))["sync_state"] == "pending"
    # And the push finds the event on Google and writes the edit
    app.push_all()
    assert app.google_event(alice, edited_google_id)["summary"] == "edited in calsync"
    assert app.get(alice, str(event_id))["sync_state"] == "synced"
