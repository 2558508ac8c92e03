"""Defects the real-world calendar corpus (test_ics_corpus.py) found, each pinned alone."""

from __future__ import annotations

import pytest

from tests.integration.events.conftest import EventsApp

pytestmark = pytest.mark.integration


def test_debug(any_app: EventsApp) -> None:
    app = any_app
    bob = app.connect("bob@example.com")
    cal = app.control.add_calendar("bob@example.com", "x", time_zone="UTC")["id"]
    app.control.share(cal, "ann@example.com", "reader")
    ann = app.connect("ann@example.com")
    bob = app.connect("bob@example.com")
    google = app.remote(bob)
    made = google.import_(calendarId=cal, body={
        "iCalUID": "111", "summary": "test123",
        "start": {"date": "2024-04-01"}, "end": {"date": "2024-04-08"},
        "recurrence": ["RRULE:FREQ=WEEKLY;INTERVAL=3;BYDAY=MO"]}).execute()
    inst = f"{made['id']}_20240826"
    google.patch(calendarId=cal, eventId=inst, body={"summary": "test123", "start": {"date": "2024-08-26"}, "end": {"date": "2024-09-02"}}).execute()
    google.patch(calendarId=cal, eventId=inst, body={"summary": "test123", "start": {"date": "2024-08-26"}, "end": {"date": "2024-09-02"}}).execute()
    for user in (ann, bob):
        app.pull(user, app.calendar_id(user, cal))
    for user in (ann, bob):
        r = app.client.get("/events", params={"start_date": "2024-03-31T00:00:00+00:00", "end_date": "2025-05-05T00:00:00+00:00", "expand": "true", "calendar_id": str(app.calendar_id(user, cal))}, headers=user.headers)
        print([(e["title"], e["start_time"], e["end_time"], e["id"]) for e in r.json()["events"]][6:9])
        r = app.client.get("/events", params={"start_date": "2024-03-31T00:00:00+00:00", "end_date": "2025-05-05T00:00:00+00:00"}, headers=user.headers)
        print([(e["title"], e["start_time"], e["end_time"], e["id"], e["original_start_time"]) for e in r.json()["events"]])
    assert 0
