"""Recurring events: instances, instance ids, exceptions, cancelled instances."""

from __future__ import annotations

from typing import Any

from tests.integration.emulator.conftest import Account, timed
from tests.integration.emulator.helpers import google_error, list_all


def weekly(account: Account, calendar_id: str, event_id: str, *lines: str) -> dict[str, Any]:
    body = timed("2026-11-21", 10, zone="Europe/Berlin") | {
        "id": event_id,
        "summary": "series",
        "recurrence": list(lines) or ["RRULE:FREQ=WEEKLY;COUNT=4"],
    }
    return dict(account.service.events().insert(calendarId=calendar_id, body=body).execute())


def instance_ids(account: Account, calendar_id: str, event_id: str, **params: Any) -> list[str]:
    page = (
        account.service.events()
        .instances(calendarId=calendar_id, eventId=event_id, **params)
        .execute()
    )
    return [item["id"] for item in page["items"]]


def test_instances_have_ids_from_the_utc_original_start(account: Account, calendar_id: str) -> None:
    weekly(account, calendar_id, "series0001")
    page = account.service.events().instances(calendarId=calendar_id, eventId="series0001")
    items = page.execute()["items"]
    # 10:00 in Berlin is 09:00 UTC in winter
    assert [i["id"] for i in items] == [
        "series0001_20261121T090000Z",
        "series0001_20261128T090000Z",
        "series0001_20261205T090000Z",
        "series0001_20261212T090000Z",
    ]
    first = items[0]
    assert first["recurringEventId"] == "series0001"
    assert first["originalStartTime"] == first["start"]
    assert first["start"]["timeZone"] == "Europe/Berlin"
    assert "recurrence" not in first


def test_wall_clock_time_is_kept_across_daylight_saving(account: Account, calendar_id: str) -> None:
    body = timed("2026-10-18", 10, zone="Europe/Berlin") | {
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=2"]
    }
    master = account.service.events().insert(calendarId=calendar_id, body=body).execute()
    page = account.service.events().instances(calendarId=calendar_id, eventId=master["id"])
    starts = [i["start"]["dateTime"] for i in page.execute()["items"]]
    assert starts == ["2026-10-18T10:00:00+02:00", "2026-10-25T10:00:00+01:00"]


def test_all_day_instances_use_date_ids(account: Account, calendar_id: str) -> None:
    body = {
        "start": {"date": "2026-11-21"},
        "end": {"date": "2026-11-22"},
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=3", "EXDATE;VALUE=DATE:20261122"],
        "id": "datebased1",
    }
    account.service.events().insert(calendarId=calendar_id, body=body).execute()
    assert instance_ids(account, calendar_id, "datebased1") == [
        "datebased1_20261121",
        "datebased1_20261123",
    ]
    got = account.service.events().get(calendarId=calendar_id, eventId="datebased1_20261123")
    assert got.execute()["start"] == {"date": "2026-11-23"}


def test_exdate_and_rdate_lines(account: Account, calendar_id: str) -> None:
    weekly(
        account,
        calendar_id,
        "lines00001",
        "RRULE:FREQ=WEEKLY;COUNT=3",
        "EXDATE;TZID=Europe/Berlin:20261128T100000",
        "RDATE;TZID=Europe/Berlin:20261201T150000",
    )
    assert instance_ids(account, calendar_id, "lines00001") == [
        "lines00001_20261121T090000Z",
        "lines00001_20261201T140000Z",
        "lines00001_20261205T090000Z",
    ]


def test_patching_an_instance_creates_an_exception(account: Account, calendar_id: str) -> None:
    events = account.service.events()
    master = weekly(account, calendar_id, "edited0001")
    _, token, _ = list_all(account.service, calendar_id)

    moved = events.patch(
        calendarId=calendar_id,
        eventId="edited0001_20261128T090000Z",
        body={"summary": "moved"} | timed("2026-11-28", 14, zone="Europe/Berlin"),
    ).execute()

    assert moved["id"] == "edited0001_20261128T090000Z"
    assert moved["recurringEventId"] == "edited0001"
    assert moved["originalStartTime"]["dateTime"] == "2026-11-28T10:00:00+01:00"
    assert moved["start"]["dateTime"] == "2026-11-28T14:00:00+01:00"
    # The master is unchanged, the exception is its own row in listings and in sync
    assert (
        events.get(calendarId=calendar_id, eventId="edited0001").execute()["etag"]
        == (master["etag"])
    )
    changed, _, _ = list_all(account.service, calendar_id, syncToken=token)
    assert [e["id"] for e in changed] == ["edited0001_20261128T090000Z"]
    expanded = instance_ids(account, calendar_id, "edited0001")
    assert "edited0001_20261128T090000Z" in expanded
    single, _, _ = list_all(account.service, calendar_id, singleEvents=True, orderBy="startTime")
    summaries = {e["id"]: e["summary"] for e in single}
    assert summaries["edited0001_20261128T090000Z"] == "moved"
    assert summaries["edited0001_20261205T090000Z"] == "series"


def test_deleting_an_instance_stores_a_cancelled_exception(
    account: Account, calendar_id: str
) -> None:
    events = account.service.events()
    weekly(account, calendar_id, "cancel0001")
    events.delete(calendarId=calendar_id, eventId="cancel0001_20261205T090000Z").execute()

    # The default (unexpanded) listing shows the cancelled exception next to the master
    rows, _, _ = list_all(account.service, calendar_id)
    by_id = {e["id"]: e for e in rows}
    assert by_id["cancel0001_20261205T090000Z"]["status"] == "cancelled"
    assert by_id["cancel0001_20261205T090000Z"]["recurringEventId"] == "cancel0001"
    assert "originalStartTime" in by_id["cancel0001_20261205T090000Z"]
    # Expanded, the instance is gone unless deleted ones are asked for
    assert "cancel0001_20261205T090000Z" not in instance_ids(account, calendar_id, "cancel0001")
    assert "cancel0001_20261205T090000Z" in instance_ids(
        account, calendar_id, "cancel0001", showDeleted=True
    )


def test_deleting_the_master_cancels_the_series(account: Account, calendar_id: str) -> None:
    events = account.service.events()
    weekly(account, calendar_id, "entire0001")
    events.patch(
        calendarId=calendar_id, eventId="entire0001_20261121T090000Z", body={"summary": "x"}
    ).execute()
    _, token, _ = list_all(account.service, calendar_id)
    events.delete(calendarId=calendar_id, eventId="entire0001").execute()
    changed, _, _ = list_all(account.service, calendar_id, syncToken=token)
    assert {e["id"]: e["status"] for e in changed} == {
        "entire0001": "cancelled",
        "entire0001_20261121T090000Z": "cancelled",
    }
    rows, _, _ = list_all(account.service, calendar_id, singleEvents=True)
    assert rows == []


def test_an_instance_id_that_is_no_occurrence_is_404(account: Account, calendar_id: str) -> None:
    weekly(account, calendar_id, "nosuch0001")
    events = account.service.events()
    wrong_time = events.get(calendarId=calendar_id, eventId="nosuch0001_20261121T100000Z")
    assert google_error(wrong_time.execute)[:2] == (404, "notFound")
    after_end = events.patch(
        calendarId=calendar_id, eventId="nosuch0001_20270102T090000Z", body={"summary": "x"}
    )
    assert google_error(after_end.execute)[:2] == (404, "notFound")


def test_instances_window_and_original_start(account: Account, calendar_id: str) -> None:
    weekly(account, calendar_id, "range00001", "RRULE:FREQ=WEEKLY")
    assert instance_ids(
        account,
        calendar_id,
        "range00001",
        timeMin="2027-01-01T00:00:00Z",
        timeMax="2027-01-20T00:00:00Z",
    ) == [
        "range00001_20270102T090000Z",
        "range00001_20270109T090000Z",
        "range00001_20270116T090000Z",
    ]
    assert instance_ids(
        account, calendar_id, "range00001", originalStart="2026-12-05T10:00:00+01:00"
    ) == ["range00001_20261205T090000Z"]


def test_instances_time_min_is_inclusive_where_events_list_is_exclusive(
    account: Account, calendar_id: str
) -> None:
    """The discovery document: events.instances' timeMin is the "Lower bound
    (inclusive) for an event's end time", events.list's the "Lower bound (exclusive)"
    (decisions JM2)."""
    weekly(account, calendar_id, "series0002")  # 10:00-11:00 Berlin = 09:00-10:00 UTC
    at_first_end = "2026-11-21T10:00:00Z"
    assert instance_ids(account, calendar_id, "series0002", timeMin=at_first_end)[:2] == [
        "series0002_20261121T090000Z",
        "series0002_20261128T090000Z",
    ]
    listed, _, _ = list_all(account.service, calendar_id, singleEvents=True, timeMin=at_first_end)
    assert [e["id"] for e in listed][:1] == ["series0002_20261128T090000Z"]


SUB_DAILY_RULES = (
    "RRULE:FREQ=HOURLY",
    "RRULE:FREQ=MINUTELY;INTERVAL=30",
    "rrule:freq=secondly;count=5",
)


def test_rules_repeating_more_often_than_daily_are_refused_as_google_does(
    account: Account, calendar_id: str
) -> None:
    """Google answers a server error for ``RRULE:FREQ=HOURLY`` (google-api-ruby-client
    #572) and holds no sub-daily series: insert, import, patch and update all refuse one
    and change nothing."""
    events = account.service.events()
    weekly(account, calendar_id, "series0sub")
    for rule in SUB_DAILY_RULES:
        body = timed("2026-11-21", 10, zone="UTC") | {"summary": "too often", "recurrence": [rule]}
        assert google_error(events.insert(calendarId=calendar_id, body=body).execute)[:2] == (
            500,
            "backendError",
        )
        imported = body | {"iCalUID": "too-often@example.com"}
        assert google_error(events.import_(calendarId=calendar_id, body=imported).execute)[:2] == (
            500,
            "backendError",
        )
        patch = events.patch(
            calendarId=calendar_id, eventId="series0sub", body={"recurrence": [rule]}
        )
        assert google_error(patch.execute)[:2] == (500, "backendError")
        full = events.get(calendarId=calendar_id, eventId="series0sub").execute()
        update = events.update(
            calendarId=calendar_id, eventId="series0sub", body=full | {"recurrence": [rule]}
        )
        assert google_error(update.execute)[:2] == (500, "backendError")
    items, _, _ = list_all(account.service, calendar_id)
    assert [(i["id"], i["recurrence"]) for i in items] == [
        ("series0sub", ["RRULE:FREQ=WEEKLY;COUNT=4"])
    ]
    assert len(instance_ids(account, calendar_id, "series0sub")) == 4
    daily = timed("2026-11-21", 12, zone="UTC") | {
        "summary": "daily",
        "recurrence": ["RRULE:FREQ=DAILY"],
    }
    assert events.insert(calendarId=calendar_id, body=daily).execute()["recurrence"] == [
        "RRULE:FREQ=DAILY"
    ]
