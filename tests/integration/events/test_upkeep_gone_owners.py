"""The upkeep's shortcut for owners whose row is gone (decision HS1).

A full sync that stores a calendar anew (as `tests.perf.bench_months` runs one, the rows
deleted first) leaves a record for every deleted row: their items, documents and held
ranges went with them (the foreign keys cascade), so the upkeep locks, and re-expands,
only the owners whose row it finds. It must still tell them apart right: an owner that
is present (changed, with items stored) is re-expanded, its stale items replaced; one
held by another transaction keeps its records. Both databases, three users.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.events import read_model, upkeep
from calsync.store import instance_upkeep
from calsync.store.tables import Event, event_documents, event_instances
from tests.integration.events.conftest import EventsApp, User
from tests.integration.events.test_read_model import Spy
from tests.integration.events.test_read_model_upkeep import (
    change_on_google,
    expanded,
    filled,
    listing,
    model_rows,
    not_sqlite,
    pending,
    spy,
    titles,
)

pytestmark = pytest.mark.integration

__all__ = ["filled", "spy"]  # fixtures, used by name


def owners_of(app: EventsApp, user: User) -> dict[str, uuid.UUID]:
    """The user's owners of items (singles and masters), by title."""
    with app.services.sessions() as session:
        rows = session.execute(
            sa.select(Event.title, Event.id).where(
                Event.user_id == user.id,
                Event.deleted_at.is_(None),
                Event.recurring_event_id.is_(None),
            )
        ).all()
    return {title: event_id for title, event_id in rows}


def stored_for(app: EventsApp, owners: Sequence[uuid.UUID]) -> int:
    """Items and documents stored for these owners."""
    with app.services.sessions() as session:
        items = session.scalar(
            sa.select(sa.func.count()).where(event_instances.c.owner_id.in_(owners))
        )
        documents = session.scalar(
            sa.select(sa.func.count()).where(event_documents.c.event_id.in_(owners))
        )
    return int(items or 0) + int(documents or 0)


def test_owners_found_are_told_from_owners_gone_and_held(
    filled: tuple[EventsApp, list[User]],
) -> None:
    app, people = filled
    first, second, third = (owners_of(app, user) for user in people)
    gone = [first["single"], second["series 1"]]
    with app.services.sessions.begin() as session:
        session.execute(sa.delete(Event).where(Event.id.in_(gone)))
    present = [first["series 0"], second["single"], third["series 0"], third["single"]]
    wanted = [*gone, *present]
    with app.services.sessions.begin() as session:
        locked, lost = instance_upkeep.lock_owners_found(session, wanted)
    assert (locked, lost) == (set(present), set(gone))
    assert instance_upkeep.lock_owners_found(app.services.sessions(), []) == (set(), set())
    if not not_sqlite(app):
        return  # (SQLite: the upkeep's transaction is the one writer, nothing is held)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:  # another transaction holds third's single
        with app.services.sessions.begin() as session:
            session.execute(
                sa.select(Event.id).where(Event.id == third["single"]).with_for_update()
            )
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        with app.services.sessions.begin() as session:
            locked, lost = instance_upkeep.lock_owners_found(session, wanted)
    finally:
        release.set()
        holder.join(30)
    assert (locked, lost) == (set(present) - {third["single"]}, set(gone))


def test_a_calendar_stored_anew_is_re_expanded_right(
    filled: tuple[EventsApp, list[User]],
    spy: Spy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, people = filled
    before = {user.email: owners_of(app, user) for user in people}
    # Each user: a single and a series with its exception deleted outside any request
    # (as a full sync's rows are), the other series changed on Google and pulled
    deleted: list[uuid.UUID] = []
    with app.services.sessions.begin() as session:
        for user in people:
            owners = before[user.email]
            deleted += [owners["single"], owners["series 0"]]
            session.execute(
                sa.delete(Event).where(
                    Event.user_id == user.id,
                    sa.or_(Event.id.in_(deleted), Event.recurring_event_id.is_not(None)),
                )
            )
    assert stored_for(app, deleted) == 0  # the cascade took them
    for user in people:
        change_on_google(app, user, f"changed for {user.email}")
    assert pending(app) > 0
    replaced: list[uuid.UUID] = []
    real = read_model.replace_owners

    def replace_owners(session: Any, owner_ids: Sequence[uuid.UUID], *a: Any, **k: Any) -> None:
        replaced.extend(owner_ids)
        real(session, owner_ids, *a, **k)

    monkeypatch.setattr(read_model, "replace_owners", replace_owners)
    done = upkeep.catch_up(app.services.sessions)
    assert (done.held, done.failed, done.more) == (0, 0, False)
    assert pending(app) == 0
    # the owners gone were not re-expanded; every owner present was, with its changes
    assert not set(replaced) & set(deleted)
    for user in people:
        assert before[user.email]["series 1"] in replaced
    kept = model_rows(app)
    with app.services.sessions.begin() as session:
        read_model.refresh_all(session)
    assert model_rows(app) == kept
    for user in people:
        pages, answered = listing(app, user, spy)
        assert answered
        assert f"changed for {user.email}" in titles(pages)
        assert pages == expanded(app, user)
