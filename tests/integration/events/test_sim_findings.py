"""Bugs the multi-tenant simulation (tests/sim, docs/faults.md) found, reproduced
deterministically: each test names the seed that showed it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.events.conftest import EventsApp

pytestmark = pytest.mark.integration


def test_taking_the_push_lease_does_not_make_a_local_edit_look_newer(any_app: EventsApp) -> None:
    """Seed 632973422 (embedded): a description written on Google after the user's own
    edit was overwritten by the older local one. The push lease is taken with an UPDATE
    of the event row, which also moved ``updated_at`` - the time `last_updated_wins`
    reads as "last edited locally" - to the moment of the push."""
    app = any_app
    app.clock.now = datetime.now(UTC) - timedelta(seconds=30)  # the emulator's time, 30 s ago
    alice = app.connect("alice@example.com")
    created = app.create(alice, {"title": "plan", "start_time": "2031-03-11T17:00:00Z",
                                 "end_time": "2031-03-11T17:45:00Z"})  # fmt: skip
    app.push_all()
    # Given the user edits the description (30 s ago) and then another client on Google
    answer = app.put(alice, created["id"], {"description": "the user's, older"})
    assert answer.status_code == 200, answer.text
    app.remote(alice).patch(
        calendarId=alice.primary,
        eventId=created["google_event_id"],
        body={"description": "Google's, newer"},
    ).execute()
    # When the user's edit is pushed (412, merged under last_updated_wins)
    app.push_all()
    # Then the later write wins on both sides
    on_google = app.google_event(alice, created["google_event_id"])
    assert on_google["description"] == "Google's, newer"
    assert app.get(alice, created["id"])["description"] == "Google's, newer"
