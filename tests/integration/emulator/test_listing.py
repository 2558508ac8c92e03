"""events.list: paging, sync tokens (incremental sync, 410), filters, expansion."""

from __future__ import annotations

from typing import Any

import pytest

from calsync.emulator.testing import EmulatorControl, new_batch
from tests.integration.emulator.conftest import Account, Target, timed
from tests.integration.emulator.helpers import google_error, list_all


def bulk_insert(target: Target, account: Account, calendar_id: str, count: int) -> list[str]:
    """Insert ``count`` events in batches of 1000; their ids in insertion order."""
    ids = [f"bulk{i:06d}" for i in range(count)]
    failures: list[Exception] = []

    def note(_id: str, _resp: object, exc: Exception | None) -> None:
        if exc is not None:
            failures.append(exc)

    for start in range(0, count, 1000):
        batch = new_batch(target.base_url, note)
        for event_id in ids[start : start + 1000]:
            body = timed("2026-11-21", 10) | {"id": event_id, "summary": event_id}
            batch.add(account.service.events().insert(calendarId=calendar_id, body=body))
        batch.execute()
        assert failures == []
    return ids


def insert(account: Account, calendar_id: str, event_id: str, **body: Any) -> dict[str, Any]:
    fields = timed("2026-11-21", 10) | {"id": event_id} | body
    return dict(account.service.events().insert(calendarId=calendar_id, body=fields).execute())


def test_pages_follow_max_results_and_only_the_last_has_a_sync_token(
    account: Account, calendar_id: str
) -> None:
    for n in range(7):
        insert(account, calendar_id, f"page{n:04d}")
    items, sync_token, pages = list_all(account.service, calendar_id, maxResults=3)
    assert pages == 3
    assert sorted(e["id"] for e in items) == [f"page{n:04d}" for n in range(7)]
    assert sync_token


def test_default_page_is_250_and_max_results_is_capped_at_2500(
    target: Target, account: Account, calendar_id: str
) -> None:
    bulk_insert(target, account, calendar_id, 2600)
    events = account.service.events()
    default = events.list(calendarId=calendar_id).execute()
    assert len(default["items"]) == 250
    assert "nextPageToken" in default
    capped = events.list(calendarId=calendar_id, maxResults=5000).execute()
    assert len(capped["items"]) == 2500
    rest = events.list(
        calendarId=calendar_id, maxResults=5000, pageToken=capped["nextPageToken"]
    ).execute()
    assert len(rest["items"]) == 100
    assert "nextSyncToken" in rest


def test_incremental_sync_returns_only_changes_with_deletions_cancelled(
    account: Account, calendar_id: str
) -> None:
    events = account.service.events()
    for event_id in ("keep000001", "edit000001", "drop000001"):
        insert(account, calendar_id, event_id)
    _, token, _ = list_all(account.service, calendar_id, showDeleted=True)

    # When one event is added, one edited and one deleted
    insert(account, calendar_id, "add0000001")
    events.patch(calendarId=calendar_id, eventId="edit000001", body={"summary": "e"}).execute()
    events.delete(calendarId=calendar_id, eventId="drop000001").execute()

    # Then the incremental listing holds exactly those three
    changed, next_token, _ = list_all(account.service, calendar_id, syncToken=token)
    by_id = {e["id"]: e for e in changed}
    assert set(by_id) == {"add0000001", "edit000001", "drop000001"}
    assert by_id["drop000001"]["status"] == "cancelled"
    assert by_id["edit000001"]["summary"] == "e"
    assert next_token != token
    # And nothing more is pending
    assert list_all(account.service, calendar_id, syncToken=next_token)[0] == []


def test_incremental_results_page_too(account: Account, calendar_id: str) -> None:
    _, token, _ = list_all(account.service, calendar_id)
    for n in range(5):
        insert(account, calendar_id, f"inc{n:05d}")
    changed, _, pages = list_all(account.service, calendar_id, syncToken=token, maxResults=2)
    assert pages == 3
    assert [e["id"] for e in changed] == [f"inc{n:05d}" for n in range(5)]


def test_changes_made_while_paging_come_with_the_next_sync(
    account: Account, calendar_id: str
) -> None:
    for n in range(4):
        insert(account, calendar_id, f"snap{n:04d}")
    events = account.service.events()
    first = events.list(calendarId=calendar_id, maxResults=2).execute()
    events.patch(calendarId=calendar_id, eventId="snap0000", body={"summary": "late"}).execute()
    last = events.list(calendarId=calendar_id, maxResults=2, pageToken=first["nextPageToken"])
    token = last.execute()["nextSyncToken"]
    changed, _, _ = list_all(account.service, calendar_id, syncToken=token)
    assert [(e["id"], e["summary"]) for e in changed] == [("snap0000", "late")]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeMin", "2026-01-01T00:00:00Z"),
        ("timeMax", "2027-01-01T00:00:00Z"),
        ("updatedMin", "2026-01-01T00:00:00Z"),
        ("q", "x"),
        ("orderBy", "updated"),
        ("iCalUID", "x@google.com"),
        ("privateExtendedProperty", "a=b"),
        ("sharedExtendedProperty", "a=b"),
    ],
)
def test_sync_token_with_a_forbidden_parameter_is_400(
    account: Account, calendar_id: str, name: str, value: str
) -> None:
    _, token, _ = list_all(account.service, calendar_id)
    call = account.service.events().list(calendarId=calendar_id, syncToken=token, **{name: value})
    assert google_error(call.execute)[:2] == (400, "invalid")


def test_invalidated_sync_token_is_410_full_sync_required(
    control: EmulatorControl, account: Account, calendar_id: str
) -> None:
    _, token, _ = list_all(account.service, calendar_id)
    control.invalidate_sync_tokens(calendar_id)
    call = account.service.events().list(calendarId=calendar_id, syncToken=token)
    assert google_error(call.execute)[:2] == (410, "fullSyncRequired")
    # A full listing then yields a token that works again
    _, fresh, _ = list_all(account.service, calendar_id)
    assert list_all(account.service, calendar_id, syncToken=fresh)[0] == []


def test_token_of_another_calendar_or_garbage_is_410(account: Account, calendar_id: str) -> None:
    _, token, _ = list_all(account.service, calendar_id)
    events = account.service.events()
    foreign = events.list(calendarId="primary", syncToken=token)
    assert google_error(foreign.execute)[:2] == (410, "fullSyncRequired")
    garbage = events.list(calendarId=calendar_id, syncToken="not-a-token")
    assert google_error(garbage.execute)[:2] == (410, "fullSyncRequired")


def test_sync_token_expires_with_age_when_configured(
    control: EmulatorControl, account: Account, calendar_id: str
) -> None:
    control.configure(sync_token_ttl_seconds=3600)
    _, token, _ = list_all(account.service, calendar_id)
    control.advance_clock(3601)
    call = account.service.events().list(calendarId=calendar_id, syncToken=token)
    assert google_error(call.execute)[:2] == (410, "fullSyncRequired")


def test_show_deleted(account: Account, calendar_id: str) -> None:
    insert(account, calendar_id, "live000001")
    insert(account, calendar_id, "dead000001")
    account.service.events().delete(calendarId=calendar_id, eventId="dead000001").execute()
    plain, _, _ = list_all(account.service, calendar_id)
    assert [e["id"] for e in plain] == ["live000001"]
    with_deleted, _, _ = list_all(account.service, calendar_id, showDeleted=True)
    assert {e["id"]: e["status"] for e in with_deleted} == {
        "live000001": "confirmed",
        "dead000001": "cancelled",
    }


def test_updated_min_includes_later_changes_and_deletions(
    account: Account, calendar_id: str
) -> None:
    insert(account, calendar_id, "old0000001")
    insert(account, calendar_id, "gone000001")
    cutoff = account.service.events().get(calendarId=calendar_id, eventId="gone000001")
    stamp = cutoff.execute()["updated"]
    account.service.events().delete(calendarId=calendar_id, eventId="gone000001").execute()
    insert(account, calendar_id, "add0000001")
    later, _, _ = list_all(account.service, calendar_id, updatedMin=stamp)
    ids = {e["id"] for e in later}
    assert {"gone000001", "add0000001"} <= ids


def test_extended_property_and_ical_uid_filters(account: Account, calendar_id: str) -> None:
    insert(account, calendar_id, "prop000001", extendedProperties={"private": {"calsync_id": "1"}})
    insert(account, calendar_id, "prop000002", extendedProperties={"private": {"calsync_id": "2"}})
    insert(account, calendar_id, "prop000003", extendedProperties={"shared": {"calsync_id": "1"}})
    private, _, _ = list_all(account.service, calendar_id, privateExtendedProperty="calsync_id=1")
    assert [e["id"] for e in private] == ["prop000001"]
    shared, _, _ = list_all(account.service, calendar_id, sharedExtendedProperty="calsync_id=1")
    assert [e["id"] for e in shared] == ["prop000003"]
    by_uid, _, _ = list_all(account.service, calendar_id, iCalUID=private[0]["iCalUID"])
    assert [e["id"] for e in by_uid] == ["prop000001"]


def test_time_window_and_start_time_order_with_single_events(
    account: Account, calendar_id: str
) -> None:
    insert(account, calendar_id, "late000001", **timed("2026-11-23", 9))
    insert(account, calendar_id, "first00001", **timed("2026-11-20", 9))
    insert(account, calendar_id, "outside001", **timed("2026-12-20", 9))
    series = timed("2026-11-19", 12, zone="UTC") | {"recurrence": ["RRULE:FREQ=DAILY;COUNT=10"]}
    insert(account, calendar_id, "recur00001", **series)
    rows, _, _ = list_all(
        account.service,
        calendar_id,
        singleEvents=True,
        orderBy="startTime",
        timeMin="2026-11-20T00:00:00Z",
        timeMax="2026-11-22T00:00:00Z",
    )
    assert [e["id"] for e in rows] == [
        "first00001",
        "recur00001_20261120T120000Z",
        "recur00001_20261121T120000Z",
    ]
    assert all("recurrence" not in e for e in rows)


def test_window_without_expansion_keeps_the_series_master(
    account: Account, calendar_id: str
) -> None:
    series = timed("2026-11-01", 12, zone="UTC") | {"recurrence": ["RRULE:FREQ=WEEKLY"]}
    insert(account, calendar_id, "repeat0001", **series)
    insert(account, calendar_id, "before0001", **timed("2026-10-01", 9))
    rows, _, _ = list_all(
        account.service,
        calendar_id,
        timeMin="2027-03-01T00:00:00Z",
        timeMax="2027-03-09T00:00:00Z",
    )
    assert [e["id"] for e in rows] == ["repeat0001"]
    assert rows[0]["recurrence"] == ["RRULE:FREQ=WEEKLY"]


def test_start_time_order_needs_single_events_and_ranges_must_not_be_empty(
    account: Account, calendar_id: str
) -> None:
    events = account.service.events()
    assert google_error(events.list(calendarId=calendar_id, orderBy="startTime").execute)[:2] == (
        400,
        "badRequest",
    )
    empty = events.list(
        calendarId=calendar_id, timeMin="2026-11-21T00:00:00Z", timeMax="2026-11-20T00:00:00Z"
    )
    assert google_error(empty.execute)[:2] == (400, "timeRangeEmpty")


def test_deleted_events_keep_their_details_only_when_show_deleted_is_asked_for(
    account: Account, calendar_id: str
) -> None:
    """Google's Event resource (``status``): on the organizer's calendar cancelled events
    keep their details, but incremental listings without showDeleted do not return them;
    a cancelled exception of a live series is guaranteed only id, recurringEventId and
    originalStartTime (decisions JM1)."""
    events = account.service.events()
    insert(account, calendar_id, "gone000001", summary="Standup", location="Room 1")
    series = timed("2026-11-21", 9, zone="Europe/Paris") | {
        "id": "series0001",
        "summary": "Weekly",
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
    }
    events.insert(calendarId=calendar_id, body=series).execute()
    _, token, _ = list_all(account.service, calendar_id, showDeleted=True)
    events.delete(calendarId=calendar_id, eventId="gone000001").execute()
    events.delete(calendarId=calendar_id, eventId="series0001_20261128T080000Z").execute()

    full, _, _ = list_all(account.service, calendar_id, showDeleted=True)
    changed, _, _ = list_all(account.service, calendar_id, syncToken=token, showDeleted=True)
    bare, _, _ = list_all(account.service, calendar_id, syncToken=token)
    for listing in (full, changed):
        by_id = {e["id"]: e for e in listing}
        gone = by_id["gone000001"]
        assert (gone["status"], gone["summary"], gone["location"]) == (
            "cancelled",
            "Standup",
            "Room 1",
        )
        assert gone["start"] == {"dateTime": "2026-11-21T10:00:00Z"}
        exception = by_id["series0001_20261128T080000Z"]
        assert set(exception) == {
            "kind",
            "etag",
            "id",
            "status",
            "recurringEventId",
            "originalStartTime",
        }
    assert {e["id"]: set(e) for e in bare}["gone000001"] == {"kind", "etag", "id", "status"}
