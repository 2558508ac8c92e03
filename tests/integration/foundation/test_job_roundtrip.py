"""A job goes through the broker of each mode and its effect lands in the database.

Embedded: SQLite with the in-process broker and worker threads. Production: PostgreSQL with
Dramatiq's Redis broker.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.runtime import worker_threads
from calsync.store.tables import QueueHeartbeat
from tests.migrated import upgrade

pytestmark = pytest.mark.integration

SENT_AT = datetime(2026, 11, 21, 12, 0, 0, 123000, tzinfo=UTC)
PROCESSED_AT = SENT_AT + timedelta(milliseconds=250)


def wait_for_heartbeat(services: Services, timeout: float = 10.0) -> QueueHeartbeat | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with services.sessions() as session:
            beat = session.get(QueueHeartbeat, "queue")
        if beat is not None:
            return beat
        time.sleep(0.05)
    return None


def run_roundtrip(settings: Settings) -> QueueHeartbeat | None:
    services = bootstrap(settings, clock=lambda: PROCESSED_AT)
    upgrade(services.engine)
    try:
        with worker_threads(services, threads=2):
            # When a heartbeat is enqueued
            services.jobs.heartbeat.send(SENT_AT.isoformat())
            # Then a worker records it in the database
            return wait_for_heartbeat(services)
    finally:
        services.close()


def test_embedded_mode_job_reaches_sqlite(embedded_settings: Settings) -> None:
    assert embedded_settings.database_url.startswith("sqlite")
    beat = run_roundtrip(embedded_settings)

    assert beat is not None
    assert beat.sent_at == SENT_AT
    assert beat.processed_at == PROCESSED_AT


def test_production_mode_job_goes_through_redis_to_postgresql(
    production_settings: Settings,
) -> None:
    assert production_settings.database_url.startswith("postgresql")
    beat = run_roundtrip(production_settings)

    assert beat is not None
    assert beat.sent_at == SENT_AT
    assert beat.processed_at == PROCESSED_AT
    assert ":" in beat.processed_by
