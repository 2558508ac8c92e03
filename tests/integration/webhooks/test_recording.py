"""Recording changes on PostgreSQL: `kicks.note_changes` for many calendars, the probe the
group commit asks first, and `DirtyMarks` batching concurrent marks."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.store.change_probe import ChangeProbe
from calsync.store.tables import Calendar
from calsync.store.users import ensure_user
from calsync.sync import kicks
from calsync.sync.notification_checks import DirtyMarks
from tests.integration.webhooks.conftest import Intake
from tests.integration.webhooks.test_notification_intake import UNREACHABLE_DB
from tests.migrated import upgrade

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def calendars(services: Services, states: list[tuple[bool, datetime | None]]) -> list[uuid.UUID]:
    """Calendars with the given (dirty, sync_queued_at), in that order."""
    with services.sessions.begin() as session:
        user = ensure_user(session, f"{uuid.uuid4().hex[:8]}@example.com")
        rows = [
            Calendar(
                user_id=user.id,
                provider_calendar_id=f"c{n}@example.com",
                dirty=dirty,
                sync_queued_at=queued,
            )
            for n, (dirty, queued) in enumerate(states)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def state(services: Services, ids: list[uuid.UUID]) -> list[tuple[bool, datetime | None, int]]:
    """(dirty, sync_queued_at, xmin) per calendar: xmin changes when a row is written."""
    with services.sessions() as session:
        rows = {
            row.id: (row.dirty, row.sync_queued_at, int(row.xmin))
            for row in session.execute(
                sa.text(
                    "SELECT id, dirty, sync_queued_at, xmin::text::bigint AS xmin "
                    "FROM calendars WHERE id = ANY(:ids)"
                ),
                {"ids": ids},
            )
        }
    return [rows[i] for i in ids]


def test_note_changes_claims_free_slots_marks_the_rest_and_skips_what_is_recorded(
    intake: Intake,
) -> None:
    services = intake.services
    earlier = NOW - timedelta(minutes=1)
    clean, queued_clean, recorded = calendars(
        services, [(False, None), (False, earlier), (True, earlier)]
    )
    ids = [clean, queued_clean, recorded]
    before = state(services, ids)

    with services.sessions.begin() as session:
        claims = kicks.note_changes(session, [*ids, uuid.uuid4()], NOW)

    after = state(services, ids)
    assert set(claims) == {clean}  # only a free slot is claimed (and an unknown id ignored)
    assert after[0][:2] == (True, NOW)
    assert after[1][:2] == (True, earlier)  # marked for the running pull's end to see
    assert after[2] == before[2]  # already dirty with a pull queued: not written at all


def test_the_probe_names_exactly_the_calendars_note_changes_would_write(intake: Intake) -> None:
    services = intake.services
    earlier = NOW - timedelta(minutes=1)
    ids = calendars(
        services, [(False, None), (True, None), (False, earlier), (True, earlier), (True, earlier)]
    )
    probe = ChangeProbe()

    async def ask() -> list[uuid.UUID] | None:
        try:
            return await probe.behind(services.engine, ids)
        finally:
            await probe.aclose()

    named = asyncio.run(ask())
    assert named is not None
    assert sorted(named) == sorted(ids[:3])


def test_a_probe_that_cannot_connect_says_unknown(intake_settings: Settings) -> None:
    services = bootstrap(dataclasses.replace(intake_settings, database_url=UNREACHABLE_DB))
    try:
        assert asyncio.run(ChangeProbe().behind(services.engine, [uuid.uuid4()])) is None
    finally:
        services.close()


def test_concurrent_marks_share_writes_and_one_of_them_queues_the_pull(intake: Intake) -> None:
    services = intake.services
    [first, second] = calendars(services, [(False, None), (False, None)])
    marks = DirtyMarks()

    async def storm() -> list[bool]:
        try:
            return await asyncio.gather(
                *(marks.mark(services, calendar) for calendar in [first, second] * 50)
            )
        finally:
            await marks.aclose()

    queued = asyncio.run(storm())

    assert queued.count(True) == 2  # one per calendar, whoever came first
    assert queued[0]
    assert queued[1]
    assert sorted(m["args"][0] for m in intake.messages("sync")) == sorted(
        [str(first), str(second)]
    )
    assert all(row[0] and row[1] is not None for row in state(services, [first, second]))


def test_marks_take_the_transactional_path_on_sqlite(embedded_settings: Settings) -> None:
    # Embedded mode (SQLite): no probe connection, every batch is a transaction
    services = bootstrap(embedded_settings)
    try:
        upgrade(services.engine)
        [calendar] = calendars(services, [(False, None)])
        marks = DirtyMarks()

        async def storm() -> list[bool]:
            return await asyncio.gather(*(marks.mark(services, calendar) for _ in range(20)))

        assert asyncio.run(storm()).count(True) == 1
        assert asyncio.run(storm()).count(True) == 0
        with services.sessions() as session:
            row = session.get(Calendar, calendar)
        assert row is not None
        assert row.dirty
        assert row.sync_queued_at is not None
        assert all(probe._connection is None for probe in marks._probes)  # never connected
    finally:
        services.close()
