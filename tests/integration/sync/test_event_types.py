"""Events of every type, pulled through push notifications and written back, for several
users on each database (the whole stack: API, webhook, worker threads, the emulator)."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest
import sqlalchemy as sa

from calsync.store.tables import User
from calsync.sync.pull import pull_calendar
from tests.integration.sync.conftest import SyncStack, wait_until
from tests.integration.sync.test_several_users import sign_in

pytestmark = pytest.mark.integration

ANN, BEN = "ann@example.com", "ben@example.com"


def at(hour: int, day: str = "2026-06-01") -> dict[str, str]:
    return {"dateTime": f"{day}T{hour:02d}:00:00Z"}


def listed(stack: SyncStack, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    answer = httpx.get(
        f"{stack.url}/events",
        headers=headers,
        params={"start_date": "2026-01-01", "end_date": "2026-12-31"},
    )
    assert answer.status_code == 200, answer.text
    return {e["title"]: e for e in answer.json()["events"]}


def as_user(stack: SyncStack, email: str) -> None:
    """Point the stack's store helpers at the user `email` signed in as."""
    with stack.services.sessions() as session:
        found = session.scalar(sa.select(User.id).where(User.email == email))
    assert found is not None
    stack.user_id, stack.email = found, email


def test_every_type_arrives_by_push_and_allowed_edits_go_back(any_stack: SyncStack) -> None:
    headers = {email: sign_in(any_stack, email) for email in (ANN, BEN)}
    ann = any_stack.google_as(ANN).events()
    ann.insert(
        calendarId="primary",
        body={
            "summary": "Away",
            "eventType": "outOfOffice",
            "outOfOfficeProperties": {"autoDeclineMode": "declineAllConflictingInvitations"},
            "start": at(9),
            "end": at(17),
        },
    ).execute()
    ann.insert(
        calendarId="primary",
        body={
            "summary": "Office",
            "eventType": "workingLocation",
            "workingLocationProperties": {
                "type": "customLocation",
                "customLocation": {"label": "Café"},
            },
            "start": {"date": "2026-06-02"},
            "end": {"date": "2026-06-03"},
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
        },
    ).execute()
    any_stack.control.seed_event(
        ANN,
        {
            "eventType": "birthday",
            "summary": "Cat's birthday",
            "start": {"date": "2026-06-03"},
            "end": {"date": "2026-06-04"},
            "recurrence": ["RRULE:FREQ=YEARLY"],
            "birthdayProperties": {"type": "birthday", "contact": "people/c7"},
        },
    )
    gmail = {"eventType": "fromGmail", "start": at(8, "2026-06-05"), "end": at(10, "2026-06-05")}
    any_stack.control.seed_event(ANN, gmail | {"summary": "Ann's flight"})
    any_stack.control.seed_event(BEN, gmail | {"summary": "Ben's dinner"})
    any_stack.google_as(BEN).events().insert(
        calendarId="primary", body={"summary": "Ben's meeting", "start": at(9), "end": at(10)}
    ).execute()

    # Each user's store comes to hold exactly Google's copy, types and properties included
    as_user(any_stack, ANN)
    remote = any_stack.wait_in_sync(ANN, email=ANN)
    assert {e.event_type for e in remote.values()} == {
        "outOfOffice",
        "workingLocation",
        "birthday",
        "fromGmail",
    }
    as_user(any_stack, BEN)
    any_stack.wait_in_sync(BEN, email=BEN)
    anns, bens = listed(any_stack, headers[ANN]), listed(any_stack, headers[BEN])
    assert {t: e["event_type"] for t, e in anns.items()} == {
        "Away": "outOfOffice",
        "Office": "workingLocation",
        "Cat's birthday": "birthday",
        "Ann's flight": "fromGmail",
    }
    assert anns["Office"]["working_location"] == {
        "type": "customLocation",
        "custom_location": {"label": "Café"},
    }
    assert {t: e["event_type"] for t, e in bens.items()} == {
        "Ben's dinner": "fromGmail",
        "Ben's meeting": "default",
    }

    # An edit Google refuses is refused at once; an allowed one reaches Google
    flight = anns["Ann's flight"]
    url = f"{any_stack.url}/events/{flight['id']}"
    refused = httpx.put(url, json={"title": "Mine"}, headers=headers[ANN])
    assert refused.status_code == 403, refused.text
    answer = httpx.put(url, json={"reminders": [120]}, headers=headers[ANN])
    assert answer.status_code == 200, answer.text

    def reminded() -> bool:
        got = ann.get(calendarId="primary", eventId=flight["google_event_id"]).execute()
        return bool(got["reminders"].get("overrides") == [{"method": "popup", "minutes": 120}])

    wait_until(reminded, what="the reminder on Google")
    wait_until(
        lambda: listed(any_stack, headers[ANN])["Ann's flight"]["sync_state"] == "synced",
        what="the flight synced",
    )
    assert listed(any_stack, headers[ANN])["Ann's flight"]["title"] == "Ann's flight"


def test_a_full_pull_stores_every_type_in_one_go(hand_stack: SyncStack) -> None:
    user_id = hand_stack.connect_pulled(ANN)
    assert user_id
    for kind, summary in (("fromGmail", "Hotel"), ("fromGmail", "Train")):
        hand_stack.control.seed_event(
            ANN, {"eventType": kind, "summary": summary, "start": at(8), "end": at(9)}
        )
    hand_stack.google_as(ANN).events().insert(
        calendarId="primary",
        body={
            "summary": "Focus",
            "eventType": "focusTime",
            "focusTimeProperties": {"chatStatus": "available"},
            "start": at(10),
            "end": at(12),
        },
    ).execute()
    hand_stack.control.invalidate_sync_tokens(ANN)  # a 410: the next pull lists everything

    result = pull_calendar(hand_stack.services, hand_stack.calendar_row(ANN).id)

    assert result.status == "ok"
    local = hand_stack.local_events(ANN)
    assert local == hand_stack.remote_events(ANN)
    assert sorted(e.event_type for e in local.values()) == ["focusTime", "fromGmail", "fromGmail"]
