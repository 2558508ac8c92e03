"""Migration 0019's one foreign key from ``events`` to ``calendars (id, user_id)``
(decision IX): the upgrade keeps every row and what hangs off it on both databases (on
SQLite, where ``events`` is rebuilt, the attendees, documents, instances and outbox rows
survive and the read model's triggers still fire); a user's or a calendar's delete still
reaches the events and what hangs off them; an event whose user is not its calendar's
owner is refused, by the key and, for rows already there, by the upgrade. Several
users, one of them sharing a Google calendar with another (each has a row of their own
for it)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.store import migrate
from calsync.store.db import make_engine, make_session_factory
from calsync.store.event_bulk_writes import insert_events
from calsync.store.tables import (
    Calendar,
    EventAttendee,
    OutboxEntry,
    User,
    event_documents,
    event_instances,
    instance_dirty,
    instance_horizon,
)
from calsync.store.tables import Event as EventRow
from tests.integration.events.test_read_model_records import event_row

pytestmark = pytest.mark.integration

_events = EventRow.__table__
START = datetime(2031, 3, 3, 9, tzinfo=UTC)
Owner = tuple[uuid.UUID, uuid.UUID]
HANGING = ("event_attendees", "event_documents", "event_instances", "outbox")


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0018(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An engine on an empty database of each kind migrated to 0018."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'calsync.db'}"
    else:
        url = request.getfixturevalue("empty_pg_url")
    engine = make_engine(url)
    migrate.upgrade(engine, "0018")
    yield engine
    engine.dispose()


def _calendar(session: Session, user_id: uuid.UUID, google_id: str) -> uuid.UUID:
    calendar = Calendar(user_id=user_id, provider_calendar_id=google_id, access_role="owner")
    session.add(calendar)
    session.flush()
    return calendar.id


def _people(session: Session) -> dict[str, Owner]:
    """Ann and Bob, each with a primary calendar and each with a row of their own for the
    one Google calendar they share; Cy with a primary."""
    found: dict[str, Owner] = {}
    for name in ("ann", "bob", "cy"):
        user = User(email=f"{name}-{uuid.uuid4().hex[:6]}@example.com")
        session.add(user)
        session.flush()
        found[name] = (user.id, _calendar(session, user.id, "primary"))
    for name in ("ann", "bob"):
        user_id = found[name][0]
        found[f"{name}-shared"] = (user_id, _calendar(session, user_id, "team@group.calendar"))
    return found


def _hang_off(session: Session, row: dict[str, Any]) -> None:
    """An attendee, a document, an instance and an outbox row of the event `row`."""
    session.add(EventAttendee(event_id=row["id"], email=f"{uuid.uuid4().hex[:6]}@example.com"))
    session.add(
        OutboxEntry(
            event_id=row["id"],
            user_id=row["user_id"],
            calendar_id=row["calendar_id"],
            operation="update",
        )
    )
    session.execute(sa.insert(event_documents).values(event_id=row["id"], body=b"{}"))
    session.execute(
        sa.insert(event_instances).values(
            owner_id=row["id"],
            api_id=str(row["id"]),
            user_id=row["user_id"],
            calendar_id=row["calendar_id"],
            in_series=False,
            sort_at=row["start_time"],
            end_at=row["end_time"],
            all_day=False,
            long_span=False,
            status="confirmed",
            version=1,
        )
    )
    session.flush()


def _fill(sessions: sessionmaker[Session]) -> dict[str, Owner]:
    """Every calendar of `_people` with two events, each with what hangs off it."""
    with sessions.begin() as session:
        people = _people(session)
        for n, owner in enumerate(people.values()):
            for k in range(2):
                row = event_row(owner, 2 * n + k)
                session.execute(sa.insert(_events), [row])
                _hang_off(session, row)
    return people


def _left(sessions: sessionmaker[Session], table: str) -> int:
    with sessions() as session:
        # a table name of this module's constants
        return session.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0  # noqa: S608


def _counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    counted = ("events", "calendars", "users", *HANGING)
    return {t: _left(sessions, t) for t in counted}


def test_the_upgrade_keeps_every_row_and_the_triggers(at_0018: sa.Engine) -> None:
    sessions = make_session_factory(at_0018)
    people = _fill(sessions)
    before = _counts(sessions)
    assert before["events"] == 10
    assert all(before[t] == 10 for t in HANGING)

    migrate.upgrade(at_0018)

    assert _counts(sessions) == before
    with at_0018.connect() as connection:
        keys = sa.inspect(connection).get_foreign_keys("events")
        if at_0018.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert [
        (k["constrained_columns"], k["referred_table"], k["referred_columns"]) for k in keys
    ] == [(["calendar_id", "user_id"], "calendars", ["id", "user_id"])]
    # the read model's triggers still record an insert, an update and a delete
    with sessions.begin() as session:
        session.execute(
            sa.insert(instance_horizon).values(
                id=1, first_at=START, end_at=START + timedelta(days=400), filled=True
            )
        )
        row = event_row(people["bob-shared"], 30)
        session.execute(sa.insert(_events), [row])
        session.execute(sa.update(_events).where(_events.c.id == row["id"]).values(title="x"))
        session.execute(sa.delete(_events).where(_events.c.id == row["id"]))
        recorded = session.scalars(
            sa.select(instance_dirty.c.event_id).where(instance_dirty.c.event_id == row["id"])
        ).all()
    assert len(recorded) == 3

    migrate.downgrade(at_0018, "0018")
    assert _counts(sessions) == before
    migrate.upgrade(at_0018)
    assert _counts(sessions) == before


def test_the_upgrade_refuses_an_event_of_another_user_than_its_calendars(
    at_0018: sa.Engine,
) -> None:
    sessions = make_session_factory(at_0018)
    people = _fill(sessions)
    with sessions.begin() as session:
        # Bob's row in Ann's copy of the shared calendar: the old keys allow it
        session.execute(
            sa.insert(_events), [event_row((people["bob"][0], people["ann-shared"][1]), 40)]
        )
    before = _counts(sessions)

    with pytest.raises(RuntimeError, match="1 events' user_id is not their calendar's owner"):
        migrate.upgrade(at_0018)

    assert _counts(sessions) == before
    with at_0018.connect() as connection:
        assert migrate._current_revisions(connection) == {"0018"}


@pytest.fixture
def filled(sessions: sessionmaker[Session]) -> tuple[sessionmaker[Session], dict[str, Owner]]:
    return sessions, _fill(sessions)


def _events_of(sessions: sessionmaker[Session]) -> set[tuple[uuid.UUID, uuid.UUID]]:
    with sessions() as session:
        return {(r.user_id, r.calendar_id) for r in session.execute(sa.select(_events))}


def test_a_users_delete_reaches_their_events_and_what_hangs_off_them(
    filled: tuple[sessionmaker[Session], dict[str, Owner]],
) -> None:
    sessions, people = filled
    with sessions.begin() as session:
        session.execute(sa.delete(User).where(User.id == people["ann"][0]))

    assert _events_of(sessions) == {people[n] for n in ("bob", "cy", "bob-shared")}
    assert all(_left(sessions, t) == 6 for t in HANGING)


def test_a_calendars_delete_reaches_its_events_and_what_hangs_off_them(
    filled: tuple[sessionmaker[Session], dict[str, Owner]],
) -> None:
    sessions, people = filled
    with sessions.begin() as session:
        session.execute(sa.delete(Calendar).where(Calendar.id == people["ann-shared"][1]))

    assert _events_of(sessions) == {people[n] for n in ("ann", "bob", "cy", "bob-shared")}
    assert all(_left(sessions, t) == 8 for t in HANGING)


@pytest.mark.parametrize("bulk", [False, True], ids=["insert", "bulk"])
def test_an_event_of_another_user_than_its_calendars_is_refused(
    filled: tuple[sessionmaker[Session], dict[str, Owner]], bulk: bool
) -> None:
    sessions, people = filled
    mismatched = event_row((people["bob"][0], people["ann-shared"][1]), 50)

    refused = (sa.exc.IntegrityError, psycopg.errors.IntegrityError)  # the COPY's own
    with pytest.raises(refused), sessions.begin() as session:
        _insert(session, mismatched, bulk=bulk)

    with sessions.begin() as session:  # its own owner's calendar takes it
        _insert(session, event_row(people["bob-shared"], 50), bulk=bulk)
    assert _left(sessions, "events") == 11


def _insert(session: Session, row: dict[str, Any], *, bulk: bool) -> None:
    if bulk:  # a COPY on PostgreSQL
        insert_events(session, [row])
    else:
        session.execute(sa.insert(_events), [row])


def _orphan_attendee(engine: sa.Engine) -> None:
    """An attendee of no event, as a SQLite file edited with its keys off may hold."""
    raw: Any = engine.raw_connection()
    try:
        raw.execute("PRAGMA foreign_keys=OFF")
        raw.execute(
            "INSERT INTO event_attendees (id, event_id, email, response_status, optional,"
            " is_organizer, created_at, updated_at) VALUES (?, ?, 'x@example.com',"
            " 'needsAction', 0, 0, '2031-01-01', '2031-01-01')",
            (uuid.uuid4().hex, uuid.uuid4().hex),
        )
        raw.commit()
        raw.execute("PRAGMA foreign_keys=ON")
    finally:
        raw.close()


def test_a_sqlite_upgrade_that_fails_changes_nothing_and_can_run_again(
    tmp_path: Path,
) -> None:
    """Review SB2: an upgrade that stops in the rebuild's part (here on an orphan row of
    another table, which SQLite's ``foreign_key_check`` finds) leaves the file at 0018
    without the new index (it was left behind, and the next ``calsync migrate`` stopped
    on "index ix_calendars_id_user_id already exists"), so that migrating again runs."""
    engine = make_engine(f"sqlite:///{tmp_path / 'calsync.db'}")
    migrate.upgrade(engine, "0018")
    sessions = make_session_factory(engine)
    _fill(sessions)
    _orphan_attendee(engine)
    before = _counts(sessions)

    with pytest.raises(RuntimeError, match=r"before any change.*event_attendees"):
        migrate.upgrade(engine)

    assert _counts(sessions) == before
    with engine.connect() as connection:
        assert migrate._current_revisions(connection) == {"0018"}
        assert "ix_calendars_id_user_id" not in {
            i["name"] for i in sa.inspect(connection).get_indexes("calendars")
        }
        connection.exec_driver_sql(
            "DELETE FROM event_attendees WHERE event_id NOT IN (SELECT id FROM events)"
        )
        connection.commit()
    migrate.upgrade(engine)
    assert migrate.is_at_head(engine)
    assert _counts(sessions) == {**before, "event_attendees": before["event_attendees"] - 1}
    engine.dispose()


def test_the_cli_names_a_refused_upgrade_in_one_line(at_0018: sa.Engine) -> None:
    """``calsync migrate`` over an event of another user than its calendar's: exit 1, one
    line saying what to correct, no traceback, the database still at 0018."""
    sessions = make_session_factory(at_0018)
    people = _fill(sessions)
    with sessions.begin() as session:
        session.execute(
            sa.insert(_events), [event_row((people["bob"][0], people["ann-shared"][1]), 41)]
        )

    done = subprocess.run(
        [sys.executable, "-m", "calsync.cli", "migrate"],
        env=os.environ | {"CALSYNC_DATABASE_URL": at_0018.url.render_as_string(False)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1, done.stderr
    said = [line for line in done.stderr.splitlines() if not line.startswith("calsync: migrate:")]
    assert len(said) == 1, done.stderr
    assert said[0].startswith("calsync: migration refused: migration 0019: 1 events' user_id")
    with at_0018.connect() as connection:
        assert migrate._current_revisions(connection) == {"0018"}
