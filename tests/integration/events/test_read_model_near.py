"""The upkeep after the write in two steps: near today first, the rest after (HC2-HC4).

After a pull, the upkeep's first step re-expands the changed series over the *near*
range (`read_model.near_range`) only, and records them as held near; a window inside
that range is then read from the model, any other is expanded per request until the
second step has completed them. Lists must be right at every point, for the users
touched and the one untouched, and when a series changes between the two steps. Both
databases, three users (the fixtures of `test_read_model_upkeep`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.events import read_model, upkeep
from calsync.store import instance_upkeep, instances
from calsync.store.tables import event_instances, instance_incomplete
from tests.integration.events.conftest import START, EventsApp, User
from tests.integration.events.test_read_model import Spy, model_on, walk
from tests.integration.events.test_read_model_upkeep import (
    WINDOW,
    change_on_google,
    filled,
    spy,
    titles,
)

pytestmark = pytest.mark.integration
__all__ = ["filled", "spy"]  # fixtures

#: A window of the horizon well outside the near range (START is the test's today).
FAR = {
    "start_date": (START + timedelta(days=150)).date().isoformat(),
    "end_date": (START + timedelta(days=190)).date().isoformat(),
    "expand": "true",
    "limit": "5",
}


def listing(app: EventsApp, user: User, spy: Spy, window: dict[str, str]) -> tuple[Any, bool]:
    """Every page of the window, and whether the model answered every one of them."""
    before = spy.answered
    pages = walk(app, user, window)
    answered = spy.answered - before
    assert answered in (0, len(pages))
    return pages, answered == len(pages)


def expanded(app: EventsApp, user: User, window: dict[str, str]) -> list[Any]:
    """The same pages by per-request expansion (the model switched off meanwhile)."""
    with app.services.sessions() as session:
        bounds = instances.horizon(session)
    assert bounds is not None
    model_on(app, False, bounds)
    try:
        return walk(app, user, window)
    finally:
        model_on(app, True, bounds)


def held(app: EventsApp) -> int:
    """Owners held near today."""
    with app.services.sessions() as session:
        query = sa.select(sa.func.count()).where(instance_incomplete.c.held_from.is_not(None))
        return session.scalar(query) or 0


def right(app: EventsApp, user: User, spy: Spy, window: dict[str, str], *, model: bool) -> None:
    """The user's window is as expansion lists it, answered by the model or not."""
    pages, answered = listing(app, user, spy, window)
    assert answered is model
    assert pages == expanded(app, user, window)


def test_near_windows_are_read_after_the_first_step_and_far_ones_after_the_second(
    filled: tuple[EventsApp, list[User]], spy: Spy
) -> None:
    app, (alice, bob, carol) = filled
    assert held(app) == 0  # the fixture's upkeep ran both steps
    carols = {name: listing(app, carol, spy, w) for name, w in (("near", WINDOW), ("far", FAR))}
    assert all(answered for _, answered in carols.values())
    # When alice's and bob's series change on Google, are pulled, and the upkeep's
    # first step alone runs
    for user in (alice, bob):
        change_on_google(app, user, f"changed for {user.email}")
    done = upkeep.catch_up(app.services.sessions, far=False)
    assert (done.cleared > 0, done.held, done.failed, done.more) == (True, 0, 0, False)
    # Then their near windows come from the model, their far ones are expanded, all right
    assert held(app) > 0
    with app.services.sessions() as session:
        assert instance_upkeep.pending(session)  # the sweep keeps kicking runs
    for user in (alice, bob):
        right(app, user, spy, WINDOW, model=True)
        right(app, user, spy, FAR, model=False)
        assert f"changed for {user.email}" in titles(listing(app, user, spy, FAR)[0])
    assert listing(app, carol, spy, FAR) == carols["far"]
    # And after the second step, every window comes from the model
    done = app.upkeep()
    assert (done.held, done.failed, done.more) == (0, 0, False)
    assert held(app) == 0
    with app.services.sessions() as session:
        assert not instance_upkeep.pending(session)
    for user in (alice, bob):
        for window in (WINDOW, FAR):
            right(app, user, spy, window, model=True)
    assert listing(app, carol, spy, WINDOW) == carols["near"]


def test_a_series_changed_between_the_steps_is_listed_right(
    filled: tuple[EventsApp, list[User]], spy: Spy
) -> None:
    app, (alice, bob, _) = filled
    change_on_google(app, alice, "first change")
    upkeep.catch_up(app.services.sessions, far=False)
    # When alice's series change again, and the second step completes the rows that
    # the first step held near before the first step re-expanded the new change
    change_on_google(app, alice, "second change")
    with app.services.sessions.begin() as session:
        bounds = instances.horizon(session)
        assert bounds is not None
        owners = instance_upkeep.held_owners(session, after=None, limit=1000)
        assert owners
        read_model.extend_owners(session, owners, bounds)
    # Then alice's lists are expanded (her change is recorded), and right
    for window in (WINDOW, FAR):
        right(app, alice, spy, window, model=False)
    assert "second change" in titles(listing(app, alice, spy, FAR)[0])
    # And once the upkeep ran, the model answers them, each item once
    app.upkeep()
    assert held(app) == 0
    for user in (alice, bob):
        for window in (WINDOW, FAR):
            right(app, user, spy, window, model=True)
    with app.services.sessions() as session:
        items = session.execute(
            sa.select(event_instances.c.owner_id, event_instances.c.api_id).where(
                event_instances.c.user_id == alice.id
            )
        ).all()
    assert len(items) == len(set(items))


def test_an_api_write_is_expanded_over_the_whole_horizon_at_once(
    filled: tuple[EventsApp, list[User]], spy: Spy
) -> None:
    """An API request's few changes are re-expanded in its transaction over the whole
    horizon (decision Z2): nothing is held near, and its far windows come from the
    model at once."""
    app, (alice, _, _) = filled
    start = START + timedelta(days=2, hours=5)
    app.create(
        alice,
        {
            "title": "written through the API",
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(hours=1)).isoformat(),
            "recurrence": ["RRULE:FREQ=WEEKLY"],
        },
    )
    assert held(app) == 0
    right(app, alice, spy, FAR, model=True)
    assert "written through the API" in titles(listing(app, alice, spy, FAR)[0])
