"""The read model's upkeep after the write (decisions Z1-Z4), through the HTTP API.

A pull (any write outside an API request) commits without re-expanding what it
changed: its records in ``instance_dirty`` make the model decline its users' lists,
which are then expanded per request, until the ``refresh_read_model`` job - queued after
the commit, or by the scheduler's sweep when that kick was lost - re-expands them.
Lists must be right at every point: before the upkeep ran (by expansion), after it (from
the model), with two runs of it at once, and when a writer changes a series while a run
is re-expanding it (the run must clear only the records it claimed). Both databases,
three users (one of them untouched, whose lists the model keeps answering).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import dramatiq
import pytest
import sqlalchemy as sa

from calsync.config import Settings
from calsync.events import read_model, upkeep
from calsync.scheduler import build_scheduler
from calsync.store import instance_upkeep, instances
from calsync.store.tables import Event, event_documents, event_instances, instance_dirty
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import START, EventsApp, User, running
from tests.integration.events.test_read_model import Spy, walk

pytestmark = pytest.mark.integration

WINDOW = {
    "start_date": (START - timedelta(days=3)).date().isoformat(),
    "end_date": (START + timedelta(days=40)).date().isoformat(),
    "expand": "true",
    "limit": "7",
}


@pytest.fixture(params=["embedded", "production"])
def filled(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fake_google: FakeGoogle,
) -> Iterator[tuple[EventsApp, list[User]]]:
    """One calsync per database, the model filled, three users with a calendar each
    (pushed to Google, the upkeep caught up)."""
    if request.param == "embedded":
        base = Settings.embedded(tmp_path_factory.mktemp("read-model-upkeep"))
    else:
        base = request.getfixturevalue("production_settings")
    for app in running(base, fake_google):
        assert read_model.fill(app.services.sessions, app.clock())
        people = [app.connect(f"up{n}-{uuid.uuid4().hex[:6]}@example.com") for n in range(3)]
        for n, user in enumerate(people):
            calendar(app, user, n)
        app.push_all()
        app.upkeep()
        yield app, people


def calendar(app: EventsApp, user: User, n: int) -> None:
    """Two series (one with a moved instance, an exception) and a single."""
    start = START + timedelta(days=n, hours=n)
    for k, rule in enumerate(("RRULE:FREQ=DAILY;COUNT=15", "RRULE:FREQ=WEEKLY")):
        first = start + timedelta(hours=2 * k)
        created = app.create(
            user,
            {
                "title": f"series {k}",
                "start_time": first.isoformat(),
                "end_time": (first + timedelta(minutes=45)).isoformat(),
                "timezone": "Europe/Berlin",
                "recurrence": [rule],
            },
        )
        if k == 0:
            moved = first + timedelta(days=2)
            instance = f"{created['id']}_{moved.strftime('%Y%m%dT%H%M%SZ')}"
            answer = app.put(
                user,
                instance,
                {
                    "title": "moved",
                    "start_time": (moved + timedelta(hours=5)).isoformat(),
                    "end_time": (moved + timedelta(hours=6)).isoformat(),
                },
            )
            assert answer.status_code == 200, answer.text
    app.create(
        user,
        {
            "title": "single",
            "start_time": (start + timedelta(days=3)).isoformat(),
            "end_time": (start + timedelta(days=3, hours=1)).isoformat(),
        },
    )


def listing(app: EventsApp, user: User, spy: Spy) -> tuple[list[Any], bool]:
    """Every page of the user's window over HTTP, and whether the model answered them."""
    before = spy.answered
    pages = walk(app, user, WINDOW)
    answered = spy.answered - before
    assert answered in (0, len(pages))
    return pages, answered == len(pages)


def expanded(app: EventsApp, user: User) -> list[Any]:
    """The same pages by per-request expansion (the model switched off meanwhile)."""
    with app.model_off():
        return walk(app, user, WINDOW)


def titles(pages: list[Any]) -> set[str]:
    return {event["title"] for events, _ in pages for event in events}


def change_on_google(app: EventsApp, user: User, title: str) -> None:
    """Every series master of the user retitled by another Google client, then pulled
    (a write outside any request: its upkeep is after its commit)."""
    remote = app.remote(user)
    found = remote.list(calendarId=user.primary, singleEvents=False).execute()
    for item in found["items"]:
        if not item.get("recurrence"):
            continue
        item["summary"] = title
        remote.update(calendarId=user.primary, eventId=item["id"], body=item).execute()
    app.clock.advance(minutes=1)
    app.pull(user)


def pending(app: EventsApp) -> int:
    with app.services.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(instance_dirty)) or 0


def blocked(app: EventsApp, user: User) -> bool:
    with app.services.sessions() as session:
        return instances.blocked(session, user.id)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    found = Spy()
    monkeypatch.setattr(read_model, "page", found)
    return found


def test_lists_are_right_before_and_after_the_upkeep_of_a_pull(
    filled: tuple[EventsApp, list[User]], spy: Spy
) -> None:
    app, people = filled
    alice, bob, carol = people
    carols, answered = listing(app, carol, spy)
    assert answered
    # When alice's and bob's series change on Google and are pulled
    for user in (alice, bob):
        change_on_google(app, user, f"changed for {user.email}")
    # Then, before the upkeep ran, their lists are expanded, and right
    assert pending(app) > 0
    assert blocked(app, alice)
    assert blocked(app, bob)
    assert not blocked(app, carol)
    for user in (alice, bob):
        pages, answered = listing(app, user, spy)
        assert not answered
        assert f"changed for {user.email}" in titles(pages)
        assert pages == expanded(app, user)
    assert listing(app, carol, spy) == (carols, True)
    # And after it ran, the model answers them, as expansion does
    done = app.upkeep()
    assert done.cleared > 0
    assert (done.held, done.failed, done.more) == (0, 0, False)
    assert pending(app) == 0
    for user in (alice, bob):
        pages, answered = listing(app, user, spy)
        assert answered
        assert f"changed for {user.email}" in titles(pages)
        assert pages == expanded(app, user)
    assert listing(app, carol, spy) == (carols, True)


def test_an_api_write_is_listed_from_the_model_at_once(
    filled: tuple[EventsApp, list[User]], spy: Spy
) -> None:
    """Decision Z2: a request's few changes are re-expanded before its commit."""
    app, people = filled
    alice, bob, _ = people
    bobs = listing(app, bob, spy)
    start = START + timedelta(days=5, hours=3)
    app.create(
        alice,
        {
            "title": "written through the API",
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(hours=1)).isoformat(),
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=4"],
        },
    )
    assert pending(app) == 0
    pages, answered = listing(app, alice, spy)
    assert answered
    assert "written through the API" in titles(pages)
    assert pages == expanded(app, alice)
    assert listing(app, bob, spy) == bobs


def run_jobs(app: EventsApp) -> None:
    """Run what the broker holds to completion with a real Dramatiq worker."""
    worker = dramatiq.Worker(app.services.broker, worker_timeout=100, worker_threads=1)
    worker.start()
    try:
        app.services.broker.join("maintenance", timeout=60_000)
    finally:
        worker.stop()


def test_a_kick_lost_after_the_commit_is_caught_up_by_the_sweep(
    filled: tuple[EventsApp, list[User]], spy: Spy
) -> None:
    app, people = filled
    alice, bob, _ = people
    # Given a pull whose upkeep was asked for after its commit, and the process killed
    # before the job ran: the message is gone
    change_on_google(app, alice, "changed before the kill")
    app.services.broker.flush_all()
    assert pending(app) > 0
    pages, answered = listing(app, alice, spy)
    assert not answered
    assert "changed before the kill" in titles(pages)
    # When the scheduler's sweep runs, and a worker runs what it queued
    tasks = {t.name: t for t in build_scheduler(app.services).tasks}
    tasks["sweep_read_model"].action(app.clock())
    run_jobs(app)
    # Then nothing is left, and the model answers the lists, as expansion does
    assert pending(app) == 0
    for user in (alice, bob):
        listed, answered = listing(app, user, spy)
        assert answered
        assert listed == expanded(app, user)
    assert "changed before the kill" in titles(listing(app, alice, spy)[0])


def model_rows(app: EventsApp) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    with app.services.sessions() as session:
        items = {tuple(r) for r in session.execute(sa.select(event_instances))}
        documents = {tuple(r) for r in session.execute(sa.select(event_documents))}
    return items, documents


def test_two_upkeep_runs_at_once_leave_the_right_rows(
    filled: tuple[EventsApp, list[User]],
    spy: Spy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, people = filled
    for user in people:
        change_on_google(app, user, f"changed for {user.email}")
    assert pending(app) > 0
    # When two runs, one record a batch, have each claimed their first record at once,
    # and the first two records name the same master (it was changed twice; since
    # decision HJ3 one update records it once, so the records are written as two
    # changes would have), both runs need the same master (SQLite serialises them: the
    # barrier gives up, and they take turns)
    t = instance_dirty
    with app.services.sessions.begin() as session:
        records = session.execute(
            sa.select(
                t.c.user_id, t.c.event_id, t.c.calendar_id, t.c.series_ref, t.c.xact
            ).order_by(t.c.id)
        ).all()
        session.execute(sa.delete(t))
        session.execute(sa.insert(t), [dict(r._mapping) for r in [records[0], *records]])
    with app.services.sessions() as session:
        first = session.scalars(
            sa.select(instance_dirty.c.event_id).order_by(instance_dirty.c.id).limit(2)
        ).all()
    assert first[0] == first[1]
    barrier = threading.Barrier(2, timeout=3)
    waited = threading.local()
    real = instance_upkeep.claim

    def claim(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        if not getattr(waited, "once", False):
            waited.once = True
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
        return found

    monkeypatch.setattr(instance_upkeep, "claim", claim)
    outcomes: list[upkeep.CatchUp] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            outcomes.append(upkeep.catch_up(app.services.sessions, batch=1))
        except BaseException as error:  # handed to the test's thread
            failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    with caplog.at_level(logging.ERROR, logger="calsync.events.upkeep"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    monkeypatch.setattr(instance_upkeep, "claim", real)
    assert not failures, failures
    assert len(outcomes) == 2
    # neither failed (two re-expansions of one owner at once collide on its rows)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors
    assert all(o.failed == 0 for o in outcomes)
    assert sum(o.cleared for o in outcomes) > 0
    if not_sqlite(app):  # they met: one left the master the other held
        assert sum(o.held for o in outcomes) > 0
    # Then what they held for each other is caught up by one more run, and the rows are
    # those a re-expansion of everything makes
    app.upkeep()
    assert pending(app) == 0
    kept = model_rows(app)
    with app.services.sessions.begin() as session:
        read_model.refresh_all(session)
    assert model_rows(app) == kept
    for user in people:
        pages, answered = listing(app, user, spy)
        assert answered
        assert f"changed for {user.email}" in titles(pages)
        assert pages == expanded(app, user)


def moved_exception(app: EventsApp, user: User) -> uuid.UUID:
    with app.services.sessions() as session:
        found = session.scalar(
            sa.select(Event.id).where(Event.user_id == user.id, Event.title == "moved")
        )
    assert found is not None
    return found


def test_a_change_recorded_while_its_series_is_re_expanded_is_not_lost(
    filled: tuple[EventsApp, list[User]], spy: Spy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run clears only the records it claimed: a writer that changes an exception of
    the series being re-expanded, and commits before the run does, leaves a record
    that keeps the user's lists expanded until the next run (else the model would
    serve the exception as it was)."""
    app, people = filled
    alice, bob, _ = people
    bobs = listing(app, bob, spy)
    exception = moved_exception(app, alice)
    change_on_google(app, alice, "master changed on Google")
    writer = threading.Thread(target=retitle, args=(app, exception))
    real = instance_upkeep.clear

    def clear(session: Any, ids: Any) -> None:
        # the run has re-expanded the series (read the exception as it was): the writer
        # changes the exception now, committed before this run commits (PostgreSQL:
        # the run holds only the master's row; SQLite: the writer waits for the run)
        if not writer.is_alive() and writer.ident is None:
            writer.start()
            if not_sqlite(app):
                writer.join(timeout=30)
                assert not writer.is_alive(), "the writer waited for the run"
        real(session, ids)

    monkeypatch.setattr(instance_upkeep, "clear", clear)
    upkeep.catch_up(app.services.sessions)
    writer.join(timeout=60)
    monkeypatch.setattr(instance_upkeep, "clear", real)
    assert writer.ident is not None
    assert not writer.is_alive()
    # Then the late change is listed (by expansion: its record is left), and after the
    # next run from the model
    pages, _ = listing(app, alice, spy)
    assert "changed late" in titles(pages)
    assert pages == expanded(app, alice)
    app.upkeep()
    pages, answered = listing(app, alice, spy)
    assert answered
    assert "changed late" in titles(pages)
    assert pages == expanded(app, alice)
    assert listing(app, bob, spy) == bobs


def not_sqlite(app: EventsApp) -> bool:
    return app.services.engine.dialect.name != "sqlite"


def retitle(app: EventsApp, event_id: uuid.UUID) -> None:
    """A writer of the exception's shown title, outside any request."""
    with app.services.sessions.begin() as session:
        session.execute(sa.update(Event).where(Event.id == event_id).values(title="changed late"))
