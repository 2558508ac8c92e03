"""`audit.record_repeated` on both databases: one row per (action, address, reason, minute)
with a count, also when writers race."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.store import audit
from calsync.store.tables import AuditEvent

pytestmark = pytest.mark.integration

NOW = datetime(2031, 5, 6, 12, 0, 10, tzinfo=UTC)


def fail(
    sessions: sessionmaker[Session],
    *,
    address: str = "198.51.100.9",
    reason: str = "bad signature",
    now: datetime = NOW,
    action: audit.AuditAction = audit.AuditAction.AUTH_FAILED,
) -> None:
    with sessions.begin() as session:
        audit.record_repeated(
            session, action, remote_addr=address, reason=reason, now=now, details={"path": "/me"}
        )


def rows(sessions: sessionmaker[Session]) -> list[tuple[str, str | None, str, int, datetime]]:
    with sessions() as session:
        found = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.occurred_at))
        return sorted(
            (e.action, e.remote_addr, (e.details or {})["reason"], e.count, e.occurred_at)
            for e in found
        )


def test_repeats_in_a_minute_are_one_row_with_a_count(sessions: sessionmaker[Session]) -> None:
    # Given failures from one address: five alike in a minute, then one of each other kind
    for second in range(5):
        fail(sessions, now=NOW + timedelta(seconds=second * 10))
    fail(sessions, reason="token expired", now=NOW + timedelta(seconds=1))
    fail(sessions, address="203.0.113.7", now=NOW + timedelta(seconds=2))
    fail(sessions, action=audit.AuditAction.SIGN_IN_FAILED, now=NOW + timedelta(seconds=3))
    fail(sessions, now=NOW + timedelta(minutes=1))

    # Then each (action, address, reason, minute) is one row, dated by its first
    assert rows(sessions) == sorted(
        [
            ("auth_failed", "198.51.100.9", "bad signature", 5, NOW),
            ("auth_failed", "198.51.100.9", "token expired", 1, NOW + timedelta(seconds=1)),
            ("auth_failed", "203.0.113.7", "bad signature", 1, NOW + timedelta(seconds=2)),
            ("sign_in_failed", "198.51.100.9", "bad signature", 1, NOW + timedelta(seconds=3)),
            ("auth_failed", "198.51.100.9", "bad signature", 1, NOW + timedelta(minutes=1)),
        ]
    )


def test_racing_writers_count_every_failure(sessions: sessionmaker[Session]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: fail(sessions), range(80)))

    assert rows(sessions) == [("auth_failed", "198.51.100.9", "bad signature", 80, NOW)]


def test_other_events_are_still_one_row_each(sessions: sessionmaker[Session]) -> None:
    for _ in range(2):
        with sessions.begin() as session:
            audit.record(session, audit.AuditAction.SIGN_IN, remote_addr="a" * 100)

    with sessions() as session:
        found = list(session.scalars(sa.select(AuditEvent)))
    assert [(e.count, e.repeat_key, e.remote_addr) for e in found] == [(1, None, "a" * 64)] * 2
