"""The transaction that stores a pull commits without waiting for the WAL flush on
PostgreSQL, and only that transaction (decision HD1), and so does the statement that takes
the pull's lease (decision HP2); on both databases several users' pulls store each user's
own events.

What could go wrong: ``SET`` without ``LOCAL`` would leave every later transaction of the
pooled connection (an API write, a push's outbox row) committing asynchronously too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.config import Settings
from calsync.store import pull_leases
from calsync.store.tables import Calendar, Event
from calsync.sync.pull import pull_calendar
from tests.conftest import FakeGoogle
from tests.integration.sync.conftest import SyncStack, migrated, running_stack, sync_settings

pytestmark = pytest.mark.integration

EMAILS = ("ann@example.com", "ben@example.com")


@contextmanager
def commit_modes(engine: sa.Engine) -> Iterator[tuple[list[str], list[str]]]:
    """The ``synchronous_commit`` of every transaction committed meanwhile (read just
    before its commit), and of every connection given back to the pool (after its reset)."""
    committed: list[str] = []
    returned: list[str] = []
    if engine.dialect.name != "postgresql":  # SQLite has no such setting
        yield committed, returned
        return

    def setting(dbapi_connection: Any) -> str:
        return str(dbapi_connection.execute("SHOW synchronous_commit").fetchone()[0])

    def on_commit(connection: sa.Connection) -> None:
        committed.append(setting(connection.connection.driver_connection))

    def on_checkin(dbapi_connection: Any, _record: Any) -> None:
        returned.append(setting(dbapi_connection))
        dbapi_connection.rollback()  # SHOW began a transaction; the pool keeps none open

    sa.event.listen(engine, "commit", on_commit)
    sa.event.listen(engine.pool, "checkin", on_checkin)
    try:
        yield committed, returned
    finally:
        sa.event.remove(engine, "commit", on_commit)
        sa.event.remove(engine.pool, "checkin", on_checkin)


def test_a_pull_commits_without_waiting_for_the_flush_and_only_it(hand_stack: SyncStack) -> None:
    services = hand_stack.services
    # Given two users, each with an event of their own on Google and their calendar
    # pulled once
    calendars = {}
    for email in EMAILS:
        user_id = hand_stack.connect_pulled(email)
        calendars[email] = hand_stack.calendar_id(user_id, email)
        hand_stack.google_as(email).events().insert(
            calendarId="primary",
            body={
                "summary": f"{email}'s meeting",
                "start": {"dateTime": "2026-06-01T09:00:00Z"},
                "end": {"dateTime": "2026-06-01T10:00:00Z"},
            },
        ).execute()
    # When each calendar is pulled
    with commit_modes(services.engine) as (committed, returned):
        for email in EMAILS:
            assert pull_calendar(services, calendars[email]).status == "ok"
        with services.sessions.begin() as session:  # a transaction of someone else
            session.execute(sa.update(Calendar).values(summary="renamed"))
    # Then each user's calendar holds exactly their own event
    with services.sessions() as session:
        for email in EMAILS:
            titles = session.scalars(
                sa.select(Event.title).where(Event.calendar_id == calendars[email])
            ).all()
            assert titles == [f"{email}'s meeting"], (email, titles)
    if services.engine.dialect.name != "postgresql":
        return
    # And on PostgreSQL each pull's one committed transaction (the store's) did not
    # wait for the flush, the other transaction did, and no connection went back to the
    # pool with the setting changed
    assert committed == ["off", "off", "on"], committed
    assert returned, "no connection was given back"
    assert set(returned) == {"on"}, returned


@pytest.fixture
def postgresql_hand_stack(
    production_settings: Settings, fake_google: FakeGoogle
) -> Iterator[SyncStack]:
    """`hand_stack` on PostgreSQL only: SQLite has no asynchronous commit to check."""
    settings = sync_settings(migrated(production_settings), fake_google)
    yield from running_stack(settings, fake_google, threads=0)


def test_the_lease_commits_without_waiting_for_the_flush_and_only_it(
    postgresql_hand_stack: SyncStack,
) -> None:
    hand_stack = postgresql_hand_stack
    services = hand_stack.services
    # Given two users' calendars, pulled once
    calendars = [
        hand_stack.calendar_id(hand_stack.connect_pulled(email), email) for email in EMAILS
    ]
    # When a pull takes each one's lease, as `pull_calendar` does (autocommit)
    now = services.clock()
    for number, calendar_id in enumerate(calendars):
        with services.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as connection:
            lease = pull_leases.start_pull(
                connection, calendar_id, owner=f"test:{number}", now=now, ttl=timedelta(minutes=5)
            )
            after = connection.exec_driver_sql("SHOW synchronous_commit").scalar_one()
        # Then its one-statement transaction committed without waiting for the flush
        # (the mode its statement set), and the connection's next one waits again
        assert lease is not None
        assert lease.sync_lease_owner == f"test:{number}"
        assert lease.commit_mode == "off"
        assert after == "on"
    # And each lease is its own pull's: the other calendar's lease is not taken again
    with services.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        taken = pull_leases.start_pull(
            connection, calendars[0], owner="test:1", now=now, ttl=timedelta(minutes=5)
        )
    assert taken is None
