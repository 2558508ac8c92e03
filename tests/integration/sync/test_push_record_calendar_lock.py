"""A write of an event never holds its row while it waits for its calendar's (JL1).

On PostgreSQL the foreign keys to a calendar (an outbox row's, a sync log's, the event
row's own when the transaction updates it twice) take ``FOR KEY SHARE`` on the calendar's
row when checked. The API's edit locked the event's row and then inserted its outbox
row; the push updated the event's row and then inserted its sync log: each waited for
the calendar's row while holding the event's. A pull updates its calendar's row and
then locks the events it lists, so a pull and such a write of one of those events
deadlocked; PostgreSQL failed one of them after a second (seen under load; likely CI's
non-2xx answer and writes that waited seconds, decision JL1). Each write now
takes the calendar's key first (`event_changes.hold_calendar_key`).

The test plays the pull's part with a transaction that holds Ann's calendar row
(``FOR UPDATE``, as a change notification's claim holds it: deterministic where a pull's
update conflicts only in a race) while Ann's edit, then its push, run; then it locks the
event's row as the pull would, without waiting (``NOWAIT``): on main the write held it.
PostgreSQL only: SQLite has no row locks (its writers take turns, `sqlite_turns`).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from calsync.config import Settings
from calsync.store.db import make_engine
from calsync.store.tables import Calendar
from calsync.store.tables import Event as EventRow
from calsync.sync.write_back import push_outbox
from tests.conftest import FakeGoogle
from tests.integration.sync.conftest import SyncStack, running_stack, sync_settings

pytestmark = pytest.mark.integration

ANN, BEN = "ann@example.com", "ben@example.com"

#: Whether any backend waits for the holder's backend.
_BLOCKED_BY: Any = sa.text(
    "SELECT count(*) FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))"
)


@pytest.fixture
def stack(production_settings: Settings, fake_google: FakeGoogle) -> Iterator[SyncStack]:
    """calsync on PostgreSQL without worker threads: the test runs the push itself."""
    settings = sync_settings(production_settings, fake_google)
    yield from running_stack(settings, fake_google, threads=0)


@pytest.fixture
def engine(stack: SyncStack) -> Iterator[Engine]:
    """Connections of the test's own to the stack's database."""
    engine = make_engine(stack.services.settings.database_url)
    yield engine
    engine.dispose()


def _created(stack: SyncStack, user_id: uuid.UUID) -> uuid.UUID:
    """An event tomorrow created by `user_id` through the API."""
    begins = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    body = {
        "title": "planning",
        "start_time": begins.isoformat(),
        "end_time": (begins + timedelta(hours=1)).isoformat(),
    }
    answer = httpx.post(f"{stack.url}/events", json=body, headers=stack.headers(user_id))
    assert answer.status_code == 201, answer.text
    return uuid.UUID(answer.json()["id"])


def _while_calendar_held(
    engine: Engine, calendar_id: uuid.UUID, event_id: uuid.UUID, write: Callable[[], Any]
) -> tuple[bool, list[Any]]:
    """Run `write` while another transaction holds the calendar's row; once it has
    finished or waits for that transaction, lock the event's row there without waiting.
    Whether that lock was had, and what `write` returned."""
    outcome: list[Any] = []
    with engine.connect() as holder:
        holder.execute(sa.select(Calendar.id).where(Calendar.id == calendar_id).with_for_update())
        pid = holder.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        writing = threading.Thread(target=lambda: outcome.append(write()))
        writing.start()
        with engine.connect() as watcher:
            while writing.is_alive() and not watcher.execute(_BLOCKED_BY, {"holder": pid}).scalar():
                writing.join(0.02)
        locked = _lock_now(holder, event_id)
        holder.rollback()
        writing.join()
    return locked, outcome


def _lock_now(connection: Connection, event_id: uuid.UUID) -> bool:
    """Whether `connection` locks the event's row as a pull does, at once."""
    try:
        with connection.begin_nested():
            connection.execute(
                sa.select(EventRow.id)
                .where(EventRow.id == event_id)
                .with_for_update(key_share=True, nowait=True)
            )
    except sa.exc.OperationalError as err:
        if "could not obtain lock" not in str(err):
            raise
        return False
    return True


def test_an_edit_and_its_push_leave_the_event_to_a_pull_holding_the_calendar(
    stack: SyncStack, engine: Engine
) -> None:
    # Given Ann and Ben, each with an event created through the API and pushed
    users = {email: stack.connect_pulled(email) for email in (ANN, BEN)}
    created = {email: _created(stack, users[email]) for email in users}
    for event_id in created.values():
        push_outbox(stack.services, stack.services.providers, event_id)
    calendar = stack.calendar_id(users[ANN], ANN)
    event = created[ANN]

    # When Ann retitles hers through the API while her calendar's row is held
    def edit() -> httpx.Response:
        with httpx.Client(base_url=stack.url, timeout=60) as client:
            return client.patch(
                f"/events/{event}", json={"title": "retitled"}, headers=stack.headers(users[ANN])
            )

    locked, answers = _while_calendar_held(engine, calendar, event, edit)
    # Then the edit did not hold the event's row meanwhile, and it answered
    assert locked, "the edit held the event's row while it waited for the calendar's"
    assert [a.status_code for a in answers] == [200], answers[0].text

    # And when the edit is pushed while the calendar's row is held, the same
    def push() -> Any:
        return push_outbox(stack.services, stack.services.providers, event)

    locked, _ = _while_calendar_held(engine, calendar, event, push)
    assert locked, "the push held the event's row while it waited for the calendar's"
    # And both events are synced, Ann's retitled at Google
    with stack.services.sessions() as session:
        rows = session.execute(
            sa.select(EventRow.id, EventRow.sync_state).where(
                EventRow.id.in_(list(created.values()))
            )
        ).all()
    states = {event_id: state for event_id, state in rows}
    assert states == {created[ANN]: "synced", created[BEN]: "synced"}
    assert "retitled" in {e.title for e in stack.remote_events(ANN, ANN).values()}
