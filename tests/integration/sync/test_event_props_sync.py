"""Colour, busy/free, visibility and Meet links through the whole stack (API, webhook,
workers) and through hand-run pulls, on each database, for several users (decisions
P1-P4): each user sees their own values and their own link only."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest
import sqlalchemy as sa

from calsync.store.tables import Calendar
from calsync.sync.pull import pull_calendar
from tests.integration.sync.conftest import SyncStack, wait_until
from tests.integration.sync.test_several_users import sign_in

pytestmark = pytest.mark.integration

EMAILS = ("ann@example.com", "ben@example.com")
BODY = {"start_time": "2026-06-01T09:00:00Z", "end_time": "2026-06-01T10:00:00Z"}


def events(stack: SyncStack, headers: dict[str, str]) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{stack.url}/events",
        headers=headers,
        params={"start_date": "2026-01-01", "end_date": "2026-12-31"},
    )
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["events"]
    return found


def test_a_meet_link_reaches_each_user_through_the_push_and_the_webhook(
    any_stack: SyncStack,
) -> None:
    headers = {email: sign_in(any_stack, email) for email in EMAILS}
    # (sign-in lists the calendars in a job: an event needs its calendar stored first)
    for email in EMAILS:
        wait_until(
            lambda email=email: httpx.get(
                f"{any_stack.url}/calendars", headers=headers[email]
            ).json()["calendars"],
            what=f"{email}'s calendars",
        )

    # When each user creates an event with a Meet link and a colour of their own
    for number, email in enumerate(EMAILS, start=1):
        created = httpx.post(
            f"{any_stack.url}/events",
            headers=headers[email],
            json=BODY | {"title": email, "color_id": str(number), "conference": {"create": "meet"}},
        )
        assert created.status_code == 201, created.text

    # Then the workers push it, Google creates the link, its notification brings it back
    def linked(email: str) -> bool:
        (event,) = events(any_stack, headers[email])
        conference = event["conference"]
        return conference is not None and conference["status"] == "success"

    for email in EMAILS:
        wait_until(lambda email=email: linked(email), what=f"{email}'s Meet link")
    shown = {email: events(any_stack, headers[email])[0] for email in EMAILS}
    assert [shown[email]["title"] for email in EMAILS] == list(EMAILS)
    assert [shown[email]["color_id"] for email in EMAILS] == ["1", "2"]
    uris = [shown[email]["conference"]["uri"] for email in EMAILS]
    assert len(set(uris)) == 2
    # and Google holds each link on the event calsync created, under that event's id
    for email, uri in zip(EMAILS, uris, strict=True):
        (item,) = any_stack.google_as(email).events().list(calendarId="primary").execute()["items"]
        assert item["conferenceData"]["entryPoints"][0]["uri"] == uri
        assert item["conferenceData"]["createRequest"]["requestId"] == item["id"]
        assert item["colorId"] == shown[email]["color_id"]


def test_values_set_on_google_are_pulled_for_their_owner_only(hand_stack: SyncStack) -> None:
    ann = hand_stack.connect_pulled("ann@example.com")
    ben = hand_stack.connect_pulled("ben@example.com")
    # Given another client sets ann's event free, confidential and green with a link
    hand_stack.google_as("ann@example.com").events().insert(
        calendarId="primary",
        conferenceDataVersion=1,
        body={
            "summary": "ann's",
            "start": {"dateTime": "2026-06-01T09:00:00Z"},
            "end": {"dateTime": "2026-06-01T10:00:00Z"},
            "transparency": "transparent",
            "visibility": "confidential",
            "colorId": "10",
            "conferenceData": {
                "createRequest": {
                    "requestId": "other-client-1",
                    "conferenceSolutionKey": {"type": "hangoutsMeet"},
                }
            },
        },
    ).execute()
    hand_stack.google_as("ben@example.com").events().insert(
        calendarId="primary",
        body={
            "summary": "ben's",
            "start": {"dateTime": "2026-06-01T09:00:00Z"},
            "end": {"dateTime": "2026-06-01T10:00:00Z"},
        },
    ).execute()

    # When both calendars are pulled
    with hand_stack.services.sessions() as session:
        calendar_ids = session.scalars(sa.select(Calendar.id)).all()
    for calendar_id in calendar_ids:
        assert pull_calendar(hand_stack.services, calendar_id).status == "ok"

    # Then ann's event shows Google's values and the link Google made, ben's the defaults
    (mine,) = events(hand_stack, hand_stack.headers(ann))
    (theirs,) = events(hand_stack, hand_stack.headers(ben))
    assert (mine["transparency"], mine["visibility"], mine["color_id"]) == (
        "transparent",
        "confidential",
        "10",
    )
    assert mine["conference"]["status"] == "success"
    assert mine["conference"]["uri"].startswith("https://meet.google.com/")
    assert (theirs["transparency"], theirs["visibility"], theirs["color_id"]) == (
        "opaque",
        "default",
        None,
    )
    assert theirs["conference"] is None
