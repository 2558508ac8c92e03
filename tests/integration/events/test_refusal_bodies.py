"""Every refusal of the event routes answers the same status and the same body, byte for
byte, now that the use cases raise domain errors and only `calsync.web.errors` maps them
(decision HE2): the bodies here are what the API answered before the move (this test
passes on main's code as on this one), for two users, on both databases; and a refused
request changes nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import sqlalchemy as sa

from calsync.store.tables import Event as EventRow
from calsync.store.tables import OutboxEntry
from calsync.sync import calendar_list
from tests.integration.events.conftest import EventsApp, User

GOOD = {"title": "x", "start_time": "2031-03-04T10:00:00Z", "end_time": "2031-03-04T11:00:00Z"}


def error(code: str, message: str, *details: tuple[str, str, str]) -> bytes:
    shown = [{"field": f, "issue": i, "message": m} for f, i, m in details]
    return orjson.dumps({"error": {"code": code, "message": message, "details": shown}})


def rows(app: EventsApp) -> tuple[int, int, list[Any]]:
    with app.services.sessions() as session:
        events = session.scalar(sa.select(sa.func.count()).select_from(EventRow))
        outbox = session.scalar(sa.select(sa.func.count()).select_from(OutboxEntry))
        versions = sorted(session.execute(sa.select(EventRow.id, EventRow.etag)).all())
    return events or 0, outbox or 0, versions


def _refusals(app: EventsApp, alice: User, mallory: User, event: dict[str, Any]) -> None:
    """Each refusal, its status and its body, for the event `event` of alice."""
    not_found = error("not_found", "no such event")
    path = f"/events/{event['id']}"
    for who, headers in (("mallory", mallory.headers), ("alice", alice.headers)):
        target = path if who == "mallory" else f"/events/{uuid.uuid4()}"
        got = app.client.get(target, headers=headers)
        assert (got.status_code, got.content) == (404, not_found), who
        got = app.client.put(target, json={"title": "t"}, headers=headers)
        assert (got.status_code, got.content) == (404, not_found), who
        got = app.client.delete(target, headers=headers)
        assert (got.status_code, got.content) == (404, not_found), who
    got = app.client.post(
        "/events", json=GOOD | {"calendar_id": str(alice.calendar_id)}, headers=mallory.headers
    )
    assert (got.status_code, got.content) == (404, error("not_found", "no such calendar"))
    stale = app.client.put(
        path, json={"title": "late"}, headers=alice.headers | {"If-Match": '"old"'}
    )
    message = "the event changed since you read it; GET it again"
    assert (stale.status_code, stale.content) == (412, error("precondition_failed", message))
    got = app.client.delete(path, headers=alice.headers | {"If-Match": '"old"'})
    assert (got.status_code, got.content) == (412, error("precondition_failed", message))
    got = app.client.put(
        path, json={"title": "t"}, params={"scope": "following"}, headers=alice.headers
    )
    expected = error(
        "validation_failed",
        "invalid fields: scope",
        ("scope", "invalid", "scope=following needs an instance id"),
    )
    assert (got.status_code, got.content) == (422, expected)
    got = app.client.put(path, json={"calendar_id": str(uuid.uuid4())}, headers=alice.headers)
    expected = error(
        "validation_failed",
        "invalid fields: calendar_id",
        ("calendar_id", "invalid", "an event cannot move to another calendar"),
    )
    assert (got.status_code, got.content) == (422, expected)


def test_each_refusal_answers_as_before_and_changes_nothing(any_app: EventsApp) -> None:
    app = any_app
    alice = app.connect("alice@example.com")
    mallory = app.connect("mallory@example.com")
    event = app.create(alice, GOOD)
    mine = app.create(mallory, GOOD | {"title": "mallory's"})
    before = rows(app)

    _refusals(app, alice, mallory, event)

    # a body with a read-only, an unknown and a missing field, and a bad one, together
    # with a bad header: one 422 naming them all, in order
    got = app.client.post(
        "/events",
        json={"etag": "x", "colour": "red", "title": 5, "start_time": "2031-03-04T10:00:00Z"},
        headers=alice.headers | {"Idempotency-Key": "k" * 300},
    )
    expected = error(
        "validation_failed",
        "invalid fields: Idempotency-Key, etag, colour, title, end_time",
        ("Idempotency-Key", "invalid", "1 to 255 characters"),
        ("etag", "read_only", "this field is set by calsync"),
        ("colour", "unknown", "there is no such field"),
        ("title", "invalid", "must be a string"),
        ("end_time", "required", "this field is required"),
    )
    assert (got.status_code, got.content) == (422, expected)
    # the query's problems come before the body's
    got = app.client.put(
        f"/events/{event['id']}",
        json={"title": 5},
        params={"scope": "all", "x": "1"},
        headers=alice.headers,
    )
    expected = error(
        "validation_failed",
        "invalid fields: x, scope, title",
        ("x", "unknown", "unknown parameter"),
        ("scope", "invalid", "this or following"),
        ("title", "invalid", "must be a string"),
    )
    assert (got.status_code, got.content) == (422, expected)
    # an Idempotency-Key used again with another body
    key = {"Idempotency-Key": "once"}
    first = app.client.post("/events", json=GOOD, headers=alice.headers | key)
    assert first.status_code == 201, first.text
    again = app.client.post("/events", json=GOOD | {"title": "y"}, headers=alice.headers | key)
    expected = error(
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different request body",
        ("Idempotency-Key", "reused", "new body"),
    )
    assert (again.status_code, again.content) == (422, expected)
    # an event alice does not organise (as pulled from Google): 403
    with app.services.sessions.begin() as session:
        session.execute(
            sa.update(EventRow)
            .where(EventRow.id == uuid.UUID(event["id"]))
            .values(organizer_email="boss@example.com")
        )
    got = app.client.put(f"/events/{event['id']}", json={"title": "t"}, headers=alice.headers)
    expected = error("forbidden", "only the event's organizer may change it")
    assert (got.status_code, got.content) == (403, expected)

    # a calendar alice may only read: 403
    shared = app.control.add_calendar(mallory.email, "Team", access_role="owner")
    app.control.share(shared["id"], alice.email, "reader")
    calendar_list.sync_calendar_list(app.services, alice.id)
    team = app.calendar_id(alice, shared["id"])
    got = app.client.post("/events", json=GOOD | {"calendar_id": str(team)}, headers=alice.headers)
    expected = error("forbidden", "you may not write to this calendar")
    assert (got.status_code, got.content) == (403, expected)

    events, outbox, versions = rows(app)
    created = app.get(alice, first.json()["id"])
    assert (events, outbox) == (before[0] + 1, before[1] + 1)
    assert [v for v in versions if str(v[0]) != created["id"]] == before[2]
    assert app.get(mallory, mine["id"])["title"] == "mallory's"
