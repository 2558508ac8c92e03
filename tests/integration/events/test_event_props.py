"""Transparency, visibility, colour and conference links through the API, Google (the
emulator, through the real client library) and back (decisions P1-P5)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import jsonschema  # type: ignore[import-untyped]
import pytest

from calsync.config import ConflictPolicy, Settings
from calsync.domain.event_props import Conference, ConferenceStatus
from calsync.store import event_changes
from calsync.store.events import load_stored
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, User, running

pytestmark = pytest.mark.integration

BODY = {
    "title": "Standup",
    "start_time": "2031-03-04T10:00:00Z",
    "end_time": "2031-03-04T10:15:00Z",
}
MEET = {"conference": {"create": "meet"}}


def listing(app: EventsApp, user: User) -> list[dict[str, Any]]:
    response = app.client.get(
        "/events",
        params={"start_date": "2031-03-01", "end_date": "2031-03-31"},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["events"]
    return items


def writes_to_google(app: EventsApp) -> list[dict[str, Any]]:
    return [
        r
        for r in app.control.requests()
        if r["method"] in ("POST", "PUT", "PATCH")
        and "/events" in r["path"]
        and not r["path"].endswith("/watch")
    ]


def conference_version(request: dict[str, Any]) -> list[str]:
    return parse_qs(request["query"]).get("conferenceDataVersion", [])


def test_the_fields_reach_google_and_come_back_per_user(any_app: EventsApp) -> None:
    app = any_app
    alice, bob = app.connect("alice@example.com"), app.connect("bob@example.com")

    # Given alice's event that is free, private and tomato red, and bob's plain one
    created = app.create(
        alice, BODY | {"transparency": "transparent", "visibility": "private", "color_id": "11"}
    )
    plain = app.create(bob, BODY)
    assert (created["transparency"], created["visibility"], created["color_id"]) == (
        "transparent",
        "private",
        "11",
    )
    assert (plain["transparency"], plain["visibility"], plain["color_id"]) == (
        "opaque",
        "default",
        None,
    )
    app.push_all()

    # Then Google holds them
    remote = app.google_event(alice, created["google_event_id"])
    assert (remote["transparency"], remote["visibility"], remote["colorId"]) == (
        "transparent",
        "private",
        "11",
    )
    assert "colorId" not in app.google_event(bob, plain["google_event_id"])
    assert [conference_version(r) for r in writes_to_google(app)] == [["1"], ["1"]]

    # When another client changes them on Google and calsync pulls
    app.remote(alice).patch(
        calendarId=alice.primary,
        eventId=created["google_event_id"],
        body={"transparency": "opaque", "visibility": "public", "colorId": "3"},
    ).execute()
    app.pull(alice)
    app.control.clear_requests()

    # Then alice sees Google's values, and bob's listing shows only his own event's
    shown = app.get(alice, created["id"])
    assert (shown["transparency"], shown["visibility"], shown["color_id"]) == (
        "opaque",
        "public",
        "3",
    )
    assert [(e["id"], e["color_id"], e["visibility"]) for e in listing(app, bob)] == [
        (plain["id"], None, "default")
    ]

    # And a PATCH that clears the colour and sets free time reaches Google too
    response = app.client.patch(
        f"/events/{created['id']}",
        json={"color_id": None, "transparency": "transparent", "visibility": None},
        headers=alice.headers,
    )
    assert response.status_code == 200, response.text
    assert (response.json()["color_id"], response.json()["visibility"]) == (None, "default")
    app.push_all()
    remote = app.google_event(alice, created["google_event_id"])
    assert "colorId" not in remote
    assert (remote["transparency"], remote["visibility"]) == ("transparent", "default")
    # every write declared conference support, so none could drop a link
    assert [conference_version(r) for r in writes_to_google(app)] == [["1"]]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("transparency", "busy"),
        ("transparency", True),
        ("visibility", "secret"),
        ("color_id", 5),
        ("color_id", "12"),
        ("color_id", "0"),
        ("conference", {"create": "zoom"}),
        ("conference", {"create": "meet", "uri": "https://example.com"}),
        ("conference", "meet"),
    ],
)
def test_bad_values_are_422_naming_the_field_and_change_nothing(
    any_app: EventsApp, field: str, value: Any
) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    created = app.create(alice, BODY)

    refused = app.client.post("/events", json=BODY | {field: value}, headers=alice.headers)
    changed = app.client.patch(
        f"/events/{created['id']}", json={field: value, "title": "x"}, headers=alice.headers
    )

    for response in (refused, changed):
        assert response.status_code == 422, response.text
        assert [d["field"] for d in response.json()["error"]["details"]] == [field]
    assert [e["id"] for e in listing(app, alice)] == [created["id"]]
    assert app.get(alice, created["id"])["etag"] == created["etag"]


def test_a_meet_link_is_asked_for_and_shows_once_google_made_it(any_app: EventsApp) -> None:
    app = any_app
    alice, bob = app.connect("alice@example.com"), app.connect("bob@example.com")

    # When alice and bob each create an event with a Meet link
    created = app.create(alice, BODY | MEET)
    other = app.create(bob, BODY | MEET)
    assert created["conference"] == {"status": "pending", "uri": None, "solution": "hangoutsMeet"}
    app.push_all()

    # Then Google got a create request under the event's own Google id
    inserts = [r for r in writes_to_google(app) if r["method"] == "POST"]
    assert [conference_version(r) for r in inserts] == [["1"], ["1"]]
    assert app.get(alice, created["id"])["conference"]["status"] == "pending"

    # And once Google made it (the next pull), each event shows its own link
    app.pull(alice)
    app.pull(bob)
    mine, theirs = app.get(alice, created["id"]), app.get(bob, other["id"])
    assert mine["conference"]["status"] == "success"
    assert mine["conference"]["solution"] == "hangoutsMeet"
    assert mine["conference"]["uri"].startswith("https://meet.google.com/")
    assert theirs["conference"]["uri"].startswith("https://meet.google.com/")
    assert mine["conference"]["uri"] != theirs["conference"]["uri"]
    remote = app.google_event(alice, created["google_event_id"])
    request = remote["conferenceData"]["createRequest"]
    assert request["requestId"] == created["google_event_id"]
    assert request["conferenceSolutionKey"] == {"type": "hangoutsMeet"}
    assert remote["conferenceData"]["entryPoints"][0]["uri"] == mine["conference"]["uri"]
    assert [e["conference"] for e in listing(app, bob)] == [theirs["conference"]]
    assert mine["sync_state"] == "synced"


def test_edits_keep_the_link_and_null_removes_it(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    created = app.create(alice, BODY | MEET)
    app.push_all()
    app.pull(alice)
    link = app.get(alice, created["id"])["conference"]["uri"]
    app.control.clear_requests()

    # When alice changes the title (and asks for a link again: it has one)
    response = app.put(alice, created["id"], {"title": "Standup (moved)"} | MEET)
    assert response.status_code == 200, response.text
    app.push_all()

    # Then Google keeps the link, and the patch declared conference support
    (patch,) = writes_to_google(app)
    assert (patch["method"], conference_version(patch)) == ("PATCH", ["1"])
    remote = app.google_event(alice, created["google_event_id"])
    assert remote["summary"] == "Standup (moved)"
    assert remote["conferenceData"]["entryPoints"][0]["uri"] == link
    app.pull(alice)
    assert app.get(alice, created["id"])["conference"]["uri"] == link

    # When alice removes the conference, it is gone on Google too
    response = app.put(alice, created["id"], {"conference": None})
    assert response.status_code == 200, response.text
    assert response.json()["conference"] is None
    app.push_all()
    assert "conferenceData" not in app.google_event(alice, created["google_event_id"])
    app.pull(alice)
    assert app.get(alice, created["id"])["conference"] is None


def test_a_slow_or_failed_creation_shows_as_such_and_may_be_asked_again(
    any_app: EventsApp,
) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    app.control.configure(conference_delay_seconds=600, conference_outcome="failure")
    created = app.create(alice, BODY | MEET)
    app.push_all()

    # While Google works on it, pulls see it pending
    app.pull(alice)
    assert app.get(alice, created["id"])["conference"]["status"] == "pending"

    # Then it fails: no link
    app.control.advance_clock(600)
    app.pull(alice)
    assert app.get(alice, created["id"])["conference"] == {
        "status": "failure",
        "uri": None,
        "solution": "hangoutsMeet",
    }

    # Asked again, a new request (Google ignores a request id it has seen) succeeds
    app.control.configure(conference_delay_seconds=0, conference_outcome="success")
    response = app.put(alice, created["id"], MEET)
    assert response.json()["conference"]["status"] == "pending"
    app.push_all()
    app.pull(alice)
    shown = app.get(alice, created["id"])
    assert shown["conference"]["status"] == "success"
    assert shown["conference"]["uri"].startswith("https://meet.google.com/")
    request = app.google_event(alice, created["google_event_id"])["conferenceData"]
    assert request["createRequest"]["requestId"] != created["google_event_id"]


@pytest.fixture
def remote_wins(production_settings: Settings, fake_google: FakeGoogle) -> Iterator[EventsApp]:
    yield from running(production_settings, fake_google, conflict_policy=ConflictPolicy.REMOTE_WINS)


def test_the_fields_merge_like_the_others(remote_wins: EventsApp) -> None:
    app = remote_wins
    alice = app.connect("alice@example.com")
    created = app.create(alice, BODY | {"color_id": "2"})
    app.push_all()

    # Given Google changes the colour and visibility, while alice changes the colour and
    # the transparency
    app.remote(alice).patch(
        calendarId=alice.primary,
        eventId=created["google_event_id"],
        body={"colorId": "7", "visibility": "confidential"},
    ).execute()
    response = app.put(alice, created["id"], {"color_id": "4", "transparency": "transparent"})
    assert response.status_code == 200, response.text

    # When the push meets Google's change (412) and merges
    app.push_all()

    # Then each side's own change survives, and the colour follows the policy (remote)
    shown = app.get(alice, created["id"])
    remote = app.google_event(alice, created["google_event_id"])
    assert (shown["color_id"], shown["visibility"], shown["transparency"]) == (
        "7",
        "confidential",
        "transparent",
    )
    assert (remote["colorId"], remote["visibility"], remote["transparency"]) == (
        "7",
        "confidential",
        "transparent",
    )
    assert shown["sync_state"] == "synced"


def test_a_push_answered_with_the_conference_made_stores_it(any_app: EventsApp) -> None:
    """Google may answer a create request with the conference made already: that answer
    carries the push's own etag, which the pull skips as an echo, so the push stores it
    (decisions P3)."""
    app = any_app
    alice = app.connect("alice@example.com")
    created = app.create(alice, BODY | MEET)
    event_id = uuid.UUID(created["id"])
    with app.services.sessions() as session:
        stored = load_stored(session, event_id)
    assert stored is not None
    made = Conference(
        status=ConferenceStatus.SUCCESS,
        solution="hangoutsMeet",
        uri="https://meet.google.com/abc-defg-hij",
        request_id=created["google_event_id"],
    )
    answer = dataclasses.replace(stored.event, etag='"9"', conference=made)

    with app.services.sessions.begin() as session:
        assert event_changes.record_pushed(
            session, event_id, pushed=stored.event, remote=answer, version=stored.version
        )
        event_changes.adopt_conference(
            session, event_id, pushed=stored.event, remote=answer, version=stored.version
        )

    shown = app.get(alice, created["id"])
    assert shown["conference"] == {
        "status": "success",
        "uri": "https://meet.google.com/abc-defg-hij",
        "solution": "hangoutsMeet",
    }
    assert shown["etag"] != created["etag"]
    assert shown["sync_state"] == "synced"


def test_answers_with_the_fields_fit_the_openapi_schema(any_app: EventsApp) -> None:
    app = any_app
    document = app.client.get("/openapi.json").json()
    schema = {"$ref": "#/components/schemas/Event", "components": document["components"]}
    alice = app.connect("alice@example.com")
    created = app.create(
        alice,
        BODY | MEET | {"transparency": "transparent", "visibility": "public", "color_id": "1"},
    )
    jsonschema.validate(created, schema)
    app.push_all()
    app.pull(alice)
    made = app.get(alice, created["id"])
    assert made["conference"]["status"] == "success"
    jsonschema.validate(made, schema)
    jsonschema.validate(app.get(alice, app.create(alice, BODY)["id"]), schema)
