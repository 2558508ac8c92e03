"""Two schedulers at once over many due reminders on PostgreSQL: each is sent exactly once.

Each scheduler has its own engine (its own connections, as two processes would) and runs
its notice task at the same moment; ``FOR UPDATE SKIP LOCKED`` must keep them apart.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import Event, EventTime, Reminders
from calsync.notify.deliveries import DeliveryReport, deliver_due
from calsync.notify.on_event_change import reschedule_reminders
from calsync.notify.senders import Dispatcher, Notice, Sender
from calsync.scheduler import PeriodicTask, Scheduler
from calsync.store.db import make_engine, make_session_factory
from calsync.store.tables import NotificationDelivery
from tests.integration.notify.conftest import (
    SmtpServer,
    add_calendar,
    add_event,
    add_user,
    dispatcher_for,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)
USERS = 30
EVENTS_PER_USER = 10


class MeetsTheOther:
    """A sender that, on its scheduler's first notice, waits until the other scheduler has
    sent its own first one: both then hold a claimed row at once, so the test shows that
    SKIP LOCKED keeps them apart whatever the load, instead of depending on both threads
    being scheduled before one of them has sent everything."""

    def __init__(self, inner: Sender, meeting: threading.Barrier) -> None:
        self.inner = inner
        self.meeting = meeting
        self.first = True

    def send(self, session: Session, notice: Notice, *, now: datetime) -> None:
        self.inner.send(session, notice, now=now)
        if self.first:
            self.first = False
            self.meeting.wait(60)


def seed(sessions: sessionmaker[Session]) -> int:
    """Many users with events whose reminders are all due at NOW."""
    with sessions.begin() as session:
        for u in range(USERS):
            user_id = add_user(session, f"user{u}@example.com")
            calendar_id = add_calendar(session, user_id)
            for e in range(EVENTS_PER_USER):
                start = NOW + timedelta(minutes=30)
                event = Event(
                    start=EventTime.at(start, "UTC"),
                    end=EventTime.at(start + timedelta(hours=1), "UTC"),
                    title=f"Meeting {u}.{e}",
                    reminders=Reminders.minutes(30),
                )
                event_id = add_event(session, event, user_id=user_id, calendar_id=calendar_id)
                reschedule_reminders(session, event_id, now=NOW - timedelta(hours=1))
    return USERS * EVENTS_PER_USER


def test_two_schedulers_at_once_send_each_reminder_exactly_once(
    pg_url: str, smtp_server: SmtpServer
) -> None:
    engines = [make_engine(pg_url, pool_size=2) for _ in range(2)]
    try:
        expected = seed(make_session_factory(engines[0]))
        start_together = threading.Barrier(2)
        first_sends_meet = threading.Barrier(2)
        reports: list[DeliveryReport] = []
        errors: list[BaseException] = []

        def scheduler_for(sessions: sessionmaker[Session]) -> Scheduler:
            email = dispatcher_for(smtp=smtp_server).senders["email"]
            dispatcher = Dispatcher({"email": MeetsTheOther(email, first_sends_meet)})

            def send_due(now: datetime) -> None:
                reports.append(deliver_due(sessions, dispatcher, now=now))

            return Scheduler(
                clock=lambda: NOW, tasks=[PeriodicTask("notices", timedelta(seconds=15), send_due)]
            )

        schedulers = [scheduler_for(make_session_factory(engine)) for engine in engines]

        def run(scheduler: Scheduler) -> None:
            try:
                start_together.wait(10)
                scheduler.run_pending(NOW)
            except BaseException as err:  # surfaced below
                errors.append(err)

        threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)

        assert errors == []
        assert len(reports) == 2
        # Both schedulers did part of the work (their first sends met)...
        assert all(r.sent > 0 for r in reports)
        assert sum(r.sent for r in reports) == expected
        # ...and the SMTP server got every reminder once, none twice
        ids = Counter(str(m["Message-ID"]) for m in smtp_server.mailbox.messages)
        assert len(ids) == expected
        assert max(ids.values()) == 1
        with make_session_factory(engines[0])() as session:
            statuses = session.execute(
                sa.select(NotificationDelivery.status, NotificationDelivery.attempts)
            ).all()
        assert Counter(statuses) == Counter({("sent", 1): expected})
    finally:
        for engine in engines:
            engine.dispose()
