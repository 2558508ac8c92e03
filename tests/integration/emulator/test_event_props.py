"""transparency, visibility, colorId and conferenceData through the real googleapiclient
(`calsync.emulator.conference`, decisions P1-P4)."""

from __future__ import annotations

from typing import Any

import pytest

from calsync.emulator.testing import EmulatorControl
from tests.integration.emulator.conftest import Account, timed
from tests.integration.emulator.helpers import google_error, list_all

MEET_REQUEST = {
    "createRequest": {"requestId": "req-1", "conferenceSolutionKey": {"type": "hangoutsMeet"}}
}


def insert(account: Account, calendar_id: str, version: int | None = 1, **body: Any) -> Any:
    params: dict[str, Any] = {} if version is None else {"conferenceDataVersion": version}
    return (
        account.service.events()
        .insert(calendarId=calendar_id, body=timed("2026-11-21", 10) | body, **params)
        .execute()
    )


def get(account: Account, calendar_id: str, event_id: str) -> Any:
    return account.service.events().get(calendarId=calendar_id, eventId=event_id).execute()


def test_transparency_visibility_and_colour_are_stored_and_checked(
    account: Account, calendar_id: str
) -> None:
    created = insert(
        account, calendar_id, transparency="transparent", visibility="private", colorId="11"
    )
    fetched = get(account, calendar_id, created["id"])
    assert (fetched["transparency"], fetched["visibility"], fetched["colorId"]) == (
        "transparent",
        "private",
        "11",
    )
    for field, value in (("colorId", "12"), ("transparency", "busy"), ("visibility", "x")):
        status, reason, _ = google_error(
            lambda f=field, v=value: insert(account, calendar_id, **{f: v})
        )
        assert (status, reason) == (400, "invalid")


def test_a_create_request_is_pending_then_succeeds_on_the_next_read(
    account: Account, calendar_id: str
) -> None:
    # When an event asks for a Meet conference at conferenceDataVersion=1
    created = insert(account, calendar_id, id="ca1s0conf01", conferenceData=MEET_REQUEST)

    # Then the answer shows the request pending, without an address yet
    data = created["conferenceData"]
    assert data["createRequest"]["status"] == {"statusCode": "pending"}
    assert data["createRequest"]["requestId"] == "req-1"
    assert "entryPoints" not in data

    # And the next read finds it created (a change: a new etag)
    fetched = get(account, calendar_id, "ca1s0conf01")
    made = fetched["conferenceData"]
    assert made["createRequest"]["status"] == {"statusCode": "success"}
    assert made["conferenceSolution"]["key"] == {"type": "hangoutsMeet"}
    (point,) = made["entryPoints"]
    assert point["entryPointType"] == "video"
    assert point["uri"] == f"https://meet.google.com/{made['conferenceId']}"
    assert fetched["etag"] != created["etag"]


def test_the_completion_is_a_change_an_incremental_sync_sees(
    account: Account, calendar_id: str, control: EmulatorControl
) -> None:
    control.configure(conference_delay_seconds=60)
    created = insert(account, calendar_id, conferenceData=MEET_REQUEST)
    items, token, _ = list_all(account.service, calendar_id)
    assert [i["conferenceData"]["createRequest"]["status"]["statusCode"] for i in items] == [
        "pending"
    ]

    control.advance_clock(60)
    page = account.service.events().list(calendarId=calendar_id, syncToken=token).execute()

    (changed,) = page["items"]
    assert changed["id"] == created["id"]
    assert changed["conferenceData"]["createRequest"]["status"] == {"statusCode": "success"}


def test_a_failed_request_has_no_entry_points(
    account: Account, calendar_id: str, control: EmulatorControl
) -> None:
    control.configure(conference_outcome="failure")
    created = insert(account, calendar_id, conferenceData=MEET_REQUEST)
    data = get(account, calendar_id, created["id"])["conferenceData"]
    assert data["createRequest"]["status"] == {"statusCode": "failure"}
    assert "entryPoints" not in data


def test_writes_without_version_1_ignore_conference_data_and_drop_the_link(
    account: Account, calendar_id: str
) -> None:
    # An insert at version 0 ignores the request
    plain = insert(account, calendar_id, version=None, conferenceData=MEET_REQUEST)
    assert "conferenceData" not in plain

    # A created conference survives a patch at version 1 that does not name it
    made = insert(account, calendar_id, conferenceData=MEET_REQUEST)
    link = get(account, calendar_id, made["id"])["conferenceData"]["entryPoints"][0]["uri"]
    events = account.service.events()
    kept = events.patch(
        calendarId=calendar_id, eventId=made["id"], body={"summary": "a"}, conferenceDataVersion=1
    ).execute()
    assert kept["conferenceData"]["entryPoints"][0]["uri"] == link

    # The same request id again is ignored: the conference stays as it is
    again = events.patch(
        calendarId=calendar_id,
        eventId=made["id"],
        body={"conferenceData": MEET_REQUEST},
        conferenceDataVersion=1,
    ).execute()
    assert again["conferenceData"]["entryPoints"][0]["uri"] == link

    # But a patch without version 1 drops it
    dropped = events.patch(
        calendarId=calendar_id, eventId=made["id"], body={"summary": "b"}
    ).execute()
    assert "conferenceData" not in dropped
    assert "conferenceData" not in get(account, calendar_id, made["id"])


def test_an_update_at_version_1_without_it_and_null_remove_the_conference(
    account: Account, calendar_id: str
) -> None:
    events = account.service.events()
    first = insert(account, calendar_id, conferenceData=MEET_REQUEST)
    current = get(account, calendar_id, first["id"])
    body = {k: current[k] for k in ("start", "end", "summary") if k in current}
    replaced = events.update(
        calendarId=calendar_id, eventId=first["id"], body=body, conferenceDataVersion=1
    ).execute()
    assert "conferenceData" not in replaced

    second = insert(account, calendar_id, conferenceData=MEET_REQUEST)
    removed = events.patch(
        calendarId=calendar_id,
        eventId=second["id"],
        body={"conferenceData": None},
        conferenceDataVersion=1,
    ).execute()
    assert "conferenceData" not in removed


@pytest.mark.parametrize(
    ("data", "params"),
    [
        ({"createRequest": {"conferenceSolutionKey": {"type": "hangoutsMeet"}}}, {}),
        ({"createRequest": {"requestId": "r", "conferenceSolutionKey": {"type": "zoom"}}}, {}),
        ({"entryPoints": []}, {}),
        (MEET_REQUEST, {"conferenceDataVersion": 2}),
    ],
)
def test_malformed_conference_writes_are_400(
    account: Account, calendar_id: str, data: Any, params: dict[str, Any]
) -> None:
    version = params.get("conferenceDataVersion", 1)
    status, reason, _ = google_error(
        lambda: insert(account, calendar_id, version=version, conferenceData=data)
    )
    assert status == 400
    assert reason in ("invalid", "required")
