"""A push's transactions that the read model's triggers cannot record read no records
(decision IB2), and the model still follows every push, failed or not.

A push of one create is four transactions: the lease taken, the attempt counted, the
success stored, the lease given back. Only the success changes what a list shows (the
event's sync state): the lease is a column the triggers do not watch, and the outbox has
no trigger. Before, each of the four read ``instance_dirty`` before its commit. Both
databases, three users.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from calsync.store.tables import Event as EventRow
from calsync.store.tables import OutboxEntry
from calsync.sync.write_back import PushStatus
from tests.integration.events.conftest import START, EventsApp, User
from tests.integration.events.test_read_model import Spy
from tests.integration.events.test_read_model_upkeep import (
    expanded,
    filled,
    listing,
    pending,
    spy,
)

pytestmark = pytest.mark.integration

__all__ = ["filled", "spy"]  # fixtures, used by name

EVENTS = r"/calendar/v3/calendars/[^/]+/events"


def single(title: str, days: int) -> dict[str, Any]:
    start = START + timedelta(days=days, hours=10)
    return {
        "title": title,
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(minutes=30)).isoformat(),
    }


@contextmanager
def statements(app: EventsApp) -> Iterator[list[str]]:
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        sent.append(sql)

    event.listen(app.services.engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(app.services.engine, "before_cursor_execute", seen)


def records_read(sent: list[str]) -> int:
    """Statements that read ``instance_dirty``: a ``SELECT``, or a pull's log row whose
    ``WITH`` counts them (decision IO2); not a push's ``WITH`` that replaces a document
    and deletes its own records (IG2), which reads none it did not name."""
    return sum(
        1
        for sql in sent
        if "FROM instance_dirty" in sql
        and "DELETE FROM instance_dirty" not in sql
        and sql.startswith(("SELECT", "WITH"))
    )


def sync_state(app: EventsApp, user: User, title: str, spy: Spy) -> tuple[str, bool]:
    pages, answered = listing(app, user, spy)
    states = {e["sync_state"] for events, _ in pages for e in events if e["title"] == title}
    assert len(states) == 1, states
    return states.pop(), answered


def test_a_push_reads_records_only_for_its_success(
    filled: tuple[EventsApp, list[User]], spy: Spy
) -> None:
    app, people = filled
    # A series: a pushed single's document is replaced in the success's transaction
    # (decision IG2, test_push_documents); a series' success leaves records for a run.
    made = {
        user.id: app.create(
            user, single(f"pushed {user.email}", 3) | {"recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"]}
        )
        for user in people
    }
    for user in people:
        assert sync_state(app, user, f"pushed {user.email}", spy) == ("pending", True)
    for user in people:
        with statements(app) as sent:
            result = app.push(made[user.id]["id"])
        assert result.status is PushStatus.SYNCED
        # Then only the transaction that stored the success read the records
        assert records_read(sent) == 1, [s for s in sent if "instance_dirty" in s]
    # And that success was recorded: the lists are expanded until the upkeep runs,
    # then come from the model again, each showing its own event synced, once on Google
    assert pending(app) > 0
    for user in people:
        assert sync_state(app, user, f"pushed {user.email}", spy) == ("synced", False)
    app.upkeep()
    assert pending(app) == 0
    for user in people:
        assert sync_state(app, user, f"pushed {user.email}", spy) == ("synced", True)
        pages, _ = listing(app, user, spy)
        assert pages == expanded(app, user)
        inserts = app.google_requests("POST", user.primary)
        assert len([r for r in inserts if r.get("status", 200) < 300]) >= 1
        listed = app.remote(user).list(calendarId=user.primary, q="pushed").execute()["items"]
        assert [e["summary"] for e in listed] == [f"pushed {user.email}"]
    with app.services.sessions() as session:
        leases = session.scalars(
            sa.select(EventRow.push_lease_until).where(
                EventRow.id.in_([uuid.UUID(m["id"]) for m in made.values()])
            )
        ).all()
    assert leases == [None, None, None]


def test_a_failed_push_leaves_the_lists_as_they_were(
    filled: tuple[EventsApp, list[User]], spy: Spy
) -> None:
    app, (alice, bob, _carol) = filled
    made = app.create(alice, single("while google fails", 5))
    bobs = listing(app, bob, spy)
    app.control.add_fault(kind="status", status=503, count=None, path=EVENTS)
    with statements(app) as sent:
        result = app.push(made["id"])
    app.control.clear_faults()
    # Then the push is to be retried, counted on its row, and nothing it wrote was a
    # change to list: no transaction of it read the records but the failure's
    assert result.status is PushStatus.RETRY
    with app.services.sessions() as session:
        attempts = session.scalars(
            sa.select(OutboxEntry.attempts).where(OutboxEntry.event_id == uuid.UUID(made["id"]))
        ).all()
    assert attempts
    assert all(n >= 1 for n in attempts)
    assert records_read(sent) <= 1
    state, _ = sync_state(app, alice, "while google fails", spy)
    assert state in ("pending", "error")
    app.upkeep()
    assert listing(app, bob, spy) == bobs
    alices, answered = listing(app, alice, spy)
    assert answered
    assert alices == expanded(app, alice)
    # And once Google answers again the retry pushes it, once
    app.clock.advance(hours=2)
    app.push_all()
    app.upkeep()
    assert sync_state(app, alice, "while google fails", spy) == ("synced", True)
    listed = app.remote(alice).list(calendarId=alice.primary, q="fails").execute()["items"]
    assert [e["summary"] for e in listed] == ["while google fails"]
