"""A pull that writes events logs itself in the statement that counts its records
(decision IO2). The sync log row is a pull's last write, and a pull that wrote events
then read, before its commit, whether it left records for the read model's upkeep: on
PostgreSQL the row is now inserted by that count's statement (a ``WITH`` of it), one
statement fewer; SQLite keeps the two. Either way the row holds the pull's counts, the
upkeep is asked for (the job queued after the commit brings the model up to date), and
a pull that writes no event logs itself as before, reading no records. Both databases,
three users: another user's log and list stay as they were.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from calsync.store.tables import SyncLog
from tests.integration.events.conftest import EventsApp, User
from tests.integration.events.test_push_records import records_read, single, statements
from tests.integration.events.test_read_model import Spy
from tests.integration.events.test_read_model_upkeep import (
    expanded,
    filled,
    listing,
    pending,
    run_jobs,
    spy,
    titles,
)

pytestmark = pytest.mark.integration

__all__ = ["filled", "spy"]  # fixtures, used by name


def _logs(app: EventsApp, user: User) -> list[Any]:
    """The user's sync log rows of pulls (the test's clock stands still: a new row is
    found as the one not seen before)."""
    with app.services.sessions() as session:
        return list(
            session.execute(
                sa.select(
                    SyncLog.id, SyncLog.kind, SyncLog.pulled, SyncLog.changed, SyncLog.details
                ).where(SyncLog.user_id == user.id, SyncLog.kind == "pull")
            )
        )


def _new_log(app: EventsApp, user: User, before: list[Any]) -> Any:
    """The one pull log row of `user` that is not among `before`."""
    known = {row.id for row in before}
    (row,) = [row for row in _logs(app, user) if row.id not in known]
    return row


def _log_statements(sent: list[str]) -> list[str]:
    return [sql for sql in sent if "sync_logs" in sql]


def _added_at_google(app: EventsApp, user: User, titles_: list[str]) -> None:
    remote = app.remote(user)
    for n, title in enumerate(titles_):
        event = single(title, 4 + n)
        remote.insert(
            calendarId=user.primary,
            body={
                "summary": title,
                "start": {"dateTime": event["start_time"]},
                "end": {"dateTime": event["end_time"]},
            },
        ).execute()


def test_a_pull_that_writes_events_logs_itself_where_it_counts_its_records(
    filled: tuple[EventsApp, list[User]], spy: Spy
) -> None:
    app, people = filled
    postgresql = app.services.engine.dialect.name == "postgresql"
    for user in people:
        app.pull(user)  # the calendar has a sync token: the next pull lists by it
        others = {other.id: _logs(app, other) for other in people if other is not user}
        lists = {other.id: listing(app, other, spy)[0] for other in people if other is not user}
        # Given another client adds two events at Google
        added = [f"added {user.email} {n}" for n in range(2)]
        _added_at_google(app, user, added)
        app.services.broker.flush_all()
        logged = _logs(app, user)
        # When calsync pulls the calendar
        with statements(app) as sent:
            app.pull(user)
        # Then the log row is written by one statement, which on PostgreSQL is the one
        # that reads the transaction's records (SQLite: a plain INSERT, then the read)
        (log,) = _log_statements(sent)
        assert records_read(sent) == 1, user.email
        if postgresql:
            assert log.startswith("WITH"), log
            assert "FROM instance_dirty" in log, log
        else:
            assert log.startswith("INSERT INTO sync_logs"), log
        # And the row holds the pull's counts
        row = _new_log(app, user, logged)
        assert (row.pulled, row.changed) == (2, 2)
        assert (row.details["inserted"], row.details["updated"]) == (2, 0)
        # And the upkeep was asked for: the job queued after the commit catches up
        assert pending(app) > 0
        run_jobs(app)
        assert pending(app) == 0
        pages, answered = listing(app, user, spy)
        assert answered
        assert set(added) <= titles(pages)
        assert pages == expanded(app, user)
        # And nobody else's log or list changed
        for other_id, rows_before in others.items():
            assert _logs(app, _user(people, other_id)) == rows_before
            assert listing(app, _user(people, other_id), spy)[0] == lists[other_id]


def test_a_pull_that_writes_no_event_logs_itself_and_reads_no_records(
    filled: tuple[EventsApp, list[User]],
) -> None:
    app, people = filled
    for user in people:
        app.pull(user)
        logged = _logs(app, user)
        # When nothing changed at Google and calsync pulls
        with statements(app) as sent:
            app.pull(user)
        # Then it logs itself with a plain INSERT and reads no records
        (log,) = _log_statements(sent)
        assert log.startswith("INSERT INTO sync_logs"), log
        assert records_read(sent) == 0
        row = _new_log(app, user, logged)
        assert (row.pulled, row.changed) == (0, 0)


def _user(people: list[User], user_id: Any) -> User:
    (found,) = [p for p in people if p.id == user_id]
    return found
