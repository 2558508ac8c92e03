"""events.get/insert/update/patch/delete/import through the real googleapiclient."""

from __future__ import annotations

import pytest

from tests.integration.emulator.conftest import Account, timed
from tests.integration.emulator.helpers import google_error


def insert(account: Account, calendar_id: str, **body: object) -> dict[str, object]:
    fields = timed("2026-11-21", 10) | body
    return dict(account.service.events().insert(calendarId=calendar_id, body=fields).execute())


def test_insert_with_client_id_then_get_returns_the_same_event(
    account: Account, calendar_id: str
) -> None:
    # Given an event inserted with a base32hex id chosen by the client
    created = insert(account, calendar_id, id="ca1s0001abc", summary="Standup")

    # When it is read back
    fetched = account.service.events().get(calendarId=calendar_id, eventId="ca1s0001abc").execute()

    # Then it has that id, Google's bookkeeping fields, and what was written
    assert created["id"] == fetched["id"] == "ca1s0001abc"
    assert fetched["summary"] == "Standup"
    assert fetched["status"] == "confirmed"
    assert fetched["etag"] == created["etag"]
    assert fetched["sequence"] == 0
    assert fetched["kind"] == "calendar#event"
    assert fetched["iCalUID"]
    assert fetched["created"].endswith("Z")
    assert fetched["updated"].endswith("Z")
    assert fetched["organizer"]["email"] == calendar_id
    assert fetched["organizer"]["self"] is True
    assert fetched["creator"]["email"] == account.email


def test_server_generated_ids_are_base32hex(account: Account, calendar_id: str) -> None:
    created = insert(account, calendar_id, summary="no id")
    assert set(created["id"]) <= set("abcdefghijklmnopqrstuv0123456789")  # type: ignore[arg-type]
    assert len(created["id"]) >= 5  # type: ignore[arg-type]


@pytest.mark.parametrize("bad_id", ["abcd", "UPPERCASE123", "has_underscore1", "wxyz12345"])
def test_invalid_client_ids_are_rejected(account: Account, calendar_id: str, bad_id: str) -> None:
    status, reason, _ = google_error(lambda: insert(account, calendar_id, id=bad_id))
    assert (status, reason) == (400, "invalid")


def test_reusing_an_id_is_409_even_after_delete(account: Account, calendar_id: str) -> None:
    insert(account, calendar_id, id="dup0000001")
    assert google_error(lambda: insert(account, calendar_id, id="dup0000001"))[:2] == (
        409,
        "duplicate",
    )
    account.service.events().delete(calendarId=calendar_id, eventId="dup0000001").execute()
    assert google_error(lambda: insert(account, calendar_id, id="dup0000001"))[:2] == (
        409,
        "duplicate",
    )


def test_every_write_changes_etag_and_updated(account: Account, calendar_id: str) -> None:
    events = account.service.events()
    first = insert(account, calendar_id, id="etag000001", summary="a")
    patched = events.patch(
        calendarId=calendar_id, eventId="etag000001", body={"summary": "b"}
    ).execute()
    updated = events.update(
        calendarId=calendar_id,
        eventId="etag000001",
        body=timed("2026-11-21", 10) | {"summary": "c"},
    ).execute()
    etags = {first["etag"], patched["etag"], updated["etag"]}
    assert len(etags) == 3
    assert first["updated"] <= patched["updated"] <= updated["updated"]
    assert updated["summary"] == "c"


def test_if_match_with_a_stale_etag_is_412(account: Account, calendar_id: str) -> None:
    events = account.service.events()
    created = insert(account, calendar_id, id="ifmatch001", summary="v1")
    events.patch(calendarId=calendar_id, eventId="ifmatch001", body={"summary": "v2"}).execute()

    stale_patch = events.patch(calendarId=calendar_id, eventId="ifmatch001", body={"summary": "x"})
    stale_patch.headers["If-Match"] = created["etag"]
    assert google_error(stale_patch.execute)[:2] == (412, "conditionNotMet")

    stale_delete = events.delete(calendarId=calendar_id, eventId="ifmatch001")
    stale_delete.headers["If-Match"] = created["etag"]
    assert google_error(stale_delete.execute)[:2] == (412, "conditionNotMet")

    current = events.get(calendarId=calendar_id, eventId="ifmatch001").execute()
    assert current["summary"] == "v2"
    fresh = events.patch(calendarId=calendar_id, eventId="ifmatch001", body={"summary": "v3"})
    fresh.headers["If-Match"] = current["etag"]
    assert fresh.execute()["summary"] == "v3"


def test_sequence_rises_on_time_changes_only(account: Account, calendar_id: str) -> None:
    events = account.service.events()
    insert(account, calendar_id, id="seq0000001", summary="a")
    renamed = events.patch(calendarId=calendar_id, eventId="seq0000001", body={"summary": "b"})
    assert renamed.execute()["sequence"] == 0
    moved = events.patch(
        calendarId=calendar_id, eventId="seq0000001", body=timed("2026-11-22", 9)
    ).execute()
    assert moved["sequence"] == 1


def test_update_replaces_and_patch_merges(account: Account, calendar_id: str) -> None:
    events = account.service.events()
    insert(
        account,
        calendar_id,
        id="merge00001",
        summary="s",
        location="Room 1",
        extendedProperties={"private": {"calsync_id": "42", "other": "x"}},
    )
    patched = events.patch(
        calendarId=calendar_id,
        eventId="merge00001",
        body={"extendedProperties": {"private": {"other": "y"}}},
    ).execute()
    assert patched["location"] == "Room 1"
    assert patched["extendedProperties"]["private"] == {"calsync_id": "42", "other": "y"}

    replaced = events.update(
        calendarId=calendar_id,
        eventId="merge00001",
        body=timed("2026-11-21", 10) | {"summary": "t"},
    ).execute()
    assert "location" not in replaced
    assert "extendedProperties" not in replaced


def test_delete_leaves_a_cancelled_event_and_a_second_delete_is_410(
    account: Account, calendar_id: str
) -> None:
    events = account.service.events()
    insert(account, calendar_id, id="del0000001")
    events.delete(calendarId=calendar_id, eventId="del0000001").execute()

    gone = events.get(calendarId=calendar_id, eventId="del0000001").execute()
    assert gone["status"] == "cancelled"
    again = events.delete(calendarId=calendar_id, eventId="del0000001")
    assert google_error(again.execute)[:2] == (410, "deleted")
    missing = events.get(calendarId=calendar_id, eventId="neverexisted1")
    assert google_error(missing.execute)[:2] == (404, "notFound")


def test_all_day_and_timed_events_keep_their_kind(account: Account, calendar_id: str) -> None:
    events = account.service.events()
    all_day = events.insert(
        calendarId=calendar_id,
        body={"summary": "holiday", "start": {"date": "2026-12-24"}, "end": {"date": "2026-12-26"}},
    ).execute()
    assert all_day["start"] == {"date": "2026-12-24"}
    assert all_day["end"] == {"date": "2026-12-26"}

    zoned = events.insert(
        calendarId=calendar_id, body=timed("2026-07-01", 9, zone="Europe/Berlin")
    ).execute()
    assert zoned["start"]["timeZone"] == "Europe/Berlin"
    assert zoned["start"]["dateTime"].startswith("2026-07-01T09:00:00+02:00")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"start": {"dateTime": "2026-11-21T10:00:00Z"}}, "required"),
        (
            {"start": {"dateTime": "2026-11-21T10:00:00Z"}, "end": {"date": "2026-11-22"}},
            "invalid",
        ),
        (
            {
                "start": {"dateTime": "2026-11-21T10:00:00Z"},
                "end": {"dateTime": "2026-11-21T09:00:00Z"},
            },
            "timeRangeEmpty",
        ),
        (
            {
                "start": {"dateTime": "2026-11-21T10:00:00"},
                "end": {"dateTime": "2026-11-21T11:00:00"},
            },
            "invalid",
        ),
        (
            timed("2026-11-21", 10, zone="UTC") | {"recurrence": ["RRULE:FREQ=SOMETIMES"]},
            "invalid",
        ),
        (timed("2026-11-21", 10) | {"recurrence": ["RRULE:FREQ=DAILY"]}, "required"),
        (
            timed("2026-11-21", 10)
            | {"reminders": {"useDefault": True, "overrides": [{"method": "popup", "minutes": 5}]}},
            "cannotUseDefaultRemindersAndSpecifyOverride",
        ),
    ],
)
def test_bad_event_bodies_are_400(
    account: Account, calendar_id: str, body: dict[str, object], reason: str
) -> None:
    call = account.service.events().insert(calendarId=calendar_id, body=body)
    assert google_error(call.execute)[:2] == (400, reason)


def test_attendees_reminders_and_extended_properties_round_trip(
    account: Account, calendar_id: str
) -> None:
    created = insert(
        account,
        calendar_id,
        attendees=[
            {"email": "guest@example.com"},
            {"email": "other@example.com", "optional": True},
        ],
        reminders={"useDefault": False, "overrides": [{"method": "email", "minutes": 30}]},
        extendedProperties={"private": {"calsync_id": "7"}, "shared": {"matter": "M-1"}},
    )
    fetched = account.service.events().get(calendarId=calendar_id, eventId=created["id"]).execute()
    assert [a["email"] for a in fetched["attendees"]] == ["guest@example.com", "other@example.com"]
    assert all(a["responseStatus"] == "needsAction" for a in fetched["attendees"])
    assert fetched["attendees"][1]["optional"] is True
    assert fetched["reminders"] == {
        "useDefault": False,
        "overrides": [{"method": "email", "minutes": 30}],
    }
    assert fetched["extendedProperties"] == {
        "private": {"calsync_id": "7"},
        "shared": {"matter": "M-1"},
    }
    default = insert(account, calendar_id)
    assert default["reminders"] == {"useDefault": True}


def test_import_keeps_the_ical_uid_and_replaces_on_reimport(
    account: Account, calendar_id: str
) -> None:
    events = account.service.events()
    body = timed("2026-11-21", 8) | {"iCalUID": "abc-123@example.org", "summary": "v1"}
    first = events.import_(calendarId=calendar_id, body=body).execute()
    second = events.import_(calendarId=calendar_id, body=body | {"summary": "v2"}).execute()
    assert first["iCalUID"] == second["iCalUID"] == "abc-123@example.org"
    assert first["id"] == second["id"]
    listed = events.list(calendarId=calendar_id, iCalUID="abc-123@example.org").execute()
    assert [e["summary"] for e in listed["items"]] == ["v2"]


def test_non_organizer_copy_cannot_change_shared_properties(
    account: Account, calendar_id: str
) -> None:
    events = account.service.events()
    body = timed("2026-11-21", 8) | {
        "iCalUID": "invite-1@example.org",
        "organizer": {"email": "boss@example.org"},
        "extendedProperties": {"shared": {"k": "v"}},
    }
    copy = events.import_(calendarId=calendar_id, body=body).execute()
    assert copy["organizer"] == {"email": "boss@example.org"}
    change = events.patch(
        calendarId=calendar_id,
        eventId=copy["id"],
        body={"extendedProperties": {"shared": {"k": "changed"}}},
    )
    assert google_error(change.execute)[:2] == (403, "forbiddenForNonOrganizer")
    private = events.patch(
        calendarId=calendar_id,
        eventId=copy["id"],
        body={"extendedProperties": {"private": {"mine": "1"}}},
    ).execute()
    assert private["extendedProperties"]["private"] == {"mine": "1"}
