"""The change records the read model's triggers write (migrations 0015, 0016, 0018) are
the same on both databases: PostgreSQL's statement triggers with transition tables
(decision HJ2) record what SQLite's row triggers record, for several users' rows written
in bulk (``COPY`` on PostgreSQL), updated, given attendees and deleted; an update that
keeps a row's key records it once, not twice (decision HJ3)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.store.event_bulk_writes import insert_events
from calsync.store.tables import Event as EventRow
from calsync.store.tables import EventAttendee, instance_dirty, instance_horizon
from tests.owners import add_owner

pytestmark = pytest.mark.integration

_events = EventRow.__table__
START = datetime(2031, 3, 3, 9, tzinfo=UTC)
Key = tuple[uuid.UUID, uuid.UUID, uuid.UUID, str | None]


def event_row(owner: tuple[uuid.UUID, uuid.UUID], n: int, **extra: Any) -> dict[str, Any]:
    """An `events` row of `owner` (user, calendar), a synced timed single `n` days after
    `START` (`extra` overrides columns); also used by tests/integration/store."""
    user_id, calendar_id = owner
    start = START + timedelta(days=n)
    return {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "calendar_id": calendar_id,
        "google_event_id": f"g{uuid.uuid4().hex}",
        "title": f"event {n}",
        "start_time": start,
        "end_time": start + timedelta(hours=1),
        "sync_state": "synced",
        "all_day": False,
        "is_recurring": False,
        "recurrence_rule": None,
        "recurring_event_id": None,
        **extra,
    }


def _taken(sessions: sessionmaker[Session]) -> Counter[Key]:
    """The records written since the last call (each key, how often), removed."""
    t = instance_dirty
    with sessions.begin() as session:
        columns = (t.c.user_id, t.c.event_id, t.c.calendar_id, t.c.series_ref)
        rows = session.execute(sa.select(*columns))
        found: Counter[Key] = Counter(tuple(r) for r in rows)  # type: ignore[misc]
        session.execute(sa.delete(t))
    return found


def _key(row: dict[str, Any]) -> Key:
    return (row["user_id"], row["id"], row["calendar_id"], row["recurring_event_id"])


@pytest.fixture
def written(sessions: sessionmaker[Session]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Two users' rows (a single, a master and its exception; two singles, one with an
    attendee) in one bulk insert with the model on; the records it wrote: one per row,
    no other, and the attendee's event once more (its row trigger)."""
    with sessions.begin() as session:
        session.execute(
            sa.insert(instance_horizon).values(
                id=1,
                first_at=START - timedelta(days=30),
                end_at=START + timedelta(days=400),
                filled=True,
            )
        )
        first, second = add_owner(session), add_owner(session)
    master = event_row(first, 1, is_recurring=True, recurrence_rule="RRULE:FREQ=DAILY;COUNT=5")
    mine = [event_row(first, 0), master]
    mine.append(event_row(first, 2, recurring_event_id=master["google_event_id"]))
    theirs = [event_row(second, 0), event_row(second, 3)]
    with sessions.begin() as session:
        insert_events(session, mine + theirs)
        guests = [{"id": uuid.uuid4(), "event_id": theirs[0]["id"], "email": "g@example.com"}]
        session.execute(sa.insert(EventAttendee), guests)  # as a full sync writes them
    expected = Counter(_key(r) for r in mine + theirs) + Counter([_key(theirs[0])])
    assert _taken(sessions) == expected
    return mine, theirs


def test_an_update_keeping_the_key_is_recorded_once(
    sessions: sessionmaker[Session], written: tuple[list[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    mine, _ = written
    with sessions.begin() as session:
        ids = [r["id"] for r in mine]
        session.execute(sa.update(_events).where(_events.c.id.in_(ids)).values(title="moved"))
    assert _taken(sessions) == Counter(_key(r) for r in mine)  # not the other user's
    with sessions.begin() as session:  # nothing listed or shown changes: no record
        kept = {"sequence": 3, "updated_at": _events.c.updated_at}  # no onupdate stamp
        session.execute(sa.update(_events).where(_events.c.id.in_(ids)).values(kept))
    assert _taken(sessions) == Counter()


def test_an_update_of_the_key_records_old_and_new(
    sessions: sessionmaker[Session], written: tuple[list[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    mine, _ = written
    exception = mine[2]
    with sessions.begin() as session:
        session.execute(
            sa.update(_events)
            .where(_events.c.id == exception["id"])
            .values(recurring_event_id="elsewhere")
        )
    moved = {**exception, "recurring_event_id": "elsewhere"}
    assert _taken(sessions) == Counter([_key(exception), _key(moved)])


def test_attendees_and_deletes_record_their_events(
    sessions: sessionmaker[Session], written: tuple[list[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    mine, theirs = written
    with sessions.begin() as session:
        for email in ("a@example.com", "b@example.com"):
            session.add(EventAttendee(event_id=theirs[1]["id"], email=email))
    assert _taken(sessions) == Counter([_key(theirs[1])] * 2)  # one per attendee row
    with sessions.begin() as session:
        session.execute(sa.update(EventAttendee).values(response_status="accepted"))
    # PostgreSQL's row trigger records the old and the new row's event, SQLite's once
    assert set(_taken(sessions)) == {_key(theirs[0]), _key(theirs[1])}
    with sessions.begin() as session:
        session.execute(sa.delete(_events).where(_events.c.user_id == mine[0]["user_id"]))
    assert _taken(sessions) == Counter(_key(r) for r in mine)


def test_nothing_is_recorded_with_the_model_off(
    sessions: sessionmaker[Session], written: tuple[list[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    _, theirs = written
    with sessions.begin() as session:
        session.execute(sa.delete(instance_horizon))
        insert_events(session, [event_row((theirs[0]["user_id"], theirs[0]["calendar_id"]), 9)])
        session.execute(sa.update(_events).values(title="off"))
        session.execute(sa.delete(_events))
    assert _taken(sessions) == Counter()
