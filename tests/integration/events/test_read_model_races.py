"""A page read from the read model is of one moment, while a write or a pull changes the
series being read (decisions V2, V5).

The write is made at the worst point (a hook, from another thread, committed before
the page goes on): for a page made of the documents its scan reads with its items
(decision X2), after the page's first reads (the horizon, whether the user's lists may
be read from the model) and before the scan; for a page that renders its items (as it
does those without a usable document), after the scan and before the rows its items
name are loaded. The page must show the series wholly as it was before or
wholly as it is after - never an instance of the old series rendered from the new
master - and the next listing must show it as it is after, as today's expansion does.
Both databases, two users (the other user's list must not change).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from calsync.config import Settings
from calsync.events import model_bodies, read_model
from calsync.store import instance_pages, instances
from calsync.web.app import create_app
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, User, committed_first, running

pytestmark = pytest.mark.integration

WINDOW = {
    "start_date": "2031-03-01",
    "end_date": "2031-03-31",
    "expand": "true",
    "limit": "200",
}


def series(title: str, hour: int) -> dict[str, Any]:
    return {
        "title": title,
        "start_time": f"2031-03-04T{hour:02d}:00:00",
        "end_time": f"2031-03-04T{hour:02d}:45:00",
        "timezone": "Europe/Berlin",
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=12"],
    }


@pytest.fixture(params=["embedded", "production"])
def filled(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fake_google: FakeGoogle,
) -> Iterator[tuple[EventsApp, list[User]]]:
    if request.param == "embedded":
        base = Settings.embedded(tmp_path_factory.mktemp("read-model-races"))
    else:
        base = request.getfixturevalue("production_settings")
    for app in running(base, fake_google):
        people = [app.connect(f"race{n}-{uuid.uuid4().hex[:6]}@example.com") for n in range(2)]
        read_model.fill(app.services.sessions, app.clock())
        yield app, people


def shown(app: EventsApp, user: User, client: TestClient | None = None) -> list[tuple[str, ...]]:
    answer = (client or app.client).get("/events", params=WINDOW, headers=user.headers)
    assert answer.status_code == 200, answer.text
    return [(e["id"], e["title"], e["start_time"], e["end_time"]) for e in answer.json()["events"]]


def expanded(app: EventsApp, user: User) -> list[tuple[str, ...]]:
    """`shown` by today's expansion (the model switched off for the one listing)."""
    with app.model_off():
        return shown(app, user)


@pytest.fixture(params=["documents", "rendered"])
def path(request: pytest.FixtureRequest) -> str:
    """How the page makes its items: from the documents its scan read with them, or (as
    for an item without a usable document) rendered from the rows it names, loaded after
    the scan."""
    return str(request.param)


def between_scan_and_load(
    monkeypatch: pytest.MonkeyPatch, change: Callable[[], None], path: str
) -> list[int]:
    """Run `change` in another thread, to its commit, at the worst point of the next
    page (`path`): before its scan, after its first reads; or, rendering every item,
    after its scan and before it loads the rows the items name. The list counts the
    pages that ran it."""
    what = "the change"
    if path == "documents":
        return committed_first(monkeypatch, instance_pages, "listed_rows", change, what=what)
    monkeypatch.setattr(model_bodies, "stored_body", lambda *_: None)
    return committed_first(monkeypatch, model_bodies, "load_shown", change, what=what)


def prepare(app: EventsApp, people: list[User]) -> tuple[str, list[tuple[str, ...]]]:
    """A series for each user, one instance moved; the first user's series id and the
    second user's list."""
    ids = [app.create(user, series(f"before {n}", 9))["id"] for n, user in enumerate(people)]
    for user, series_id in zip(people, ids, strict=True):
        moved = app.put(
            user,
            f"{series_id}_20310306T080000Z",
            {
                "title": "moved",
                "start_time": "2031-03-06T15:00:00Z",
                "end_time": "2031-03-06T15:45:00Z",
            },
        )
        assert moved.status_code == 200, moved.text
    return ids[0], shown(app, people[1])


def test_a_page_is_of_one_moment_while_a_write_changes_the_series(
    filled: tuple[EventsApp, list[User]], monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    app, people = filled
    alice, bob = people
    series_id, bobs = prepare(app, people)
    before = shown(app, alice)
    assert before == expanded(app, alice)
    with TestClient(create_app(app.services)) as writer:

        def change() -> None:
            answer = writer.put(
                f"/events/{series_id}", json=series("after", 11), headers=alice.headers
            )
            assert answer.status_code == 200, answer.text

        ran = between_scan_and_load(monkeypatch, change, path)
        during = shown(app, alice)
    assert ran == [1]
    monkeypatch.undo()
    after = shown(app, alice)
    assert after != before
    assert after == expanded(app, alice)
    assert during in (before, after)
    assert shown(app, bob) == bobs == expanded(app, bob)


def test_a_page_is_of_one_moment_while_a_pull_changes_the_series(
    filled: tuple[EventsApp, list[User]], monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    app, people = filled
    alice, bob = people
    series_id, bobs = prepare(app, people)
    app.push_all()
    app.upkeep()  # the pushes' sync states, as the job after their commits (Z1)
    google_id = app.get(alice, series_id)["google_event_id"]
    remote = app.remote(alice)
    master = remote.get(calendarId=alice.primary, eventId=google_id).execute()
    master["summary"] = "changed on Google"
    for end in ("start", "end"):
        master[end]["dateTime"] = master[end]["dateTime"].replace("T09:", "T12:")
    before = shown(app, alice)
    assert before == expanded(app, alice)
    remote.update(calendarId=alice.primary, eventId=google_id, body=master).execute()
    app.clock.advance(minutes=1)

    ran = between_scan_and_load(monkeypatch, lambda: app.pull(alice), path)
    during = shown(app, alice)
    assert ran == [1]
    monkeypatch.undo()
    app.upkeep()  # the pull's changes, after its commit (decision Z1)
    after = shown(app, alice)
    assert after != before
    assert any(title == "changed on Google" for _, title, _, _ in after)
    assert after == expanded(app, alice)
    assert during in (before, after)
    assert shown(app, bob) == bobs == expanded(app, bob)


def test_a_failing_upkeep_fails_no_write_and_its_users_lists_are_expanded(
    filled: tuple[EventsApp, list[User]], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, people = filled
    alice, bob = people
    app.create(bob, series("bob", 9))
    bobs = shown(app, bob)

    def broken(*_: Any) -> Any:
        raise RuntimeError("a bug in the read model")

    # When the upkeep of alice's write raises
    monkeypatch.setattr(read_model, "series_rows", broken)
    app.create(alice, series("alice", 10))  # 201: the write is committed
    monkeypatch.undo()

    # Then the model declines alice's lists, which expansion answers, and not bob's
    with app.services.sessions() as session:
        assert instances.blocked(session, alice.id)
        assert not instances.blocked(session, bob.id)
    listed = shown(app, alice)
    assert len(listed) == 12
    assert shown(app, bob) == bobs
    # And after refresh_all the model answers alice's lists again, as expansion does
    with app.services.sessions.begin() as session:
        read_model.refresh_all(session)
    with app.services.sessions() as session:
        assert not instances.blocked(session, alice.id)
    assert shown(app, alice) == listed == expanded(app, alice)
