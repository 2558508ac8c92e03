"""The calendar time-zone cache is shared through the store: a worker process that never
saw a calendar writes to it without asking Google for its zone (``calendars.get``), on
both databases and for several users (decisions Q5)."""

from __future__ import annotations

import uuid

import pytest

from calsync.bootstrap import bootstrap
from calsync.sync.write_back import PushStatus, push_outbox
from tests.integration.events.conftest import EventsApp
from tests.integration.events.test_crud import MEETING

pytestmark = pytest.mark.integration


def calendars_get(app: EventsApp) -> list[str]:
    """The paths of the ``calendars.get`` calls Google received."""
    return [
        r["path"]
        for r in app.control.requests()
        if r.get("method") == "GET"
        and "/calendar/v3/calendars/" in r["path"]
        and not r["path"].rstrip("/").endswith(("/events", "/acl"))
        and "/events/" not in r["path"]
    ]


def test_another_worker_process_reads_the_zone_from_the_store(app: EventsApp) -> None:
    # Given two users whose calendar lists this process read (zones stored with them)
    users = [
        app.connect("ann@example.com", calendars=[{"summary": "Work", "timeZone": "Asia/Tokyo"}]),
        app.connect("ben@example.com"),
    ]
    work = next(c for c in users[0].google["calendars"] if c["summary"] == "Work")["id"]
    created = [
        app.create(users[0], MEETING),
        app.create(users[0], {**MEETING, "calendar_id": str(app.calendar_id(users[0], work))}),
        app.create(users[1], MEETING),
    ]
    app.control.clear_requests()
    # When a second worker process, whose own cache is empty, pushes them to Google
    other = bootstrap(app.services.settings, clock=app.clock)
    try:
        results = [push_outbox(other, other.providers, uuid.UUID(event["id"])) for event in created]
    finally:
        other.close()
    # Then every event reached Google, and Google was never asked for a calendar's zone
    assert [r.status for r in results] == [PushStatus.SYNCED] * 3
    assert calendars_get(app) == []
    # And the all-day-free, zoned events landed at the right instant on each calendar
    for user, event in zip((users[0], users[0], users[1]), created, strict=True):
        google = app.get(user, event["id"])
        assert google["sync_state"] == "synced"
