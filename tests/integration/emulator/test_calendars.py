"""calendarList and calendars: access roles, read-only calendars, secondary calendars."""

from __future__ import annotations

from collections.abc import Callable

from calsync.emulator.testing import EmulatorControl
from tests.integration.emulator.conftest import Account, timed
from tests.integration.emulator.helpers import google_error


def test_a_user_sees_own_and_shared_calendars_with_their_roles(
    new_account: Callable[..., Account],
) -> None:
    user = new_account(
        calendars=[
            {"summary": "Work", "access_role": "owner"},
            {"summary": "Team", "access_role": "writer", "owner": "lead@example.com"},
            {"summary": "Holidays", "access_role": "reader", "owner": "hr@example.com"},
        ]
    )
    entries = user.service.calendarList().list().execute()["items"]
    roles = {e["summary"]: e["accessRole"] for e in entries}
    assert roles == {user.email: "owner", "Work": "owner", "Team": "writer", "Holidays": "reader"}
    primary = [e for e in entries if e.get("primary")]
    assert [e["id"] for e in primary] == [user.email]
    readers = user.service.calendarList().list(minAccessRole="writer").execute()["items"]
    assert {e["summary"] for e in readers} == {user.email, "Work", "Team"}


def test_writing_to_a_read_only_calendar_is_403(new_account: Callable[..., Account]) -> None:
    user = new_account(
        calendars=[{"summary": "Holidays", "access_role": "reader", "owner": "hr@example.com"}]
    )
    entries = user.service.calendarList().list().execute()["items"]
    holidays = next(e["id"] for e in entries if e["summary"] == "Holidays")
    events = user.service.events()
    assert events.list(calendarId=holidays).execute()["accessRole"] == "reader"
    write = events.insert(calendarId=holidays, body=timed("2026-11-21", 9))
    status, reason, _ = google_error(write.execute)
    assert (status, reason) == (403, "requiredAccessLevel")


def test_a_writer_edits_a_calendar_shared_by_its_owner(
    control: EmulatorControl, new_account: Callable[..., Account]
) -> None:
    owner = new_account()
    guest = new_account()
    shared = owner.service.calendars().insert(body={"summary": "Shared"}).execute()
    control.share(shared["id"], guest.email, "writer")
    created = guest.service.events().insert(calendarId=shared["id"], body=timed("2026-11-21", 9))
    event = created.execute()
    seen = owner.service.events().get(calendarId=shared["id"], eventId=event["id"]).execute()
    assert seen["creator"]["email"] == guest.email
    assert seen["organizer"]["email"] == shared["id"]


def test_someone_elses_calendar_is_404(new_account: Callable[..., Account]) -> None:
    owner = new_account()
    stranger = new_account()
    private = owner.service.calendars().insert(body={"summary": "Private"}).execute()
    call = stranger.service.calendars().get(calendarId=private["id"])
    assert google_error(call.execute)[:2] == (404, "notFound")
    events = stranger.service.events().list(calendarId=private["id"])
    assert google_error(events.execute)[:2] == (404, "notFound")


def test_calendars_insert_adds_an_owned_calendar_to_the_list(account: Account) -> None:
    created = (
        account.service.calendars()
        .insert(body={"summary": "Projects", "timeZone": "Europe/Paris"})
        .execute()
    )
    assert created["summary"] == "Projects"
    assert created["timeZone"] == "Europe/Paris"
    fetched = account.service.calendars().get(calendarId=created["id"]).execute()
    assert fetched["id"] == created["id"]
    entry = account.service.calendarList().get(calendarId=created["id"]).execute()
    assert entry["accessRole"] == "owner"
    assert "primary" not in entry
    primary = account.service.calendars().get(calendarId="primary").execute()
    assert primary["id"] == account.email


def test_calendar_list_sync_token_reports_added_and_removed_calendars(account: Account) -> None:
    lists = account.service.calendarList()
    token = lists.list().execute()["nextSyncToken"]
    added = account.service.calendars().insert(body={"summary": "New"}).execute()
    doomed = account.service.calendars().insert(body={"summary": "Doomed"}).execute()
    account.service.calendars().delete(calendarId=doomed["id"]).execute()
    changes = lists.list(syncToken=token).execute()
    by_id = {e["id"]: e for e in changes["items"]}
    assert by_id[added["id"]]["summary"] == "New"
    assert by_id[doomed["id"]].get("deleted") is True
    assert lists.list(syncToken=changes["nextSyncToken"]).execute()["items"] == []


def test_primary_calendar_cannot_be_deleted(account: Account) -> None:
    call = account.service.calendars().delete(calendarId="primary")
    assert google_error(call.execute)[0] == 400


def test_a_full_calendar_list_is_paged_to_its_end(account: Account) -> None:
    # Given a user with more calendars than one page holds (found by the real-world
    # calendar corpus, test_ics_corpus.py: a second page of a full listing was a 500)
    lists = account.service.calendarList()
    made = {
        account.service.calendars().insert(body={"summary": f"c{n}"}).execute()["id"]
        for n in range(5)
    }
    # When the list is read two entries a page, following nextPageToken
    seen: list[str] = []
    page = lists.list(maxResults=2).execute()
    while "nextPageToken" in page:
        seen += [entry["id"] for entry in page["items"]]
        page = lists.list(maxResults=2, pageToken=page["nextPageToken"]).execute()
    seen += [entry["id"] for entry in page["items"]]
    # Then every calendar is listed once, and the last page ends with a sync token
    assert sorted(seen) == sorted(made | {account.email})
    assert lists.list(syncToken=page["nextSyncToken"]).execute()["items"] == []
