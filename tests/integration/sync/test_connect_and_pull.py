"""Connecting a user pulls every calendar; changes on Google arrive through real pushes.

Given/When/Then against the emulator with PostgreSQL and Redis; the local store is
compared event by event with what the Google client library reads from the emulator.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.store.tables import Calendar, WatchChannel
from tests.integration.sync.conftest import SyncStack, wait_until
from tests.integration.sync.seed import instance_id, mixed, timed

pytestmark = pytest.mark.integration


def connect_three_calendars(stack: SyncStack) -> dict[str, str]:
    stack.control.create_user("boss@example.com")
    granted = stack.connect(
        calendars=[
            {"summary": "Team (read only)", "access_role": "reader", "owner": "boss@example.com"},
            {"summary": "Big"},
        ]
    )
    ids = {c["summary"]: c["id"] for c in granted["calendars"]}
    return {"primary": stack.email, "team": ids["Team (read only)"], "big": ids["Big"]}


def seed_big_calendar(stack: SyncStack, calendar_id: str) -> list[dict[str, Any]]:
    created = stack.insert_many(calendar_id, mixed(2000))
    google = stack.google_as()
    series = [e for e in created if e.get("recurrence")][:20]
    for body in series[:10]:  # move one instance of each of ten series by two hours
        instance = instance_id(body, 2)
        original = google.events().get(calendarId=calendar_id, eventId=instance).execute()
        google.events().patch(
            calendarId=calendar_id,
            eventId=instance,
            body={
                "summary": "moved",
                "start": _later(original["start"]),
                "end": _later(original["end"]),
            },
        ).execute()
    for body in series[10:]:  # cancel one instance of ten others
        google.events().delete(calendarId=calendar_id, eventId=instance_id(body, 3)).execute()
    return created


def _later(value: dict[str, Any]) -> dict[str, Any]:
    moved = datetime.fromisoformat(value["dateTime"]) + timedelta(hours=2)
    return {"dateTime": moved.isoformat(), "timeZone": value.get("timeZone", "UTC")}


def test_connecting_pulls_every_calendar_and_opens_channels(stack: SyncStack) -> None:
    # Given a user with a primary, a read-only shared and a big calendar on Google
    calendars = connect_three_calendars(stack)
    stack.insert_many(calendars["team"], [timed(i) for i in range(5)], email="boss@example.com")
    stack.insert_many(calendars["primary"], [timed(i) for i in range(3)])
    seed_big_calendar(stack, calendars["big"])

    # When calsync connects the user (what the OAuth callback queues)
    stack.services.jobs.connect_user.send(str(stack.user_id))

    # Then each calendar's local store equals Google's content
    for google_id in calendars.values():
        remote = stack.wait_in_sync(google_id, timeout=60)
        assert remote, google_id
    big = stack.remote_events(calendars["big"])
    assert len(big) == 2000 + 20  # plus the ten moved and ten cancelled exceptions
    # And access roles are stored; every calendar and the calendar list have a channel
    with stack.services.sessions() as session:
        roles = dict(
            session.execute(sa.select(Calendar.provider_calendar_id, Calendar.access_role)).all()
        )
        kinds = sorted(session.scalars(sa.select(WatchChannel.kind)))
    assert roles[calendars["team"]] == "reader"
    assert roles[calendars["primary"]] == "owner"
    assert kinds == ["calendar_list", "events", "events", "events"]
    assert len(stack.control.channels()) == 4


def test_changes_by_another_client_arrive_through_push(stack: SyncStack) -> None:
    # Given a connected user whose calendar holds a single event and a series
    stack.connect()
    calendar = stack.email
    single, series = stack.insert_many(
        calendar, [timed(1), {**timed(2), "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=10"]}]
    )
    stack.services.jobs.connect_user.send(str(stack.user_id))
    stack.wait_in_sync(calendar)
    google = stack.google_as()

    # When another client inserts, edits, moves an instance, cancels an instance
    inserted = stack.insert_many(calendar, [timed(3)])[0]
    google.events().patch(
        calendarId=calendar, eventId=single["id"], body={"summary": "renamed"}
    ).execute()
    moved_id = instance_id(series, 1)
    original = google.events().get(calendarId=calendar, eventId=moved_id).execute()
    google.events().patch(
        calendarId=calendar,
        eventId=moved_id,
        body={"start": _later(original["start"]), "end": _later(original["end"])},
    ).execute()
    google.events().delete(calendarId=calendar, eventId=instance_id(series, 2)).execute()

    # Then the pushes bring every change into the local store
    remote = stack.wait_in_sync(calendar)
    assert remote[single["id"]].title == "renamed"
    assert inserted["id"] in remote
    assert moved_id in stack.local_events(calendar)

    # When the series is deleted and a calendar is added
    google.events().delete(calendarId=calendar, eventId=series["id"]).execute()
    added = stack.control.add_calendar(stack.email, "Added later")
    stack.insert_many(added["id"], [timed(9)])

    # Then the series and its exceptions are gone locally, and the new calendar is pulled
    wait_until(lambda: series["id"] not in stack.local_events(calendar), what="series deleted")
    assert not [k for k in stack.local_events(calendar) if k.startswith(series["id"])]
    stack.wait_in_sync(added["id"])
    # And every push reached calsync and was answered 2xx
    deliveries = stack.control.deliveries()
    assert deliveries
    assert {d["outcome"] for d in deliveries} == {"delivered"}
    assert {d["status"] for d in deliveries} <= {200, 202}
