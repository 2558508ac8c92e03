"""Recurring series where the emulator used to differ from Google (issue 17, items 7-10).

- A DTSTART that its rule does not produce is still the series' first instance (Google
  lists it, RFC 5545 §3.8.5.3: "the DTSTART property defines the first instance"), and
  it can be read, edited and deleted by its instance id.
- An instance whose wall-clock time falls in a spring-forward gap is listed at the
  shifted time and can be read and edited by the id it is listed under.
- A window (``timeMax``) lists every instance in it: the 730-instance cap applies only
  to expansions without an upper bound.
- An event across the fall-back hour, given with explicit offsets, is as long as its
  instants say (45 minutes here), not reversed.
"""

from __future__ import annotations

from typing import Any

from tests.integration.emulator.conftest import Account
from tests.integration.emulator.helpers import google_error, list_all

NY = "America/New_York"


def _insert(account: Account, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return dict(account.service.events().insert(calendarId=calendar_id, body=body).execute())


def _instances(account: Account, calendar_id: str, event_id: str, **params: Any) -> list[Any]:
    items: list[Any] = []
    token = None
    while True:
        page = (
            account.service.events()
            .instances(calendarId=calendar_id, eventId=event_id, pageToken=token, **params)
            .execute()
        )
        items.extend(page["items"])
        token = page.get("nextPageToken")
        if token is None:
            return items


def _off_rule_series(account: Account, calendar_id: str) -> dict[str, Any]:
    # Wednesday 2024-01-03 10:00 New York; the rule yields Thursdays only.
    return _insert(
        account,
        calendar_id,
        {
            "id": "offrule0001",
            "summary": "off rule",
            "start": {"dateTime": "2024-01-03T10:00:00", "timeZone": NY},
            "end": {"dateTime": "2024-01-03T11:00:00", "timeZone": NY},
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=TH;COUNT=3"],
        },
    )


def test_a_dtstart_off_its_rule_is_the_first_instance(account: Account, calendar_id: str) -> None:
    _off_rule_series(account, calendar_id)
    ids = [i["id"] for i in _instances(account, calendar_id, "offrule0001")]
    # DTSTART counts as the first of COUNT=3 (RFC 5545 §3.3.10), then two Thursdays.
    assert ids == [
        "offrule0001_20240103T150000Z",
        "offrule0001_20240104T150000Z",
        "offrule0001_20240111T150000Z",
    ]
    items, _, _ = list_all(
        account.service,
        calendar_id,
        singleEvents=True,
        timeMin="2024-01-01T00:00:00Z",
        timeMax="2024-02-01T00:00:00Z",
    )
    assert [i["id"] for i in items] == ids


def test_a_dtstart_off_its_rule_can_be_read_edited_and_deleted(
    account: Account, calendar_id: str
) -> None:
    _off_rule_series(account, calendar_id)
    events = account.service.events()
    first = events.get(calendarId=calendar_id, eventId="offrule0001_20240103T150000Z").execute()
    assert first["start"]["dateTime"] == "2024-01-03T10:00:00-05:00"
    assert first["originalStartTime"]["dateTime"] == "2024-01-03T10:00:00-05:00"
    moved = events.patch(
        calendarId=calendar_id,
        eventId=first["id"],
        body={
            "summary": "moved",
            "start": {"dateTime": "2024-01-03T14:00:00", "timeZone": NY},
            "end": {"dateTime": "2024-01-03T15:00:00", "timeZone": NY},
        },
    ).execute()
    assert moved["id"] == "offrule0001_20240103T150000Z"
    listed = _instances(account, calendar_id, "offrule0001")
    assert [(i["summary"], i["start"]["dateTime"]) for i in listed] == [
        ("moved", "2024-01-03T14:00:00-05:00"),
        ("off rule", "2024-01-04T10:00:00-05:00"),
        ("off rule", "2024-01-11T10:00:00-05:00"),
    ]
    events.delete(calendarId=calendar_id, eventId=first["id"]).execute()
    assert len(_instances(account, calendar_id, "offrule0001")) == 2


def test_a_dtstart_off_its_rule_with_an_open_rule(account: Account, calendar_id: str) -> None:
    _insert(
        account,
        calendar_id,
        {
            "id": "offrule0002",
            "start": {"dateTime": "2024-01-03T10:00:00", "timeZone": NY},
            "end": {"dateTime": "2024-01-03T11:00:00", "timeZone": NY},
            "recurrence": ["RRULE:FREQ=MONTHLY;BYMONTHDAY=15"],
        },
    )
    listed = _instances(
        account,
        calendar_id,
        "offrule0002",
        timeMin="2024-01-01T00:00:00Z",
        timeMax="2024-03-01T00:00:00Z",
    )
    assert [i["start"]["dateTime"] for i in listed] == [
        "2024-01-03T10:00:00-05:00",
        "2024-01-15T10:00:00-05:00",
        "2024-02-15T10:00:00-05:00",
    ]
    # A window after the start does not show it.
    later = _instances(
        account,
        calendar_id,
        "offrule0002",
        timeMin="2024-01-10T00:00:00Z",
        timeMax="2024-03-01T00:00:00Z",
    )
    assert len(later) == 2


def test_an_excluded_off_rule_dtstart_is_not_listed(account: Account, calendar_id: str) -> None:
    _insert(
        account,
        calendar_id,
        {
            "id": "offrule0003",
            "start": {"dateTime": "2024-01-03T10:00:00", "timeZone": NY},
            "end": {"dateTime": "2024-01-03T11:00:00", "timeZone": NY},
            "recurrence": [
                "RRULE:FREQ=WEEKLY;BYDAY=TH;COUNT=3",
                "EXDATE;TZID=America/New_York:20240103T100000",
            ],
        },
    )
    ids = [i["id"] for i in _instances(account, calendar_id, "offrule0003")]
    assert ids == ["offrule0003_20240104T150000Z", "offrule0003_20240111T150000Z"]
    status, reason, _ = google_error(
        account.service.events()
        .get(calendarId=calendar_id, eventId="offrule0003_20240103T150000Z")
        .execute
    )
    assert (status, reason) == (404, "notFound")


def test_an_instance_in_a_daylight_saving_gap_can_be_read_and_edited(
    account: Account, calendar_id: str
) -> None:
    # 02:30 does not exist in New York on 2024-03-10; Google shows it at 03:30 EDT.
    _insert(
        account,
        calendar_id,
        {
            "id": "gapseries01",
            "summary": "gap",
            "start": {"dateTime": "2024-03-09T02:30:00", "timeZone": NY},
            "end": {"dateTime": "2024-03-09T03:00:00", "timeZone": NY},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
        },
    )
    listed = _instances(account, calendar_id, "gapseries01")
    gap = listed[1]
    assert gap["start"]["dateTime"] == "2024-03-10T03:30:00-04:00"
    events = account.service.events()
    got = events.get(calendarId=calendar_id, eventId=gap["id"]).execute()
    assert got["id"] == gap["id"]
    assert got["start"] == gap["start"]
    assert got["originalStartTime"] == gap["originalStartTime"]
    patched = events.patch(
        calendarId=calendar_id, eventId=gap["id"], body={"summary": "edited in the gap"}
    ).execute()
    assert patched["summary"] == "edited in the gap"
    again = _instances(account, calendar_id, "gapseries01")
    assert [i["summary"] for i in again] == ["gap", "edited in the gap", "gap"]
    assert [i["id"] for i in again] == [i["id"] for i in listed]


def test_a_window_lists_every_instance_beyond_730(account: Account, calendar_id: str) -> None:
    _insert(
        account,
        calendar_id,
        {
            "id": "dailies001",
            "start": {"dateTime": "2020-01-01T09:00:00", "timeZone": NY},
            "end": {"dateTime": "2020-01-01T09:30:00", "timeZone": NY},
            "recurrence": ["RRULE:FREQ=DAILY"],
        },
    )
    window = {"timeMin": "2020-01-01T00:00:00Z", "timeMax": "2023-01-01T00:00:00Z"}
    items, _, _ = list_all(
        account.service, calendar_id, singleEvents=True, maxResults=2500, **window
    )
    assert len(items) == 1096  # 2020-01-01 .. 2022-12-31, 2020 a leap year
    assert items[-1]["start"]["dateTime"] == "2022-12-31T09:00:00-05:00"
    assert len(_instances(account, calendar_id, "dailies001", **window)) == 1096
    # Without an upper bound Google stops after 730 instances.
    unbounded = _instances(account, calendar_id, "dailies001")
    assert len(unbounded) == 730


def test_an_event_across_the_fall_back_hour_keeps_its_instants(
    account: Account, calendar_id: str
) -> None:
    # 01:30 EDT (05:30Z) to 01:15 EST (06:15Z) on 2024-11-03: 45 minutes.
    created = _insert(
        account,
        calendar_id,
        {
            "summary": "across the hour",
            "start": {"dateTime": "2024-11-03T01:30:00-04:00", "timeZone": NY},
            "end": {"dateTime": "2024-11-03T01:15:00-05:00", "timeZone": NY},
        },
    )
    assert created["start"]["dateTime"] == "2024-11-03T01:30:00-04:00"
    assert created["end"]["dateTime"] == "2024-11-03T01:15:00-05:00"
    items, _, _ = list_all(
        account.service,
        calendar_id,
        singleEvents=True,
        timeMin="2024-11-03T06:00:00Z",
        timeMax="2024-11-03T07:00:00Z",
    )
    assert [i["id"] for i in items] == [created["id"]]


def test_an_event_in_the_repeated_hour_given_as_utc(account: Account, calendar_id: str) -> None:
    # 02:30-04:00 is 06:30Z = 01:30 EST; 02:15-05:00 is 07:15Z = 02:15 EST: 45 minutes.
    created = _insert(
        account,
        calendar_id,
        {
            "start": {"dateTime": "2024-11-03T02:30:00-04:00", "timeZone": NY},
            "end": {"dateTime": "2024-11-03T02:15:00-05:00", "timeZone": NY},
        },
    )
    assert created["start"]["dateTime"] == "2024-11-03T01:30:00-05:00"
    assert created["end"]["dateTime"] == "2024-11-03T02:15:00-05:00"
