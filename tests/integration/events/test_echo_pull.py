"""The echo: the pull that Google's notification of calsync's own push asks for (issue
21, decision Y7: it stays). Its listing holds only the row just pushed, under the etag the
push stored, so it changes nothing - and now writes nothing the read model's triggers
could record, so it reads no records before its commit (decision IK2). A change another
client makes at Google at the same moment is in the same listing and must still arrive,
once, with the model kept (its records read, the upkeep asked for). Both databases,
three users.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from calsync.store.tables import SyncLog
from calsync.sync.write_back import PushStatus
from tests.integration.events.conftest import EventsApp, User
from tests.integration.events.test_push_documents import on_google, shown
from tests.integration.events.test_push_records import records_read, single, statements
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


def _pulls_logged(app: EventsApp, user: User) -> int:
    with app.services.sessions() as session:
        return (
            session.scalar(
                sa.select(sa.func.count())
                .select_from(SyncLog)
                .where(SyncLog.calendar_id == user.calendar_id, SyncLog.kind == "pull")
            )
            or 0
        )


def _event_writes(sent: list[str]) -> list[str]:
    return [
        sql
        for sql in sent
        if sql.startswith(("UPDATE events", "INSERT INTO events", "DELETE FROM events", "COPY"))
    ]


def test_the_echo_of_a_push_changes_nothing_and_reads_no_records(
    filled: tuple[EventsApp, list[User]], spy: Spy
) -> None:
    app, people = filled
    for user in people:
        app.pull(user)  # the calendar has a sync token: the echo lists by it
        title = f"echo {user.email}"
        made = app.create(user, single(title, 3))
        assert app.push(made["id"]).status is PushStatus.SYNCED
        logged = _pulls_logged(app, user)
        # When Google's notification of that push makes calsync pull the calendar
        with statements(app) as sent:
            app.pull(user)
        # Then the pull wrote no event (the statements SQLAlchemy sends: on PostgreSQL the
        # rows' raw UPDATE and COPY pass beside it) and read no records
        assert _event_writes(sent) == [], user.email
        assert records_read(sent) == 0, user.email
        assert pending(app) == 0
        # And it is still logged, and the list comes from the model, synced, as expanded
        assert _pulls_logged(app, user) == logged + 1
        item, answered = shown(app, user, spy, title)
        assert answered
        assert item["sync_state"] == "synced"
        assert listing(app, user, spy)[0] == expanded(app, user)


def test_a_change_at_google_beside_the_echo_arrives_once(
    filled: tuple[EventsApp, list[User]], spy: Spy
) -> None:
    app, people = filled
    for user in people:
        app.pull(user)
        title = f"beside {user.email}"
        made = app.create(user, single(title, 5))
        assert app.push(made["id"]).status is PushStatus.SYNCED
        # Given another client, at the moment of the push's notification, moves the
        # pushed event to another room and adds an event of its own
        remote = app.remote(user)
        (google,) = on_google(app, user, title)
        remote.patch(
            calendarId=user.primary, eventId=google["id"], body={"location": "Room 9"}
        ).execute()
        other = single(f"other {user.email}", 6)
        remote.insert(
            calendarId=user.primary,
            body={
                "summary": other["title"],
                "start": {"dateTime": other["start_time"]},
                "end": {"dateTime": other["end_time"]},
            },
        ).execute()
        # When the echo's pull runs
        with statements(app) as sent:
            app.pull(user)
        # Then it stored both changes and read its records (the upkeep is asked for)
        assert records_read(sent) == 1, user.email
        assert pending(app) > 0
        app.upkeep()
        # And the list, from the model, shows each event once, as the expansion does
        item, answered = shown(app, user, spy, title)
        assert answered
        assert item["location"] == "Room 9"
        assert item["sync_state"] == "synced"
        shown(app, user, spy, other["title"])
        assert listing(app, user, spy)[0] == expanded(app, user)
        # And Google still holds one copy of the pushed event, nothing was written back
        assert len(on_google(app, user, title)) == 1
        assert app.push_all() == []
