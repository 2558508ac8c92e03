"""transparency, visibility, colorId and conferenceData <-> Event (decisions P1-P4)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from calsync.domain.conflicts import ConflictPolicy, merge
from calsync.domain.event_props import Conference, ConferenceStatus, Transparency, Visibility
from calsync.domain.models import Event, EventTime
from calsync.providers.google.mapping import event_from_google, event_to_google

START = EventTime.at(datetime(2031, 3, 4, 10, tzinfo=UTC), "UTC")
EVENT = Event(start=START, end=START, title="x")
MADE = Conference(
    status=ConferenceStatus.SUCCESS,
    solution="hangoutsMeet",
    uri="https://meet.google.com/abc-defg-hij",
    request_id="r1",
    conference_id="abc-defg-hij",
)


def read(**resource: Any) -> Event:
    return event_from_google(
        {"id": "abcde12345", "start": {"date": "2031-03-04"}, "end": {"date": "2031-03-05"}}
        | resource,
        "UTC",
    )


def test_absent_and_unknown_values_read_as_googles_defaults() -> None:
    plain = read()
    assert (plain.transparency, plain.visibility, plain.color_id, plain.conference) == (
        Transparency.OPAQUE,
        Visibility.DEFAULT,
        None,
        None,
    )
    odd = read(transparency="sometimes", visibility=7, colorId="x\x00", conferenceData=[1])
    assert (odd.transparency, odd.visibility, odd.color_id, odd.conference) == (
        Transparency.OPAQUE,
        Visibility.DEFAULT,
        None,
        None,
    )


def test_a_created_conference_reads_its_video_entry_point() -> None:
    event = read(
        conferenceData={
            "createRequest": {
                "requestId": "r1",
                "conferenceSolutionKey": {"type": "hangoutsMeet"},
                "status": {"statusCode": "success"},
            },
            "entryPoints": [
                {"entryPointType": "phone", "uri": "tel:+1-555-0100"},
                {"entryPointType": "video", "uri": "https://meet.google.com/abc-defg-hij"},
            ],
            "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
            "conferenceId": "abc-defg-hij",
        }
    )
    assert event.conference == MADE


def test_a_conference_added_without_a_request_is_a_success() -> None:
    event = read(
        conferenceData={
            "entryPoints": [{"entryPointType": "more", "uri": "https://example.com/join"}],
            "conferenceSolution": {"key": {"type": "addOn"}},
        }
    )
    assert event.conference == Conference(
        status=ConferenceStatus.SUCCESS, solution="addOn", uri="https://example.com/join"
    )


def test_a_new_meet_request_is_sent_as_a_create_request() -> None:
    asked = dataclasses.replace(EVENT, conference=Conference.meet_request("abc123"))
    body = event_to_google(asked, calsync_id="c")
    assert body["conferenceData"] == {
        "createRequest": {"requestId": "abc123", "conferenceSolutionKey": {"type": "hangoutsMeet"}}
    }
    # sent back as Google answers it, the request reads as the same value
    answer = body | {"id": "abcde12345"}
    answer["conferenceData"]["createRequest"]["status"] = {"statusCode": "pending"}
    assert event_from_google(answer, "UTC").conference == asked.conference


@pytest.mark.parametrize(
    ("before", "after", "sent"),
    [
        (None, None, "left out"),
        (MADE, MADE, "left out"),
        (Conference.meet_request("r1"), Conference.meet_request("r1"), "left out"),
        (Conference.meet_request("r1"), MADE, "left out"),  # never copied back
        (MADE, None, None),
        (
            dataclasses.replace(MADE, status=ConferenceStatus.FAILURE, uri=None),
            Conference.meet_request("r2"),
            {
                "createRequest": {
                    "requestId": "r2",
                    "conferenceSolutionKey": {"type": "hangoutsMeet"},
                }
            },
        ),
    ],
)
def test_a_patch_touches_conference_data_only_to_ask_or_remove(
    before: Conference | None, after: Conference | None, sent: Any
) -> None:
    previous = dataclasses.replace(EVENT, conference=before)
    body = event_to_google(
        dataclasses.replace(EVENT, conference=after), calsync_id="c", previous=previous
    )
    assert body.get("conferenceData", "left out") == sent


def test_colour_is_cleared_only_when_google_had_one() -> None:
    coloured = dataclasses.replace(EVENT, color_id="4")
    assert event_to_google(coloured, calsync_id="c")["colorId"] == "4"
    assert "colorId" not in event_to_google(EVENT, calsync_id="c")
    assert event_to_google(EVENT, calsync_id="c", previous=coloured)["colorId"] is None
    assert "colorId" not in event_to_google(EVENT, calsync_id="c", previous=EVENT)
    assert "colorId" not in event_to_google(coloured, calsync_id="c", previous=coloured)


def test_a_patch_sends_only_the_properties_that_changed() -> None:
    # A row stored before these fields existed holds the defaults, whatever Google has:
    # an edit of its title must not reset Google's transparency or visibility
    retitled = dataclasses.replace(EVENT, title="y")
    body = event_to_google(retitled, calsync_id="c", previous=EVENT)
    assert not {"transparency", "visibility", "colorId", "conferenceData"} & set(body)
    free = dataclasses.replace(EVENT, transparency=Transparency.TRANSPARENT)
    body = event_to_google(free, calsync_id="c", previous=EVENT)
    assert body["transparency"] == "transparent"
    assert "visibility" not in body
    inserted = event_to_google(EVENT, calsync_id="c")
    assert (inserted["transparency"], inserted["visibility"]) == ("opaque", "default")


def test_the_fields_merge_one_by_one() -> None:
    base = EVENT
    local = dataclasses.replace(base, color_id="4", transparency=Transparency.TRANSPARENT)
    remote = dataclasses.replace(base, color_id="7", visibility=Visibility.PRIVATE, conference=MADE)
    result = merge(base, local, remote, policy=ConflictPolicy.LOCAL_WINS)
    merged = result.merged
    assert (merged.color_id, merged.transparency, merged.visibility, merged.conference) == (
        "4",
        Transparency.TRANSPARENT,
        Visibility.PRIVATE,
        MADE,
    )
    assert [r.field for r in result.conflicts] == ["color_id"]
