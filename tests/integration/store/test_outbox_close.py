"""`outbox.close` closes an event's rows only while the event is at the version pushed.

Row ids say nothing about what a push wrote: an edit can commit after the push read the
event and before it read the rows. These tests commit such an edit (a new version and its
row, in one transaction, as every writer does) and check that closing by the older
version leaves it pending, on both databases and with other users' rows beside it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import Event, EventTime
from calsync.store import event_changes, outbox
from calsync.store.tables import OutboxEntry
from tests.owners import add_owner

pytestmark = pytest.mark.integration

NOW = datetime(2031, 3, 3, 8, 0, tzinfo=UTC)


def _event(title: str) -> Event:
    start = NOW + timedelta(days=1)
    return Event(
        title=title,
        start=EventTime.at(start, "UTC"),
        end=EventTime.at(start + timedelta(hours=1), "UTC"),
    )


def _created(sessions: sessionmaker[Session], title: str) -> uuid.UUID:
    """A user's new event (version 1) with its outbox row."""
    event_id = uuid.uuid4()
    with sessions.begin() as session:
        user_id, calendar_id = add_owner(session)
        stored = event_changes.insert_local(
            session,
            event_id=event_id,
            user_id=user_id,
            calendar_id=calendar_id,
            event=_event(title),
            now=NOW,
        )
        _queue(session, stored.id, stored.user_id, stored.calendar_id, "insert")
    return event_id


def _queue(
    session: Session, event_id: uuid.UUID, user_id: uuid.UUID, calendar_id: uuid.UUID, op: str
) -> None:
    outbox.add(
        session,
        event_id=event_id,
        user_id=user_id,
        calendar_id=calendar_id,
        operation=op,
        now=NOW,
    )


def _edited(sessions: sessionmaker[Session], event_id: uuid.UUID, title: str) -> int:
    """A local edit and its row, committed together (as the API writes). Its version."""
    with sessions.begin() as session:
        locked = event_changes.lock_stored(session, event_id)
        assert locked is not None
        stored = event_changes.save_local(session, locked, _event(title), now=NOW)
        _queue(session, event_id, stored.user_id, stored.calendar_id, "update")
    return stored.version


def _statuses(sessions: sessionmaker[Session], event_id: uuid.UUID) -> list[str]:
    with sessions() as session:
        return list(
            session.scalars(
                sa.select(OutboxEntry.status)
                .where(OutboxEntry.event_id == event_id)
                .order_by(OutboxEntry.id)
            )
        )


def test_rows_of_a_newer_version_stay_pending(sessions: sessionmaker[Session]) -> None:
    mine, other = _created(sessions, "mine v1"), _created(sessions, "other v1")
    # Given a push that read version 2 of my event, and an edit committed after it (v3)
    pushed = _edited(sessions, mine, "mine v2")
    with sessions() as session:
        seen = outbox.pending_writes(session, mine)
    _edited(sessions, mine, "mine v3")
    _edited(sessions, other, "other v2")
    # When the push closes by the version it wrote
    with sessions.begin() as session:
        closed = outbox.close(session, mine, version=pushed)
    # Then nothing of mine closed (v3 still has to go), nobody else's row either, although
    # the rows the push read were all older
    assert seen is not None
    assert seen.count == 2
    assert closed is False
    assert _statuses(sessions, mine) == ["pending"] * 3
    assert _statuses(sessions, other) == ["pending"] * 2
    with sessions() as session:
        after = outbox.pending_writes(session, mine)
    assert after is not None
    assert after.count == 3


def test_the_current_version_closes_every_row_of_the_event_only(
    sessions: sessionmaker[Session],
) -> None:
    mine, other = _created(sessions, "mine v1"), _created(sessions, "other v1")
    _edited(sessions, mine, "mine v2")
    current = _edited(sessions, mine, "mine v3")
    _edited(sessions, other, "other v2")
    with sessions.begin() as session:
        closed = outbox.close(session, mine, version=current, failed=True, error="refused")
    assert closed is True
    assert _statuses(sessions, mine) == ["failed"] * 3
    assert _statuses(sessions, other) == ["pending"] * 2
    with sessions() as session:
        assert outbox.pending_writes(session, mine) is None
        errors = session.scalars(
            sa.select(OutboxEntry.last_error).where(OutboxEntry.event_id == mine)
        )
        assert set(errors) == {"refused"}
