"""The scheduler's notice tasks go through the broker of each mode to a worker that sends.

Embedded: SQLite with the in-process broker; production: PostgreSQL with Redis. The
services' clock is fixed, so what is due does not depend on when the test runs.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.domain.models import Event, EventTime, Reminders
from calsync.notify.on_event_change import reschedule_reminders
from calsync.runtime import worker_threads
from calsync.scheduler import build_scheduler
from calsync.store.tables import NotificationDelivery
from tests.integration.notify.conftest import SmtpServer, add_calendar, add_event, add_user
from tests.migrated import upgrade

pytestmark = pytest.mark.integration

NOW = datetime(2026, 9, 14, 8, 50, tzinfo=UTC)


@pytest.mark.parametrize("mode", ["embedded", "production"])
def test_the_scheduler_kicks_a_worker_that_emails_the_due_reminder(
    mode: str, request: pytest.FixtureRequest, smtp_server: SmtpServer
) -> None:
    base: Settings = request.getfixturevalue(f"{mode}_settings")
    settings = dataclasses.replace(base, smtp_url=smtp_server.url, smtp_sender="calsync@jobs.test")
    services = bootstrap(settings, clock=lambda: NOW)
    upgrade(services.engine)
    try:
        with services.sessions.begin() as session:
            user_id = add_user(session, "dana@example.com")
            event = Event(
                start=EventTime.at(NOW + timedelta(minutes=10), "UTC"),
                end=EventTime.at(NOW + timedelta(minutes=40), "UTC"),
                title="Stand-up",
                reminders=Reminders.minutes(10),
            )
            event_id = add_event(
                session, event, user_id=user_id, calendar_id=add_calendar(session, user_id)
            )
            reschedule_reminders(session, event_id, now=NOW - timedelta(hours=1))
        scheduler = build_scheduler(services)
        assert {"send_due_notices", "refresh_reminders"} <= {t.name for t in scheduler.tasks}

        with worker_threads(services, threads=2):
            ran = scheduler.run_pending(NOW)
            assert {"send_due_notices", "refresh_reminders"} <= set(ran)
            deadline = time.monotonic() + 20
            while not smtp_server.mailbox.messages and time.monotonic() < deadline:
                time.sleep(0.05)  # waiting for the worker thread, not for calendar time

        [message] = smtp_server.mailbox.messages
        assert message["Subject"].startswith("Reminder: Stand-up")
        with services.sessions() as session:
            statuses = session.scalars(sa.select(NotificationDelivery.status)).all()
        assert statuses == ["sent"]
    finally:
        services.close()
