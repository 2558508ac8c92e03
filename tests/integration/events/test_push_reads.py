"""A push's reads before it writes to Google: four statements outside any transaction
(decisions IR1, IR2), and what they decide still decided per user.

Before the attempt is counted and the insert sent, a push reads the event's pending
outbox rows, the event (and its attendees), and its calendar with its owner's write state
(`outbox.push_context`: one statement where there were two, the user's row and the
calendar's). They share no snapshot by design, so on PostgreSQL they run in autocommit:
no ``BEGIN`` and no ``ROLLBACK`` round trip. What could go wrong: the joined read
mistaking one user's pause or status for another's, or the calendar read wrong (the
insert sent to the wrong calendar), or a connection given back still in autocommit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.store import outbox
from calsync.store.event_queries import read_stored
from calsync.store.events import load_stored
from calsync.sync.write_back import PushStatus
from tests.integration.events.conftest import START, EventsApp, User

pytestmark = pytest.mark.integration


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[tuple[str, bool | None]]]:
    """Each statement sent meanwhile (its SQL folded) and, on PostgreSQL, whether the
    driver's connection was in autocommit (then psycopg sent no ``BEGIN`` for it)."""
    sent: list[tuple[str, bool | None]] = []

    def before(conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        driver = conn.connection.dbapi_connection
        autocommit = driver.autocommit if conn.dialect.name == "postgresql" else None
        sent.append((" ".join(sql.split()), autocommit))

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def reads_before_the_attempt(sent: list[tuple[str, bool | None]]) -> list[tuple[str, bool | None]]:
    """The statements between the lease taken and the attempt counted (an insert's)."""
    lease, *rest = sent
    assert lease[0].startswith("UPDATE events SET push_lease_until"), lease
    end = next(n for n, (sql, _) in enumerate(rest) if sql.startswith("UPDATE outbox"))
    return rest[:end]


def new_event(app: EventsApp, user: User, day: int) -> str:
    start = START + timedelta(days=day, hours=9)
    body = {
        "title": f"{user.email}'s meeting",
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(minutes=30)).isoformat(),
    }
    return str(app.create(user, body)["id"])


def on_google(app: EventsApp, user: User) -> list[str]:
    listed = app.remote(user).list(calendarId=user.primary).execute().get("items", [])
    return [e["summary"] for e in listed]


def test_a_push_reads_in_four_statements_outside_a_transaction(any_app: EventsApp) -> None:
    app = any_app
    postgresql = app.services.engine.dialect.name == "postgresql"
    # Given three users, each with an event created through the API, not yet pushed
    people = [app.connect(f"reads{n}-{uuid.uuid4().hex[:6]}@example.com") for n in range(3)]
    made = {user.email: new_event(app, user, 2 + n) for n, user in enumerate(people)}
    for user in people:
        # When the worker pushes the user's event
        with statements(app.services.engine) as sent:
            result = app.push(made[user.email])
        assert result.status is PushStatus.SYNCED, result
        # Then it read the rows, the event, its attendees and its calendar with the
        # owner's write state: four statements, none of them in a transaction
        reads = reads_before_the_attempt(sent)
        assert [sql.split(" FROM ")[1].split()[0] for sql, _ in reads] == [
            "outbox",
            "events",
            "event_attendees",
            "calendars",
        ], reads
        if postgresql:
            assert [autocommit for _, autocommit in reads] == [True] * 4, reads
            # and every write after them ran in a transaction, as before
            assert all(not autocommit for sql, autocommit in sent if not sql.startswith("SELECT"))
    # And each user's own calendar on Google holds their event, once
    for user in people:
        assert on_google(app, user) == [f"{user.email}'s meeting"]


def test_one_users_paused_writes_leave_the_others_pushed(any_app: EventsApp) -> None:
    app = any_app
    ann, ben, cat = (app.connect(f"{name}-{uuid.uuid4().hex[:6]}@example.com") for name in "abc")
    made = {user.email: new_event(app, user, 3) for user in (ann, ben, cat)}
    # Given ben's writes paused for an hour (Google said his quota was used up)
    now = app.services.clock()
    with app.services.sessions.begin() as session:
        outbox.pause_user(session, ben.id, until=now + timedelta(hours=1))
    # When each event is pushed
    results = {user.email: app.push(made[user.email]).status for user in (ann, ben, cat)}
    # Then only ben's waits; nothing of his reached Google; ann's and cat's are there once
    assert results == {
        ann.email: PushStatus.SYNCED,
        ben.email: PushStatus.PAUSED,
        cat.email: PushStatus.SYNCED,
    }
    assert on_google(app, ben) == []
    for user in (ann, cat):
        assert on_google(app, user) == [f"{user.email}'s meeting"]
    # And once the pause is over, ben's push writes his, once
    with app.services.sessions.begin() as session:
        outbox.pause_user(session, ben.id, until=now - timedelta(seconds=1))
    assert app.push(made[ben.email]).status is PushStatus.SYNCED
    assert on_google(app, ben) == [f"{ben.email}'s meeting"]


def test_the_pushs_core_read_of_an_event_equals_the_orm_one(any_app: EventsApp) -> None:
    app = any_app
    ann, ben = (app.connect(f"{name}-{uuid.uuid4().hex[:6]}@example.com") for name in "ab")
    start = START + timedelta(days=5, hours=10)
    # Given ann's single with attendees (ben among them), reminders and a description,
    # a weekly series of ben's, and ann's event deleted after its push
    invited = app.create(
        ann,
        {
            "title": "planning",
            "description": "agenda " * 50,
            "location": "room 4",
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(hours=1)).isoformat(),
            "attendees": [
                {"email": "zed@example.com", "optional": True},
                {"email": ben.email},
                {"email": "amy@example.com", "display_name": "Amy"},
            ],
            "reminders": [15, 60],
        },
    )["id"]
    series = app.create(
        ben,
        {
            "title": "weekly",
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(minutes=30)).isoformat(),
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=5"],
        },
    )["id"]
    gone = new_event(app, ann, 6)
    app.push_all()
    assert app.client.delete(f"/events/{gone}", headers=ann.headers).status_code == 204
    # Then the push's read of each (before and after its push) is the ORM's
    for event_id in (invited, series, gone, str(uuid.uuid4())):
        with app.services.sessions() as session:
            core = read_stored(session, uuid.UUID(event_id))
        with app.services.sessions() as session:
            orm = load_stored(session, uuid.UUID(event_id))
        assert core == orm
    assert read_stored_of(app, invited).event.attendees[0].email == "amy@example.com"


def read_stored_of(app: EventsApp, event_id: str) -> Any:
    with app.services.sessions() as session:
        return read_stored(session, uuid.UUID(event_id))
