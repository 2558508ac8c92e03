"""Event types as Google's guides define them, through the real client library.

https://developers.google.com/workspace/calendar/api/guides/event-types and
https://developers.google.com/workspace/calendar/api/guides/calendar-status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest

from calsync.emulator.testing import EmulatorControl, PushReceiver
from tests.integration.emulator.conftest import Account, Target, timed
from tests.integration.emulator.helpers import google_error, list_all

OUT_OF_OFFICE = {
    "eventType": "outOfOffice",
    "outOfOfficeProperties": {
        "autoDeclineMode": "declineOnlyNewConflictingInvitations",
        "declineMessage": "On leave",
    },
}
FOCUS = {
    "eventType": "focusTime",
    "focusTimeProperties": {"chatStatus": "doNotDisturb", "autoDeclineMode": "declineNone"},
}
AT_HOME = {
    "eventType": "workingLocation",
    "workingLocationProperties": {"type": "homeOffice", "homeOffice": {}},
}
ONE_DAY = {"start": {"date": "2026-11-23"}, "end": {"date": "2026-11-24"}}
BIRTHDAY = {
    "eventType": "birthday",
    "summary": "Ann's birthday",
    "start": {"date": "2026-03-14"},
    "end": {"date": "2026-03-15"},
    "recurrence": ["RRULE:FREQ=YEARLY"],
    "visibility": "private",
    "transparency": "transparent",
}
FROM_GMAIL = {
    "eventType": "fromGmail",
    "summary": "Flight to Lisbon",
    "location": "LHR",
    "organizer": {"email": "noreply@airline.example"},
} | timed("2026-11-25", 8, minutes=150)


#: Tests that write to (or expect an empty) primary calendar run on the emulator only:
#: on the real Google the test account's primary calendar is shared and kept.
PRISTINE_PRIMARY = pytest.mark.usefixtures("control")


def insert(account: Account, body: dict[str, Any], calendar: str = "primary") -> dict[str, Any]:
    return dict(account.service.events().insert(calendarId=calendar, body=body).execute())


def patch(account: Account, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
    events = account.service.events()
    return dict(events.patch(calendarId="primary", eventId=event_id, body=body).execute())


@PRISTINE_PRIMARY
def test_status_events_on_the_primary_calendar_get_the_fields_their_type_requires(
    account: Account,
) -> None:
    away = insert(account, OUT_OF_OFFICE | timed("2026-11-23", 9, minutes=480))
    focus = insert(account, FOCUS | timed("2026-11-24", 9))
    home = insert(account, AT_HOME | ONE_DAY)
    office = insert(
        account,
        {
            "eventType": "workingLocation",
            "workingLocationProperties": {
                "type": "officeLocation",
                "officeLocation": {"buildingId": "b1", "label": "HQ"},
            },
        }
        | timed("2026-11-25", 9, minutes=240),
    )
    assert (away["eventType"], away["transparency"]) == ("outOfOffice", "opaque")
    assert away["outOfOfficeProperties"]["declineMessage"] == "On leave"
    assert (focus["eventType"], focus["transparency"]) == ("focusTime", "opaque")
    assert (home["transparency"], home["visibility"]) == ("transparent", "public")
    assert office["workingLocationProperties"]["officeLocation"]["label"] == "HQ"
    read = account.service.events().get(calendarId="primary", eventId=focus["id"]).execute()
    assert read["focusTimeProperties"] == FOCUS["focusTimeProperties"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (OUT_OF_OFFICE | ONE_DAY, "eventTypeRestriction"),  # cannot be all-day
        (FOCUS | ONE_DAY, "eventTypeRestriction"),
        (
            AT_HOME | {"start": {"date": "2026-11-23"}, "end": {"date": "2026-11-25"}},
            "eventTypeRestriction",  # an all-day working location spans one day
        ),
        (
            OUT_OF_OFFICE | timed("2026-11-23", 9) | {"attendees": [{"email": "b@example.com"}]},
            "eventTypeRestriction",
        ),
        (
            OUT_OF_OFFICE | timed("2026-11-23", 9) | {"transparency": "transparent"},
            "eventTypeRestriction",
        ),
        ({"eventType": "outOfOffice"} | timed("2026-11-23", 9), "required"),
        ({"eventType": "fromGmail"} | timed("2026-11-23", 9), "eventTypeRestriction"),
        ({"eventType": "meeting"} | timed("2026-11-23", 9), "invalid"),
        (
            {"focusTimeProperties": {"chatStatus": "available"}} | timed("2026-11-23", 9),
            "invalid",  # another type's properties
        ),
        (BIRTHDAY | {"description": "cake"}, "eventTypeRestriction"),
        (
            BIRTHDAY | {"extendedProperties": {"private": {"calsync_id": "x"}}},
            "eventTypeRestriction",
        ),
        (BIRTHDAY | {"recurrence": ["RRULE:FREQ=MONTHLY"]}, "eventTypeRestriction"),
        (BIRTHDAY | {"birthdayProperties": {"type": "anniversary"}}, "eventTypeRestriction"),
    ],
)
@PRISTINE_PRIMARY
def test_inserts_google_refuses_for_their_type(
    account: Account, body: dict[str, Any], reason: str
) -> None:
    status, got, _ = google_error(lambda: insert(account, body))
    assert (status, got) == (400, reason)
    items, _, _ = list_all(account.service, "primary")
    assert items == []


def test_status_events_exist_only_on_primary_calendars(account: Account, calendar_id: str) -> None:
    for body in (OUT_OF_OFFICE | timed("2026-11-23", 9), AT_HOME | ONE_DAY):
        status, reason, _ = google_error(lambda body=body: insert(account, body, calendar_id))
        assert (status, reason) == (400, "eventTypeRestriction")
    assert insert(account, BIRTHDAY, calendar_id)["eventType"] == "birthday"


@PRISTINE_PRIMARY
def test_the_type_is_fixed_and_a_status_event_keeps_its_shape(account: Account) -> None:
    away = insert(account, OUT_OF_OFFICE | timed("2026-11-23", 9))
    plain = insert(account, timed("2026-11-23", 12))
    for event_id, body in (
        (away["id"], {"eventType": "default"}),
        (plain["id"], {"eventType": "focusTime", "focusTimeProperties": {}}),
        (away["id"], {"attendees": [{"email": "b@example.com"}]}),
        (away["id"], ONE_DAY),
    ):
        status, reason, _ = google_error(lambda e=event_id, b=body: patch(account, e, b))
        assert (status, reason) == (400, "eventTypeRestriction")
    changed = patch(
        account, away["id"], {"outOfOfficeProperties": {"declineMessage": "Back Monday"}}
    )
    assert changed["outOfOfficeProperties"]["declineMessage"] == "Back Monday"
    assert changed["eventType"] == "outOfOffice"


def test_a_from_gmail_event_changes_only_what_google_allows(
    control: EmulatorControl, account: Account
) -> None:
    made = control.seed_event(account.email, FROM_GMAIL)
    assert made["eventType"] == "fromGmail"
    for body in ({"summary": "Mine now"}, {"location": "LGW"}, timed("2026-11-25", 9)):
        status, reason, _ = google_error(lambda b=body: patch(account, made["id"], b))
        assert (status, reason) == (400, "eventTypeRestriction")
    changed = patch(
        account,
        made["id"],
        {
            "summary": "Flight to Lisbon",  # unchanged: not a change Google refuses
            "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 90}]},
            "attendees": [{"email": "ann@example.com"}],
            "extendedProperties": {"private": {"calsync_id": "abc"}},
            "status": "tentative",
        },
    )
    assert changed["reminders"]["overrides"] == [{"method": "popup", "minutes": 90}]
    assert changed["extendedProperties"]["private"] == {"calsync_id": "abc"}
    assert changed["summary"] == "Flight to Lisbon"


def test_birthdays_change_only_their_title_reminders_and_date_unless_linked(
    control: EmulatorControl, account: Account
) -> None:
    own = insert(account, BIRTHDAY)
    renamed = patch(account, own["id"], {"summary": "Ann (sister)"})
    moved = patch(
        account, own["id"], {"start": {"date": "2026-03-15"}, "end": {"date": "2026-03-16"}}
    )
    assert renamed["summary"] == "Ann (sister)"
    assert moved["start"] == {"date": "2026-03-15"}
    for body in (
        {"description": "cake"},
        {"start": {"date": "2026-03-15"}, "end": {"date": "2026-03-17"}},
        {"birthdayProperties": {"type": "birthday", "contact": "people/c1"}},
    ):
        status, reason, _ = google_error(lambda b=body: patch(account, own["id"], b))
        assert (status, reason) == (400, "eventTypeRestriction")
    linked = control.seed_event(
        account.email,
        BIRTHDAY | {"birthdayProperties": {"type": "birthday", "contact": "people/c42"}},
    )
    status, reason, _ = google_error(
        lambda: patch(
            account, linked["id"], {"start": {"date": "2026-04-01"}, "end": {"date": "2026-04-02"}}
        )
    )
    assert (status, reason) == (400, "eventTypeRestriction")
    assert patch(account, linked["id"], {"colorId": "4"})["colorId"] == "4"


@PRISTINE_PRIMARY
def test_an_imported_birthday_becomes_a_default_event(account: Account) -> None:
    body = BIRTHDAY | {"iCalUID": "bday-1@example.com", "birthdayProperties": {"type": "birthday"}}
    imported = account.service.events().import_(calendarId="primary", body=body).execute()
    assert imported["eventType"] == "default"
    assert "birthdayProperties" not in imported


def test_lists_every_type_by_default_and_event_types_narrow_them(
    target: Target, control: EmulatorControl, account: Account
) -> None:
    made = {
        "default": insert(account, timed("2026-11-23", 12))["id"],
        "outOfOffice": insert(account, OUT_OF_OFFICE | timed("2026-11-23", 9))["id"],
        "focusTime": insert(account, FOCUS | timed("2026-11-24", 9))["id"],
        "workingLocation": insert(account, AT_HOME | ONE_DAY)["id"],
        "birthday": insert(account, BIRTHDAY)["id"],
        "fromGmail": control.seed_event(account.email, FROM_GMAIL)["id"],
    }
    items, _, _ = list_all(account.service, "primary")
    assert {e["eventType"]: e["id"] for e in items} == made
    only, _, _ = list_all(account.service, "primary", eventTypes=["birthday", "fromGmail"])
    assert sorted(e["id"] for e in only) == sorted([made["birthday"], made["fromGmail"]])
    expanded = (
        account.service.events()
        .list(
            calendarId="primary",
            eventTypes=["birthday"],
            singleEvents=True,
            timeMin="2026-01-01T00:00:00Z",
            timeMax="2029-01-01T00:00:00Z",
        )
        .execute()
    )
    assert [e["start"]["date"] for e in expanded["items"]] == [
        "2026-03-14",
        "2027-03-14",
        "2028-03-14",
    ]
    # The client library refuses an unknown type itself; Google answers 400 to one.
    answer = httpx.get(
        f"{target.base_url}/calendar/v3/calendars/primary/events",
        params={"eventTypes": "party"},
        headers={"Authorization": f"Bearer {account.access_token}"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["errors"][0]["reason"] == "invalid"


def test_a_watch_with_event_types_hears_only_changes_of_those_types(
    account: Account, new_receiver: Callable[..., PushReceiver], control: EmulatorControl
) -> None:
    narrow, wide = new_receiver(), new_receiver()
    events = account.service.events()
    events.watch(
        calendarId="primary",
        eventTypes=["outOfOffice"],
        body={"id": "narrow", "type": "web_hook", "address": narrow.url},
    ).execute()
    events.watch(
        calendarId="primary", body={"id": "wide", "type": "web_hook", "address": wide.url}
    ).execute()
    plain = insert(account, timed("2026-11-23", 12))
    events.delete(calendarId="primary", eventId=plain["id"]).execute()
    insert(account, OUT_OF_OFFICE | timed("2026-11-23", 9))
    # One sender delivers in queue order: once the wide channel has its fourth message
    # (sync, insert, delete, insert), the narrow one has had everything it will get.
    assert len(wide.wait_for(4)) == 4
    states = [p.headers["X-Goog-Resource-State"] for p in narrow.received]
    assert states == ["sync", "exists"]
