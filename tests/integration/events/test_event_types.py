"""Event types through the HTTP API on both databases, with Google (the emulator) behind.

Creating status events (primary calendars only), the rules Google puts on each type's
updates (refused before the outbox), and pulled events of every type.
"""

from __future__ import annotations

import uuid
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import sqlalchemy as sa

from calsync.providers.google.ids import google_event_id
from calsync.store.tables import Event as EventRow
from calsync.store.tables import OutboxEntry
from calsync.sync import calendar_list
from tests.integration.events.conftest import EventsApp, User
from tests.integration.events.test_openapi import schema_of

pytestmark = pytest.mark.integration

AWAY = {
    "title": "Holiday",
    "start_time": "2031-03-10T09:00:00",
    "end_time": "2031-03-10T17:00:00",
    "timezone": "Europe/Berlin",
    "event_type": "outOfOffice",
    "out_of_office": {
        "auto_decline_mode": "declineOnlyNewConflictingInvitations",
        "decline_message": "Back on the 11th",
    },
}
FOCUS = {
    "title": "Deep work",
    "start_time": "2031-03-11T09:00:00",
    "end_time": "2031-03-11T11:00:00",
    "timezone": "Europe/Berlin",
    "event_type": "focusTime",
    "focus_time": {"chat_status": "doNotDisturb", "auto_decline_mode": "declineNone"},
}
AT_HOME = {
    "title": "Home",
    "start_time": "2031-03-12",
    "end_time": "2031-03-13",
    "event_type": "workingLocation",
    "working_location": {"type": "homeOffice"},
}
IN_OFFICE = {
    "title": "HQ",
    "start_time": "2031-03-13T08:00:00",
    "end_time": "2031-03-13T12:00:00",
    "timezone": "Europe/Berlin",
    "event_type": "workingLocation",
    "working_location": {
        "type": "officeLocation",
        "office_location": {"building_id": "b-1", "label": "HQ", "desk_id": "D7"},
    },
}
PLAIN = {
    "title": "Planning",
    "start_time": "2031-03-04T10:00:00",
    "end_time": "2031-03-04T11:00:00",
    "timezone": "Europe/Berlin",
}
FROM_GMAIL = {
    "eventType": "fromGmail",
    "summary": "Flight to Lisbon",
    "location": "LHR",
    "start": {"dateTime": "2031-03-05T08:00:00Z"},
    "end": {"dateTime": "2031-03-05T10:30:00Z"},
}
BIRTHDAY = {
    "eventType": "birthday",
    "summary": "Ann's birthday",
    "start": {"date": "2031-03-06"},
    "end": {"date": "2031-03-07"},
    "recurrence": ["RRULE:FREQ=YEARLY"],
}


def outbox_rows(app: EventsApp) -> list[tuple[str, str]]:
    with app.services.sessions() as session:
        rows = session.scalars(sa.select(OutboxEntry)).all()
    return [(str(r.event_id), r.operation) for r in rows]


def listed(app: EventsApp, user: User, **params: str) -> list[dict[str, Any]]:
    query = {"start_date": "2031-03-01", "end_date": "2033-04-30"} | params
    response = app.client.get("/events", params=query, headers=user.headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def refused(app: EventsApp, user: User, body: dict[str, Any]) -> tuple[int, list[str]]:
    response = app.client.post("/events", json=body, headers=user.headers)
    fields = [d["field"] for d in response.json()["error"]["details"]]
    return response.status_code, fields


def test_status_events_are_created_on_the_primary_calendar_with_googles_fields(
    any_app: EventsApp,
) -> None:
    alice = any_app.connect("alice@example.com")
    bob = any_app.connect("bob@example.com")

    away = any_app.create(alice, AWAY)
    focus = any_app.create(alice, FOCUS)
    home = any_app.create(alice, AT_HOME)
    office = any_app.create(alice, IN_OFFICE)
    plain = any_app.create(bob, PLAIN)

    assert away["event_type"] == "outOfOffice"
    assert away["out_of_office"] == AWAY["out_of_office"]
    assert focus["focus_time"] == FOCUS["focus_time"]
    assert home["working_location"] == {"type": "homeOffice"}
    assert office["working_location"] == IN_OFFICE["working_location"]
    assert plain["event_type"] == "default"
    assert "out_of_office" not in plain
    assert {r.status for r in any_app.push_all()} == {"synced"}

    def remote(user: User, created: dict[str, Any]) -> Any:
        return any_app.google_event(user, google_event_id(uuid.UUID(created["id"])))

    on_google = remote(alice, away)
    assert (on_google["eventType"], on_google["transparency"]) == ("outOfOffice", "opaque")
    assert on_google["outOfOfficeProperties"] == {
        "autoDeclineMode": "declineOnlyNewConflictingInvitations",
        "declineMessage": "Back on the 11th",
    }
    assert remote(alice, focus)["focusTimeProperties"]["chatStatus"] == "doNotDisturb"
    home_on_google = remote(alice, home)
    assert home_on_google["workingLocationProperties"]["type"] == "homeOffice"
    assert (home_on_google["visibility"], home_on_google["transparency"]) == (
        "public",
        "transparent",
    )
    assert remote(alice, office)["workingLocationProperties"]["officeLocation"] == {
        "buildingId": "b-1",
        "label": "HQ",
        "deskId": "D7",
    }
    assert remote(bob, plain)["eventType"] == "default"
    # And each user lists their own events with their types, as stored
    assert sorted(e["event_type"] for e in listed(any_app, alice)) == [
        "focusTime",
        "outOfOffice",
        "workingLocation",
        "workingLocation",
    ]
    assert [e["event_type"] for e in listed(any_app, bob)] == ["default"]
    assert any_app.get(alice, away["id"])["sync_state"] == "synced"


def test_what_google_refuses_to_create_is_refused_before_the_outbox(any_app: EventsApp) -> None:
    alice = any_app.connect("alice@example.com", calendars=[{"summary": "Work"}])
    bob = any_app.connect("bob@example.com")
    any_app.control.share(bob.email, alice.email, "writer")
    calendar_list.sync_calendar_list(any_app.services, alice.id)
    work = any_app.calendar_id(alice, alice.google["calendars"][1]["id"])
    bobs = any_app.calendar_id(alice, bob.email)

    cases = [
        # Status events live on the user's own primary calendar only
        (AWAY | {"calendar_id": str(work)}, 422, ["calendar_id"]),
        (AT_HOME | {"calendar_id": str(bobs)}, 422, ["calendar_id"]),
        # Out of office and focus time are timed; working locations span one day
        (AWAY | {"start_time": "2031-03-10", "end_time": "2031-03-11"}, 422, ["all_day"]),
        (AT_HOME | {"end_time": "2031-03-14"}, 422, ["end_time"]),
        # No guests on a status event
        (FOCUS | {"attendees": ["carol@example.com"]}, 422, ["attendees"]),
        # Types Google alone creates, and unknown ones
        (PLAIN | {"event_type": "fromGmail"}, 422, ["event_type"]),
        (PLAIN | {"event_type": "birthday"}, 422, ["event_type"]),
        (PLAIN | {"event_type": "meeting"}, 422, ["event_type"]),
        # Properties belong to their own type, with Google's values
        (PLAIN | {"focus_time": {"chat_status": "available"}}, 422, ["focus_time"]),
        (AWAY | {"out_of_office": {"auto_decline_mode": "always"}}, 422, ["out_of_office"]),
        (AT_HOME | {"working_location": {"label": "x"}}, 422, ["working_location"]),
        (
            AT_HOME | {"working_location": {"type": "homeOffice", "custom_location": {}}},
            422,
            ["working_location"],
        ),
        (PLAIN | {"birthday": {"type": "birthday"}}, 422, ["birthday"]),
    ]
    for body, status, fields in cases:
        assert refused(any_app, alice, body) == (status, fields), body
    assert outbox_rows(any_app) == []
    assert listed(any_app, alice) == []


def test_pulled_events_of_every_type_are_stored_and_listed(any_app: EventsApp) -> None:
    alice = any_app.connect("alice@example.com")
    remote = any_app.remote(alice)
    remote.insert(
        calendarId=alice.primary,
        body={
            "summary": "Away",
            "eventType": "outOfOffice",
            "outOfOfficeProperties": {"autoDeclineMode": "declineNone"},
            "start": {"dateTime": "2031-03-10T09:00:00Z"},
            "end": {"dateTime": "2031-03-10T17:00:00Z"},
        },
    ).execute()
    any_app.control.seed_event(alice.primary, FROM_GMAIL)
    any_app.control.seed_event(
        alice.primary,
        BIRTHDAY | {"birthdayProperties": {"type": "birthday", "contact": "people/c42"}},
    )
    remote.insert(
        calendarId=alice.primary,
        body={"summary": "Lunch", "start": PLAIN_START, "end": PLAIN_END},
    ).execute()

    any_app.pull(alice)

    by_type = {e["event_type"]: e for e in listed(any_app, alice)}
    assert set(by_type) == {"outOfOffice", "fromGmail", "birthday", "default"}
    assert by_type["outOfOffice"]["out_of_office"] == {"auto_decline_mode": "declineNone"}
    assert by_type["fromGmail"]["title"] == "Flight to Lisbon"
    assert by_type["birthday"]["birthday"] == {"type": "birthday", "contact": "people/c42"}
    assert all(e["sync_state"] == "synced" for e in by_type.values())
    birthdays = [
        e
        for e in listed(any_app, alice, expand="true", end_date="2032-04-01")
        if e["event_type"] == "birthday"
    ]
    assert [e["start_time"] for e in birthdays] == ["2031-03-06", "2032-03-06"]


PLAIN_START = {"dateTime": "2031-03-04T12:00:00Z"}
PLAIN_END = {"dateTime": "2031-03-04T13:00:00Z"}


def pulled(app: EventsApp, user: User, resource: dict[str, Any]) -> dict[str, Any]:
    """`resource` put on the user's primary calendar by Google itself, then pulled."""
    made = app.control.seed_event(user.primary, resource)
    app.pull(user)
    (found,) = [e for e in listed(app, user) if e["google_event_id"] == made["id"]]
    return found


def test_a_from_gmail_event_takes_only_the_changes_google_allows(any_app: EventsApp) -> None:
    alice = any_app.connect("alice@example.com")
    flight = pulled(any_app, alice, FROM_GMAIL)

    for body, field in (
        ({"title": "Mine now"}, "title"),
        ({"location": "LGW"}, "location"),
        ({"start_time": "2031-03-05T09:00:00Z", "end_time": "2031-03-05T11:00:00Z"}, "start_time"),
        ({"event_type": "default"}, "event_type"),
    ):
        response = any_app.put(alice, flight["id"], body)
        assert response.status_code in (403, 422), response.text
        assert field in [d["field"] for d in response.json()["error"]["details"]]
    assert outbox_rows(any_app) == []
    assert any_app.get(alice, flight["id"])["title"] == "Flight to Lisbon"

    # Reminders, guests and metadata are Google's allowed fields: they reach Google
    response = any_app.put(
        alice,
        flight["id"],
        {"reminders": [90], "attendees": ["bob@example.com"], "metadata": {"trip": "T-1"}},
    )
    assert response.status_code == 200, response.text
    assert {r.status for r in any_app.push_all()} == {"synced"}
    on_google = any_app.google_event(alice, flight["google_event_id"])
    assert on_google["reminders"]["overrides"] == [{"method": "popup", "minutes": 90}]
    assert [a["email"] for a in on_google["attendees"]] == ["bob@example.com"]
    assert on_google["extendedProperties"]["private"]["calsync_meta_trip"] == "T-1"
    assert (on_google["summary"], on_google["eventType"]) == ("Flight to Lisbon", "fromGmail")
    assert any_app.get(alice, flight["id"])["sync_state"] == "synced"


def test_birthdays_change_their_title_and_reminders_and_a_date_only_when_unlinked(
    any_app: EventsApp,
) -> None:
    alice = any_app.connect("alice@example.com")
    linked = pulled(
        any_app,
        alice,
        BIRTHDAY | {"birthdayProperties": {"type": "birthday", "contact": "people/c42"}},
    )
    moved = {"start_time": "2031-03-07", "end_time": "2031-03-08"}
    for body, status, field in (
        (moved, 403, "start_time"),
        ({"description": "cake"}, 403, "description"),
        ({"metadata": {"k": "v"}}, 403, "metadata"),
        ({"attendees": ["bob@example.com"]}, 403, "attendees"),
    ):
        response = any_app.put(alice, linked["id"], body)
        assert response.status_code == status, response.text
        assert [d["field"] for d in response.json()["error"]["details"]] == [field]
    assert outbox_rows(any_app) == []

    response = any_app.put(alice, linked["id"], {"title": "Ann (sister)", "reminders": [1440]})
    assert response.status_code == 200, response.text
    assert {r.status for r in any_app.push_all()} == {"synced"}
    on_google = any_app.google_event(alice, linked["google_event_id"])
    assert on_google["summary"] == "Ann (sister)"
    assert on_google["start"] == {"date": "2031-03-06"}
    assert "extendedProperties" not in on_google

    # A birthday of no contact moves to another single day, not to two
    own = pulled(any_app, alice, BIRTHDAY | {"summary": "Me"})
    response = any_app.put(alice, own["id"], {"start_time": "2031-03-07", "end_time": "2031-03-09"})
    assert (response.status_code, response.json()["error"]["details"][0]["field"]) == (
        422,
        "end_time",
    )
    assert any_app.put(alice, own["id"], moved).status_code == 200
    assert {r.status for r in any_app.push_all()} == {"synced"}
    assert any_app.google_event(alice, own["google_event_id"])["start"] == {"date": "2031-03-07"}


def test_status_events_keep_their_type_and_shape_on_update(any_app: EventsApp) -> None:
    alice = any_app.connect("alice@example.com")
    away = any_app.create(alice, AWAY)
    any_app.push_all()

    for body, field in (
        ({"event_type": "focusTime"}, "event_type"),
        ({"focus_time": {"chat_status": "available"}}, "focus_time"),
        ({"attendees": ["bob@example.com"]}, "attendees"),
        ({"start_time": "2031-03-10", "end_time": "2031-03-11"}, "all_day"),
    ):
        response = any_app.put(alice, away["id"], body)
        assert response.status_code == 422, response.text
        assert [d["field"] for d in response.json()["error"]["details"]] == [field]

    response = any_app.put(
        alice,
        away["id"],
        {"event_type": "outOfOffice", "out_of_office": {"decline_message": "Off"}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["out_of_office"] == {"decline_message": "Off"}
    assert {r.status for r in any_app.push_all()} == {"synced"}
    on_google = any_app.google_event(alice, google_event_id(uuid.UUID(away["id"])))
    assert on_google["outOfOfficeProperties"] == {"declineMessage": "Off"}
    assert on_google["eventType"] == "outOfOffice"


def test_typed_bodies_and_answers_follow_the_openapi_document(any_app: EventsApp) -> None:
    document = any_app.client.get("/openapi.json").json()
    alice = any_app.connect("alice@example.com")
    for body in (AWAY, FOCUS, AT_HOME, IN_OFFICE):
        jsonschema.validate(body, schema_of(document, "EventCreate"))
        jsonschema.validate(any_app.create(alice, body), schema_of(document, "Event"))
    pulled(
        any_app,
        alice,
        BIRTHDAY | {"birthdayProperties": {"type": "custom", "customTypeName": "Name day"}},
    )
    page = any_app.client.get(
        "/events",
        params={"start_date": "2031-03-01", "end_date": "2031-03-31", "expand": "true"},
        headers=alice.headers,
    ).json()
    assert len(page["events"]) == 5
    jsonschema.validate(page, schema_of(document, "EventPage"))


def test_an_event_of_a_type_calsync_does_not_know_takes_no_change_of_any_field(
    any_app: EventsApp,
) -> None:
    """K1: read-only, whatever the field; the fields added after the rule was written
    (colour, visibility, transparency, conference) included."""
    alice = any_app.connect("alice@example.com")
    slot = pulled(
        any_app,
        alice,
        {
            "summary": "Office hours",
            "start": {"dateTime": "2031-03-05T08:00:00Z"},
            "end": {"dateTime": "2031-03-05T10:30:00Z"},
        },
    )
    # The emulator makes only the types it knows; Google has more (a pull stores any).
    with any_app.services.sessions.begin() as session:
        session.execute(
            sa.update(EventRow)
            .where(EventRow.id == uuid.UUID(slot["id"]))
            .values(event_type="appointmentSlot")
        )
    assert any_app.get(alice, slot["id"])["event_type"] == "appointmentSlot"
    for body, field in (
        ({"title": "Mine now"}, "title"),
        ({"color_id": "5"}, "color_id"),
        ({"visibility": "private"}, "visibility"),
        ({"transparency": "transparent"}, "transparency"),
        ({"conference": {"create": "meet"}}, "conference"),
    ):
        response = any_app.put(alice, slot["id"], body)
        assert response.status_code == 403, (body, response.text)
        assert [d["field"] for d in response.json()["error"]["details"]] == [field]
    assert outbox_rows(any_app) == []
    stored = any_app.get(alice, slot["id"])
    assert (stored["color_id"], stored["visibility"]) == (slot["color_id"], slot["visibility"])
