"""The base derived from a row that is its own base (decision IA1) is the document a pull
stored before IA1 (`event_to_document` of Google's copy), field for field but
``calsync_id`` (IA2), on both databases: for generated events and for Google resources
as other clients write them (all-day, zones, series with exceptions, attendees,
reminders, a conference, extended properties, event types, hostile texts)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.codec import event_to_document
from calsync.domain.models import Event, EventStatus, EventTime
from calsync.providers.google.mapping import event_from_google
from calsync.store.bases import row_base
from calsync.store.event_bulk_writes import insert_events
from calsync.store.events import event_columns, insert_attendees, load_stored
from calsync.store.tables import Event as EventRow
from tests.integration.events.conftest import EventsApp, User
from tests.integration.sync.guarded import pull
from tests.owners import add_owner
from tests.strategies import TEXT, events

pytestmark = pytest.mark.integration


def _without_id(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "calsync_id"}


@st.composite
def pulled_events(draw: st.DrawFn) -> Event:
    """A generated event as a pull gets it: Google's id, etag, sequence, organizer and
    update time; sometimes an exception of a series (timed or whole-day original start),
    sometimes tagged by calsync."""
    event = draw(events())
    original: EventTime | None = None
    if draw(st.booleans()):
        original = event.start
    return dataclasses.replace(
        event,
        provider_event_id=f"g{uuid.uuid4().hex}",
        etag=f'"{draw(st.integers(1, 10**12))}"',
        sequence=draw(st.integers(0, 40)),
        organizer_email=draw(st.none() | st.just("owner@example.com")),
        updated=draw(
            st.none()
            | st.datetimes(
                min_value=datetime(2000, 1, 1),
                max_value=datetime(2035, 1, 1),
                timezones=st.just(UTC),
            )
        ),
        recurrence=() if original is not None else event.recurrence,
        recurring_event_id=f"s{uuid.uuid4().hex}" if original is not None else None,
        original_start=original,
        calsync_id=draw(st.none() | st.just(str(uuid.uuid4()))),
        description=draw(TEXT),
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(event=pulled_events())
def test_a_generated_events_row_gives_the_document_a_pull_stored(
    sessions: sessionmaker[Session], event: Event
) -> None:
    event_id = uuid.uuid4()
    with sessions.begin() as session:
        user_id, calendar_id = add_owner(session)
        # stored as the pull stores a listed event
        row = {
            **event_columns(event),
            "id": event_id,
            "calendar_id": calendar_id,
            "user_id": user_id,
            "sync_state": "synced",
            "base_version": row_base(),
            "version": 1,
        }
        insert_events(session, [row], columns=list(row))
        insert_attendees(session, [(event_id, event.attendees)])
    with sessions() as session:
        stored = load_stored(session, event_id)
        assert session.scalar(sa.select(EventRow.base_version).where(EventRow.id == event_id)) == {}
    assert stored is not None
    assert stored.base is not None
    assert stored.base_is_row
    assert _without_id(event_to_document(stored.base)) == _without_id(event_to_document(event))
    assert stored.base == dataclasses.replace(event, calsync_id=str(event_id))


HOSTILE = (
    "a\x00b \ufffe\uffff \u202ebidi\u202c e\u0301 \u05e9\u05dc\u05d5\u05dd \U0001f600\r\n"
    '\'; DROP TABLE events; -- "quoted" \\back\\slash <b>html</b> &amp; \t tab'
)


def _at(hour: int, zone: str = "Europe/Berlin", day: int = 2) -> dict[str, str]:
    return {"dateTime": f"2026-11-{day:02d}T{hour:02d}:00:00", "timeZone": zone}


BODIES: list[dict[str, Any]] = [
    {
        "summary": HOSTILE,
        "description": HOSTILE * 20,
        "location": HOSTILE,
        "start": _at(9),
        "end": _at(10),
    },
    {
        "summary": "All day, three days, free",
        "start": {"date": "2026-11-05"},
        "end": {"date": "2026-11-08"},
        "transparency": "transparent",
        "visibility": "private",
        "colorId": "4",
    },
    {
        "summary": "Offset only",
        "start": {"dateTime": "2026-11-03T09:00:00+05:45"},
        "end": {"dateTime": "2026-11-03T09:30:00-03:30"},
    },
    {
        "summary": "Zones apart",
        "start": _at(8, "America/New_York"),
        "end": _at(9, "Asia/Kathmandu", day=3),
        "status": "tentative",
    },
    {
        "summary": "Weekly with exdates",
        "start": _at(11, "Australia/Lord_Howe"),
        "end": _at(12, "Australia/Lord_Howe"),
        "recurrence": [
            "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20270301T000000Z",
            "EXDATE;TZID=Australia/Lord_Howe:20261111T110000",
        ],
    },
    {
        "summary": "Yearly all day",
        "start": {"date": "2026-11-09"},
        "end": {"date": "2026-11-10"},
        "recurrence": ["RRULE:FREQ=YEARLY"],
    },
    {
        "summary": "With people",
        "start": _at(14),
        "end": _at(15),
        "attendees": [
            {"email": "Zed@Example.org", "displayName": HOSTILE, "responseStatus": "accepted"},
            {"email": "amy@example.com", "optional": True, "responseStatus": "tentative"},
            {"email": "boss@example.com", "organizer": True, "responseStatus": "declined"},
            {"email": "amy@example.com", "displayName": "twice"},
        ],
        "reminders": {
            "useDefault": False,
            "overrides": [{"method": "email", "minutes": 1440}, {"method": "popup", "minutes": 10}],
        },
        "extendedProperties": {
            "private": {"calsync_category": "work", "calsync_meta_ticket": HOSTILE, "other": "x"},
            "shared": {"shared_key": "shared"},
        },
    },
    {
        "summary": "Call",
        "start": _at(16),
        "end": _at(17),
        "conferenceData": {
            "createRequest": {
                "requestId": "other-client-1",
                "conferenceSolutionKey": {"type": "hangoutsMeet"},
            }
        },
    },
    {
        "summary": "Away",
        "eventType": "outOfOffice",
        "outOfOfficeProperties": {"autoDeclineMode": "declineAllConflictingInvitations"},
        "start": _at(9, day=12),
        "end": _at(17, day=12),
    },
    {
        "summary": "Heads down",
        "eventType": "focusTime",
        "focusTimeProperties": {"chatStatus": "doNotDisturb"},
        "start": _at(9, day=13),
        "end": _at(11, day=13),
    },
]


def _seed(app: EventsApp, user: User) -> None:
    """The bodies, as another client of `user` writes them, and two exceptions of the
    weekly series: one moved and renamed, one cancelled."""
    remote = app.remote(user)
    made = {}
    for body in BODIES:
        created = remote.insert(calendarId=user.primary, body=body, conferenceDataVersion=1)
        made[body["summary"]] = created.execute()
    series = made["Weekly with exdates"]["id"]
    instances = remote.instances(calendarId=user.primary, eventId=series).execute()["items"]
    moved, cancelled = instances[1]["id"], instances[2]["id"]
    remote.patch(
        calendarId=user.primary,
        eventId=moved,
        body={"summary": f"moved {HOSTILE}", "start": _at(7, "UTC", 25), "end": _at(8, "UTC", 25)},
    ).execute()
    remote.delete(calendarId=user.primary, eventId=cancelled).execute()


def _listed(app: EventsApp, user: User) -> dict[str, Event]:
    """Google's copies as a full listing maps them (what a pull stored as the base)."""
    answer = (
        app.remote(user)
        .list(calendarId=user.primary, showDeleted=True, singleEvents=False, maxResults=2500)
        .execute()
    )
    zone = answer.get("timeZone", "UTC")
    return {item["id"]: event_from_google(item, zone) for item in answer["items"]}


def test_a_pulled_rows_base_is_the_document_of_googles_copy(app: EventsApp) -> None:
    users = [app.connect(email) for email in ("alice@example.com", "bob@example.com")]
    for user in users:
        _seed(app, user)
        pull(app, user)
    for user in users:
        listed = _listed(app, user)
        with app.services.sessions() as session:
            rows = session.execute(
                sa.select(EventRow.id, EventRow.google_event_id, EventRow.base_version).where(
                    EventRow.calendar_id == user.calendar_id
                )
            ).all()
            stored = {row.google_event_id: load_stored(session, row.id) for row in rows}
        # every listed event but the cancelled instance's tombstone-free masters is a row
        assert set(stored) == {
            g for g, e in listed.items() if e.status != EventStatus.CANCELLED or e.is_exception
        }
        assert len(stored) == len(BODIES) + 2
        assert {row.google_event_id for row in rows if row.base_version != {}} == set()
        for google_id, event in stored.items():
            assert event is not None
            assert event.base is not None
            expected = event_to_document(listed[google_id])
            assert _without_id(event_to_document(event.base)) == _without_id(expected), google_id
        kinds = {e.event_type for e in listed.values()}
        assert {"outOfOffice", "focusTime", "default"} <= {str(k) for k in kinds}
        assert any(e.conference is not None for e in listed.values())
        assert any(e.is_exception and e.status == EventStatus.CANCELLED for e in listed.values())
