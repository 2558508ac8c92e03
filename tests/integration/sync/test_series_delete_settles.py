"""Deleting a series through the API settles its changed instances too.

Found by the 500-user simulation (seed 1614620845): a series whose instances another
client had changed on Google was deleted through the API; the series' delete reached
Google, but its changed instances, marked deleted and ``pending`` with it, stayed
``pending`` for good (no write of their own was ever queued). Both databases, two users;
the jobs' use cases run by hand.
"""

from __future__ import annotations

import uuid

import httpx2 as httpx
import pytest
import sqlalchemy as sa

from calsync.store.tables import Event as EventRow
from calsync.store.tables import OutboxEntry
from calsync.sync.pull import pull_calendar
from calsync.sync.write_back import push_outbox
from tests.integration.sync.conftest import SyncStack

pytestmark = pytest.mark.integration

ANN, BEN = "ann@example.com", "ben@example.com"


def series_with_changed_instances(stack: SyncStack, email: str) -> str:
    """A weekly series made on Google by another client, one instance moved and one
    cancelled there; its Google id."""
    google = stack.google_as(email)
    series = (
        google.events()
        .insert(
            calendarId="primary",
            body={
                "summary": "standup",
                "start": {"dateTime": "2026-06-01T09:00:00Z", "timeZone": "UTC"},
                "end": {"dateTime": "2026-06-01T09:30:00Z", "timeZone": "UTC"},
                "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
            },
        )
        .execute()
    )
    instances = google.events().instances(calendarId="primary", eventId=series["id"]).execute()
    moved, cancelled = instances["items"][1], instances["items"][2]
    google.events().patch(
        calendarId="primary",
        eventId=moved["id"],
        body={
            "start": {"dateTime": "2026-06-08T11:00:00Z"},
            "end": {"dateTime": "2026-06-08T11:30:00Z"},
        },
    ).execute()
    google.events().delete(calendarId="primary", eventId=cancelled["id"]).execute()
    return str(series["id"])


def states(stack: SyncStack, calendar_id: uuid.UUID) -> dict[str, str]:
    with stack.services.sessions() as session:
        rows = session.execute(
            sa.select(EventRow.google_event_id, EventRow.sync_state).where(
                EventRow.calendar_id == calendar_id
            )
        ).all()
    return {str(google_id): state for google_id, state in rows}


def test_a_deleted_series_leaves_no_instance_pending(hand_stack: SyncStack) -> None:
    stack = hand_stack
    # Given Ann and Ben, each with a series whose instances were changed on Google, pulled
    users = {email: stack.connect_pulled(email) for email in (ANN, BEN)}
    series = {email: series_with_changed_instances(stack, email) for email in (ANN, BEN)}
    calendars = {email: stack.calendar_id(users[email], email) for email in (ANN, BEN)}
    for calendar_id in calendars.values():
        assert pull_calendar(stack.services, calendar_id).status == "ok"
    assert len(states(stack, calendars[ANN])) == 3  # the series and its two exceptions
    # When Ann deletes her series through the API, and the queued writes are pushed
    answer = httpx.get(
        f"{stack.url}/events",
        headers=stack.headers(users[ANN]),
        params={"start_date": "2026-05-01", "end_date": "2026-07-01"},
    )
    assert answer.status_code == 200, answer.text
    (master,) = [e for e in answer.json()["events"] if e["recurrence"]]
    deleted = httpx.delete(f"{stack.url}/events/{master['id']}", headers=stack.headers(users[ANN]))
    assert deleted.status_code == 204, deleted.text
    with stack.services.sessions() as session:
        queued = session.scalars(
            sa.select(OutboxEntry.event_id).where(OutboxEntry.status == "pending").distinct()
        ).all()
    assert queued, "the delete queued nothing"
    for event_id in queued:
        push_outbox(stack.services, stack.services.providers, event_id)
    # Then the series is gone on Google, and none of Ann's rows is left pending
    gone = stack.google_as(ANN).events().get(calendarId="primary", eventId=series[ANN]).execute()
    assert gone["status"] == "cancelled"
    assert set(states(stack, calendars[ANN]).values()) == {"synced"}
    # And Ben's series, untouched, is still there and synced
    ben = stack.google_as(BEN).events().get(calendarId="primary", eventId=series[BEN]).execute()
    assert ben["status"] == "confirmed"
    assert set(states(stack, calendars[BEN]).values()) == {"synced"}
