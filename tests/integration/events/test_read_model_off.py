"""With the read model off (no horizon: never filled), writes pay no upkeep, and turning
it on afterwards lists exactly what expansion lists (decision V8), on both databases.

Off: API creates, updates, deletes and a pull leave no ``instance_dirty`` and no
``event_instances`` rows. On: `read_model.fill` then answers every page as today's
expansion does (the differential helpers of ``test_read_model``), including for a write
whose transaction was open while the first fill began.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.config import Settings
from calsync.events import read_model, upkeep
from calsync.scheduler import build_scheduler
from calsync.store.tables import event_documents, event_instances, instance_dirty, instance_horizon
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, User, running
from tests.integration.events.test_read_model import BASE, Spy, compare, walk
from tests.integration.events.test_read_model_upkeep import run_jobs

pytestmark = pytest.mark.integration

WINDOWS = [
    {
        "start_date": (BASE - timedelta(days=10)).date().isoformat(),
        "end_date": (BASE + timedelta(days=60)).date().isoformat(),
    },
    {
        "start_date": (BASE + timedelta(days=3, hours=5)).isoformat(),
        "end_date": (BASE + timedelta(days=34)).isoformat(),
    },
]


@pytest.fixture(params=["embedded", "production"])
def off(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fake_google: FakeGoogle,
) -> Iterator[tuple[EventsApp, list[User]]]:
    """One calsync per database, the model never filled, three users."""
    if request.param == "embedded":
        base = Settings.embedded(tmp_path_factory.mktemp("read-model-off"))
    else:
        base = request.getfixturevalue("production_settings")
    for app in running(base, fake_google):
        yield app, [app.connect(f"off{n}-{uuid.uuid4().hex[:6]}@example.com") for n in range(3)]


def counts(app: EventsApp) -> tuple[int, int, int]:
    with app.services.sessions() as session:
        found = [
            session.scalar(sa.select(sa.func.count()).select_from(table))
            for table in (instance_dirty, event_instances, instance_horizon)
        ]
    return (found[0] or 0, found[1] or 0, found[2] or 0)


def calendar(app: EventsApp, user: User, n: int) -> list[str]:
    """Singles (timed, all-day) and series (timed, all-day); one of each written again."""
    day = (BASE + timedelta(days=n)).date()
    start = BASE + timedelta(days=n, hours=9 + n)
    bodies: list[dict[str, Any]] = [
        {
            "title": "single",
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(hours=1)).isoformat(),
        },
        {
            "title": "day",
            "start_time": day.isoformat(),
            "end_time": (day + timedelta(days=2)).isoformat(),
        },
        {
            "title": "gone",
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(hours=2)).isoformat(),
        },
        {
            "title": "weekly",
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(minutes=30)).isoformat(),
            "timezone": "Europe/Berlin",
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=20"],
        },
        {
            "title": "daily",
            "start_time": day.isoformat(),
            "end_time": (day + timedelta(days=1)).isoformat(),
            "recurrence": ["RRULE:FREQ=DAILY;INTERVAL=3"],
        },
    ]
    ids = [app.create(user, body)["id"] for body in bodies]
    moved = start + timedelta(days=1)
    answer = app.client.patch(
        f"/events/{ids[0]}",
        json={
            "start_time": moved.isoformat(),
            "end_time": (moved + timedelta(hours=1)).isoformat(),
        },
        headers=user.headers,
    )
    assert answer.status_code == 200, answer.text
    assert app.client.delete(f"/events/{ids[2]}", headers=user.headers).status_code == 204
    return ids


def test_off_writes_pay_no_upkeep_and_turning_on_lists_as_expansion(
    off: tuple[EventsApp, list[User]], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, people = off
    created = {user.email: calendar(app, user, n) for n, user in enumerate(people)}
    assert counts(app) == (0, 0, 0)
    # pushed, changed on Google by another client, pulled back: still nothing kept
    app.push_all()
    alice = people[0]
    google_id = app.get(alice, created[alice.email][1])["google_event_id"]
    remote = app.remote(alice)
    item = remote.get(calendarId=alice.primary, eventId=google_id).execute()
    item["summary"] = "changed on Google"
    item["end"]["date"] = (BASE + timedelta(days=4)).date().isoformat()
    remote.update(calendarId=alice.primary, eventId=google_id, body=item).execute()
    app.clock.advance(minutes=1)
    for user in people:
        app.pull(user)
    assert app.get(alice, created[alice.email][1])["title"] == "changed on Google"
    assert counts(app) == (0, 0, 0)
    # switched on: every page from the model, as expansion lists it
    assert read_model.fill(app.services.sessions, app.clock())
    dirty, rows, horizons = counts(app)
    assert (dirty, rows, horizons) == (dirty, 0, 1)
    assert dirty > 0  # every owner recorded; re-expanded by the upkeep (decision Z5)
    app.upkeep()
    dirty, rows, horizons = counts(app)
    assert (dirty, horizons) == (0, 1)
    assert rows > 0
    spy = Spy()
    monkeypatch.setattr(read_model, "page", spy)
    compare(app, people, WINDOWS, spy)
    # and kept from then on
    for n, user in enumerate(people):
        calendar(app, user, n + 5)
    compare(app, people, WINDOWS, spy, small_pages=False)


def test_a_write_open_while_the_first_fill_begins_is_listed(
    off: tuple[EventsApp, list[User]], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, people = off
    for n, user in enumerate(people):
        calendar(app, user, n)
    alice = people[0]
    filled: list[bool] = []
    filler = threading.Thread(
        target=lambda: filled.append(read_model.fill(app.services.sessions, app.clock()))
    )
    real = upkeep.refresh_written

    def at_commit(session: Any) -> None:
        # the create's rows are written, recorded by nothing (no horizon), not committed:
        # the first fill begins now, and must wait for this commit (else it misses them)
        if not filler.is_alive() and not filled:
            filler.start()
            filler.join(timeout=3)
        real(session)

    monkeypatch.setattr(upkeep, "refresh_written", at_commit)
    start = BASE + timedelta(days=12, hours=7)
    app.create(
        alice,
        {
            "title": "open while filling",
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(hours=1)).isoformat(),
        },
    )
    filler.join(timeout=120)
    assert filled == [True]
    monkeypatch.setattr(upkeep, "refresh_written", real)
    app.upkeep()
    spy = Spy()
    monkeypatch.setattr(read_model, "page", spy)
    compare(app, people, WINDOWS, spy, small_pages=False)


def test_the_upkeep_does_not_run_itself_again(
    off: tuple[EventsApp, list[User]], caplog: pytest.LogCaptureFixture
) -> None:
    """Its savepoint's commit fires the session's ``before_commit`` again: that must not
    re-run it (it did, nested ~900 deep, until a RecursionError at the bottom was caught
    and logged on every write), so a write's upkeep logs no error."""
    app, people = off
    assert read_model.fill(app.services.sessions, app.clock())
    app.upkeep()
    with caplog.at_level(logging.ERROR, logger="calsync.events.upkeep"):
        for n, user in enumerate(people):
            calendar(app, user, n)
    assert not caplog.records


def documents(app: EventsApp) -> int:
    with app.services.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(event_documents)) or 0


def test_switched_off_the_model_is_forgotten_and_writes_pay_nothing_again(
    off: tuple[EventsApp, list[User]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decision X5: the scheduler with ``READ_MODEL`` off forgets a model filled before
    (else every write kept paying its upkeep and pages read a horizon nobody moved)."""
    app, people = off
    for n, user in enumerate(people):
        calendar(app, user, n)
    assert read_model.fill(app.services.sessions, app.clock())
    app.upkeep()
    assert counts(app)[2] == 1
    assert documents(app) > 0
    # When the scheduler runs with the model off
    assert read_model.keep(app.services.sessions, app.clock(), on=False)
    assert not read_model.keep(app.services.sessions, app.clock(), on=False)
    # Then nothing of it is left, writes keep nothing, and pages are expanded
    assert counts(app) == (0, 0, 0)
    assert documents(app) == 0
    for n, user in enumerate(people):
        calendar(app, user, n + 3)
    assert counts(app) == (0, 0, 0)
    assert documents(app) == 0
    spy = Spy()
    monkeypatch.setattr(read_model, "page", spy)
    query = WINDOWS[0] | {"expand": "true", "limit": "200"}
    expanded = [walk(app, user, query) for user in people]
    assert spy.answered == 0
    assert all(events for pages in expanded for events, _ in pages)
    # And on again, it lists what expansion lists
    assert read_model.keep(app.services.sessions, app.clock(), on=True)
    app.upkeep()
    assert [walk(app, user, query) for user in people] == expanded
    assert spy.answered > 0
    compare(app, people, WINDOWS, spy, small_pages=False)


@pytest.fixture(params=["embedded", "production"])
def defaults(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fake_google: FakeGoogle,
) -> Iterator[EventsApp]:
    """calsync as ``make dev`` (embedded) and production configure it (the read model
    on by default, decision Z6): the scheduler not run yet."""
    if request.param == "embedded":
        base = Settings.embedded(tmp_path_factory.mktemp("read-model-defaults"))
    else:
        base = request.getfixturevalue("production_settings")
    assert base.read_model  # on by default (decision Z6)
    yield from running(base, fake_google)


def test_a_new_users_lists_are_right_before_and_after_the_schedulers_first_fill(
    defaults: EventsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = defaults
    spy = Spy()
    monkeypatch.setattr(read_model, "page", spy)
    query = WINDOWS[0] | {"expand": "true", "limit": "200"}
    alice = app.connect(f"new-{uuid.uuid4().hex[:6]}@example.com")
    assert walk(app, alice, query) == [([], None)]  # a new user's first list: empty
    calendar(app, alice, 0)
    before = walk(app, alice, query)
    assert before[0][0]
    assert spy.answered == 0  # not filled yet: expanded per request
    # When the scheduler ticks for the first time, and a worker runs what it queued
    # (only that: the writes' pushes, queued too, would change what is listed)
    app.services.broker.flush_all()
    tasks = {t.name: t for t in build_scheduler(app.services).tasks}
    for name in ("fill_read_model", "sweep_read_model"):  # in this order, at one tick
        tasks[name].action(app.clock())
    assert walk(app, alice, query) == before  # (expanded until the upkeep ran)
    assert spy.answered == 0
    run_jobs(app)
    # Then the model answers, as expansion did; a user new after the fill too
    spy.answered = 0
    assert walk(app, alice, query) == before
    assert spy.answered == len(before)
    bob = app.connect(f"new-{uuid.uuid4().hex[:6]}@example.com")
    assert walk(app, bob, query) == [([], None)]
    calendar(app, bob, 1)
    compare(app, [alice, bob], WINDOWS, spy)
