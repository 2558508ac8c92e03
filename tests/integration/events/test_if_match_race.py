"""`If-Match` holds against a write that commits between a request's read and its write.

Two clients read an event (same etag) and each sends a change with `If-Match`. Whatever
the interleaving, exactly one wins; the other gets 412 and changes nothing. The worst
interleaving is forced: the competing request runs to its commit (another thread,
another client) after the first request has checked its etag and before it locks the
row. Both databases, two users (bob's event, written meanwhile, is untouched).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from calsync.store import event_changes
from calsync.web.app import create_app
from tests.integration.events.conftest import EventsApp, User, committed_first

pytestmark = pytest.mark.integration

SINGLE = {
    "title": "plan",
    "start_time": "2031-03-04T10:00:00Z",
    "end_time": "2031-03-04T11:00:00Z",
}
WEEKLY = {
    "title": "weekly",
    "start_time": "2031-03-04T10:00:00",
    "end_time": "2031-03-04T11:00:00",
    "timezone": "UTC",
    "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
}
INSTANCE = "_20310311T100000Z"  # the series' second occurrence


def before_the_lock(monkeypatch: pytest.MonkeyPatch, competing: Callable[[], None]) -> list[int]:
    """Run `competing` in another thread, to its commit, the first time a write locks a
    row: after the request's etag check, before its read-modify-write."""
    return committed_first(monkeypatch, event_changes, "lock_stored", competing)


def two_users(app: EventsApp) -> tuple[User, User, dict[str, Any]]:
    alice = app.connect("alice@example.com")
    bob = app.connect("bob@example.com")
    bobs = app.create(bob, SINGLE | {"title": "bob's"})
    return alice, bob, bobs


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_of_two_changes_sent_with_one_etag_the_later_gets_412(
    any_app: EventsApp, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    app = any_app
    alice, bob, bobs = two_users(app)
    created = app.create(alice, SINGLE)
    read = {"If-Match": created["etag"]}
    with TestClient(create_app(app.services)) as other:

        def competing() -> None:
            answer = other.request(
                method,
                f"/events/{created['id']}",
                json={"title": "theirs"},
                headers=alice.headers | read,
            )
            assert answer.status_code == 200, answer.text
            bobs_edit = other.put(
                f"/events/{bobs['id']}", json={"title": "bob's own"}, headers=bob.headers
            )
            assert bobs_edit.status_code == 200, bobs_edit.text

        ran = before_the_lock(monkeypatch, competing)
        answer = app.client.request(
            method, f"/events/{created['id']}", json={"title": "ours"}, headers=alice.headers | read
        )
    assert ran == [1]
    assert answer.status_code == 412, answer.text
    monkeypatch.undo()
    assert app.get(alice, created["id"])["title"] == "theirs"
    assert app.get(bob, bobs["id"])["title"] == "bob's own"


def test_a_delete_sent_with_a_stale_etag_by_a_race_gets_412(
    any_app: EventsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = any_app
    alice, _bob, _bobs = two_users(app)
    created = app.create(alice, SINGLE)
    read = {"If-Match": created["etag"]}
    with TestClient(create_app(app.services)) as other:

        def competing() -> None:
            answer = other.put(
                f"/events/{created['id']}", json={"title": "theirs"}, headers=alice.headers | read
            )
            assert answer.status_code == 200, answer.text

        ran = before_the_lock(monkeypatch, competing)
        answer = app.client.delete(f"/events/{created['id']}", headers=alice.headers | read)
    assert ran == [1]
    assert answer.status_code == 412, answer.text
    monkeypatch.undo()
    assert app.get(alice, created["id"])["title"] == "theirs"  # not deleted


def test_a_changed_instance_keeps_the_first_of_two_changes_sent_with_one_etag(
    any_app: EventsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = any_app
    alice, _bob, _bobs = two_users(app)
    series = app.create(alice, WEEKLY)
    instance_id = series["id"] + INSTANCE
    first = app.put(alice, instance_id, {"title": "moved once"}, scope="this")
    assert first.status_code == 200, first.text
    read = {"If-Match": first.json()["etag"]}
    with TestClient(create_app(app.services)) as other:

        def competing() -> None:
            answer = other.put(
                f"/events/{instance_id}",
                json={"title": "theirs"},
                headers=alice.headers | read,
                params={"scope": "this"},
            )
            assert answer.status_code == 200, answer.text

        ran = before_the_lock(monkeypatch, competing)
        answer = app.client.put(
            f"/events/{instance_id}",
            json={"title": "ours"},
            headers=alice.headers | read,
            params={"scope": "this"},
        )
    assert ran == [1]
    assert answer.status_code == 412, answer.text
    monkeypatch.undo()
    assert app.get(alice, instance_id)["title"] == "theirs"
