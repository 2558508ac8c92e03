"""The lease statement built once (`acquire_selected_statement`) takes and refuses leases
as the one built per call does, and `still_held` checks them, on both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.store import pull_leases, pull_queue
from tests.owners import add_owner

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=5)
BUILT_ONCE = pull_leases.acquire_selected_statement(pull_queue.pull_started(pull_leases.NOW))


def _calendar(sessions: sessionmaker[Session], **values: Any) -> uuid.UUID:
    with sessions.begin() as session:
        return add_owner(session, **values)[1]


def _acquire(
    sessions: sessionmaker[Session], calendar_id: uuid.UUID, owner: str, now: datetime, once: bool
) -> sa.Row[Any] | None:
    with sessions.begin() as session:
        if once:
            return pull_leases.acquire_selected(
                session, calendar_id, owner=owner, now=now, ttl=TTL, statement=BUILT_ONCE
            )
        return pull_leases.acquire_selected(
            session,
            calendar_id,
            owner=owner,
            now=now,
            ttl=TTL,
            also=pull_queue.pull_started(now),
        )


@pytest.mark.parametrize("once", [True, False])
def test_a_lease_is_taken_refused_while_held_and_taken_over_once_expired(
    sessions: sessionmaker[Session], once: bool
) -> None:
    calendar_id = _calendar(sessions, dirty=True)
    taken = _acquire(sessions, calendar_id, "a", NOW, once)
    assert taken is not None
    assert (taken.sync_lease_owner, taken.sync_lease_until) == ("a", NOW + TTL)
    assert (taken.dirty, taken.last_pull_at, taken.sync_queued_at) == (False, NOW, NOW)
    assert taken.user_id is not None
    assert _acquire(sessions, calendar_id, "b", NOW + TTL / 2, once) is None
    assert _acquire(sessions, calendar_id, "a", NOW + TTL / 2, once) is not None  # again
    later = NOW + 2 * TTL
    over = _acquire(sessions, calendar_id, "b", later, once)
    assert over is not None
    assert (over.sync_lease_owner, over.last_pull_at, over.sync_queued_at) == ("b", later, NOW)
    with sessions.begin() as session:
        assert pull_leases.still_held(session, calendar_id, owner="b")
        assert not pull_leases.still_held(session, calendar_id, owner="a")


@pytest.mark.parametrize("once", [True, False])
def test_an_unselected_or_missing_calendar_is_not_taken(
    sessions: sessionmaker[Session], once: bool
) -> None:
    calendar_id = _calendar(sessions, selected=False)
    assert _acquire(sessions, calendar_id, "a", NOW, once) is None
    assert _acquire(sessions, uuid.uuid4(), "a", NOW, once) is None
    with sessions.begin() as session:
        assert not pull_leases.still_held(session, calendar_id, owner="a")


def test_a_statement_built_once_takes_no_other_clauses() -> None:
    with pytest.raises(TypeError):
        pull_leases.acquire_selected(
            None,  # type: ignore[arg-type]
            uuid.uuid4(),
            owner="a",
            now=NOW,
            ttl=TTL,
            also={"dirty": False},
            statement=BUILT_ONCE,
        )
