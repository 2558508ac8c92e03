"""Instances moved where the batched planner did not look get their reminders (IE1, IE2).

Users in different zones change their own series with their own Google client, on the
emulator: an instance of a series whose rule ended weeks ago moved to this afternoon, an
instance of a series that begins in a month moved to this afternoon, and an instance
moved onto the start of another one. calsync pulls (first sync and incremental, the real
Google client), and `refresh_reminders` replans. Every path must plan what the per-event
planner (`reschedule_reminders`, the reference) plans, and each occurrence its own
reminder (Google notifies each instance), which it keeps while it lasts (IJ2). Both
databases.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.emulator.testing import build_calendar_service
from calsync.notify.deliveries import deliver_due
from calsync.notify.on_event_change import reschedule_reminders
from calsync.notify.reminders import refresh_reminders
from calsync.store.tables import Calendar, NotificationDelivery, User
from calsync.store.tables import Event as EventRow
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.pull import pull_calendar
from tests.conftest import FakeGoogle
from tests.google_users import connect_google_user
from tests.integration.notify.conftest import SmtpServer, dispatcher_for
from tests.integration.sync.conftest import sync_settings
from tests.migrated import upgrade

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
SOON = NOW + timedelta(hours=5)
#: (email, calsync zone, the zone the user's client writes times in)
USERS = [
    ("ana@example.com", "UTC", "UTC"),
    ("ben@example.com", "America/Los_Angeles", "America/Los_Angeles"),
    ("kai@example.com", "Pacific/Kiritimati", "Asia/Kolkata"),
]


@dataclass
class Person:
    email: str
    zone: str
    client: Any
    google_calendar: str
    calendar_id: uuid.UUID
    user_id: uuid.UUID

    def series(self, start: datetime, rule: str, title: str) -> str:
        body = {
            "summary": title,
            "start": {"dateTime": start.isoformat(), "timeZone": self.zone},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": self.zone},
            "recurrence": [rule],
        }
        created = self.client.events().insert(calendarId=self.google_calendar, body=body)
        return str(created.execute()["id"])

    def move(
        self, series_id: str, index: int, start: datetime, hours: float = 1, **fields: str
    ) -> None:
        """Move the series' instance number `index` to begin at `start`, lasting `hours`
        (and change its `fields`: ``title`` its summary)."""
        listing = self.client.events().instances(
            calendarId=self.google_calendar, eventId=series_id, maxResults=50
        )
        instance = listing.execute()["items"][index]
        end = start + timedelta(hours=hours)
        body = {
            "start": {"dateTime": start.isoformat(), "timeZone": self.zone},
            "end": {"dateTime": end.isoformat(), "timeZone": self.zone},
        }
        if "title" in fields:
            body["summary"] = fields["title"]
        self.client.events().patch(
            calendarId=self.google_calendar, eventId=instance["id"], body=body
        ).execute()


@dataclass
class World:
    services: Services
    people: list[Person]

    def pull(self) -> None:
        for person in self.people:
            outcome = pull_calendar(self.services, person.calendar_id)
            assert outcome.status == "ok", outcome

    def reminders(self) -> set[tuple[str, str, datetime, str]]:
        """(user, dedupe key, occurrence start, recurrence id of the payload)."""
        with self.services.sessions() as session:
            found = session.scalars(
                sa.select(NotificationDelivery).where(NotificationDelivery.kind == "reminder")
            ).all()
            return {_seen(self.people, d) for d in found}

    def replanned_alone(self) -> set[tuple[str, str, datetime, str]]:
        """The reminder rows the per-event planner makes from nothing (rolled back)."""
        with self.services.sessions.begin() as session:
            session.execute(sa.delete(NotificationDelivery))
            for event_id in session.scalars(sa.select(EventRow.id)).all():
                reschedule_reminders(session, event_id, now=NOW)
            found = session.scalars(sa.select(NotificationDelivery)).all()
            alone = {_seen(self.people, d) for d in found}
            session.rollback()
        return alone

    def forget_reminders(self) -> None:
        with self.services.sessions.begin() as session:
            session.execute(sa.delete(NotificationDelivery))


def _seen(people: list[Person], d: NotificationDelivery) -> tuple[str, str, datetime, str]:
    [email] = [p.email for p in people if p.user_id == d.user_id]
    assert d.occurrence_start is not None
    return (email, d.dedupe_key, d.occurrence_start, str(d.payload["recurrence_id"]))


@pytest.fixture(params=["embedded_settings", "production_settings"])
def world(request: pytest.FixtureRequest, fake_google: FakeGoogle) -> Iterator[World]:
    settings: Settings = request.getfixturevalue(request.param)
    services = bootstrap(sync_settings(settings, fake_google), clock=lambda: NOW)
    upgrade(services.engine)
    people = []
    for email, zone, client_zone in USERS:
        account, granted = connect_google_user(services, fake_google.control, email)
        sync_calendar_list(services, account.id)
        google_calendar = granted["calendars"][0]["id"]
        with services.sessions.begin() as session:
            session.execute(sa.update(User).where(User.id == account.id).values(timezone=zone))
            calendar_id = session.scalars(
                sa.select(Calendar.id).where(
                    Calendar.user_id == account.id,
                    Calendar.provider_calendar_id == google_calendar,
                )
            ).one()
        client = build_calendar_service(fake_google.url, granted["access_token"])
        people.append(Person(email, client_zone, client, google_calendar, calendar_id, account.id))
    yield World(services, people)
    for person in people:
        person.client.close()
    services.close()


def _soon(rows: set[tuple[str, str, datetime, str]], email: str) -> list[str]:
    return sorted(key for user, key, start, _ in rows if user == email and start == SOON)


def test_an_instance_moved_past_the_end_of_a_finished_series_is_reminded(world: World) -> None:
    # Given each user's weekly series ended a week ago, and one that starts in a month;
    # each has an instance moved to begin in five hours
    for n, person in enumerate(world.people):
        ended = person.series(NOW - timedelta(days=21, hours=n), "RRULE:FREQ=WEEKLY;COUNT=3", "old")
        person.move(ended, 1, SOON)
        later = person.series(NOW + timedelta(days=30), "RRULE:FREQ=WEEKLY", "later")
        person.move(later, 0, SOON + timedelta(minutes=30 * (n + 1)))
    # When calsync pulls the calendars for the first time
    world.pull()
    synced = world.reminders()
    # Then each moved instance has its reminder, as the per-event planner plans it
    for n, person in enumerate(world.people):
        assert len(_soon(synced, person.email)) == 1, person.email
        later = SOON + timedelta(minutes=30 * (n + 1))
        assert any(u == person.email and s == later for u, _, s, _ in synced), person.email
    assert synced == world.replanned_alone()
    # And the periodic refresh plans them again from nothing
    world.forget_reminders()
    refresh_reminders(world.services.sessions, now=NOW, batch_size=2)
    assert world.reminders() == synced


def test_an_instance_moved_later_into_a_finished_series_is_reminded(world: World) -> None:
    # Given finished series calsync has already pulled
    series = {}
    for n, person in enumerate(world.people):
        series[person.email] = person.series(
            NOW - timedelta(days=14, hours=n), "RRULE:FREQ=DAILY;COUNT=4", "done"
        )
    world.pull()
    assert world.reminders() == set()
    # When each user moves an instance to this afternoon and calsync pulls the change
    for person in world.people:
        person.move(series[person.email], 2, SOON)
    world.pull()
    # Then the moved instances have their reminders
    pulled = world.reminders()
    assert {u for u, _, s, _ in pulled if s == SOON} == {p.email for p in world.people}
    assert pulled == world.replanned_alone()


def test_an_instance_moved_onto_another_has_its_own_reminder(world: World) -> None:
    # Given daily series starting in five hours, each with its second instance moved
    # onto the first one's start (Google shows two occurrences at the same time)
    for person in world.people:
        daily = person.series(SOON, "RRULE:FREQ=DAILY;COUNT=5", "daily")
        person.move(daily, 1, SOON)
    # When calsync pulls
    world.pull()
    synced = world.reminders()
    # Then each occurrence has its own reminder, each saying which instance it is for
    for person in world.people:
        keys = _soon(synced, person.email)
        assert len(keys) == 2, (person.email, keys)
        recurrence_ids = {r for u, _, s, r in synced if u == person.email and s == SOON}
        assert len(recurrence_ids) == 2
    # And the per-event planner and the refresh plan exactly these rows
    assert synced == world.replanned_alone()
    refresh_reminders(world.services.sessions, now=NOW + timedelta(minutes=1))
    assert world.reminders() == synced
    world.forget_reminders()
    refresh_reminders(world.services.sessions, now=NOW)
    assert world.reminders() == synced


def test_a_long_occurrence_keeps_its_late_reminder_when_the_other_one_of_its_start_ends(
    world: World, smtp_server: SmtpServer
) -> None:
    # Given daily series starting in five hours, whose first reminder is sent on time
    dispatcher = dispatcher_for(smtp=smtp_server)
    daily = {}
    for person in world.people:
        daily[person.email] = person.series(SOON, "RRULE:FREQ=DAILY;COUNT=5", "daily")
    world.pull()
    sent = deliver_due(world.services.sessions, dispatcher, now=SOON - timedelta(minutes=5))
    assert sent.sent == len(world.people)
    # And then each user moves the third instance onto the first one's start, to last
    # four days: a second occurrence at that start, with its own reminder (IE2), which
    # is not sent, the sender being down from then on
    for person in world.people:
        person.move(daily[person.email], 2, SOON, hours=4 * 24, title="long")
    world.pull()
    long_ones = {k for _, k, s, _ in world.reminders() if s == SOON and k.count("|") == 5}
    assert len(long_ones) == len(world.people)  # keys naming their original start
    # When the sender is back more than two days after the start, the first instance
    # (an hour long) having ended long ago while the moved one goes on, and the
    # reminders are refreshed and replanned (the per-event planner, as an edit does)
    later = SOON + timedelta(days=2, hours=3)
    refresh_reminders(world.services.sessions, now=later)
    with world.services.sessions.begin() as session:
        for event_id in session.scalars(sa.select(EventRow.id)).all():
            reschedule_reminders(session, event_id, now=later)
    late = deliver_due(world.services.sessions, dispatcher, now=later)
    # Then each user gets the long occurrence's reminder, late, once
    assert late.sent == len(world.people), late
    for person in world.people:
        subjects = [str(m["Subject"]) for m in smtp_server.mailbox.to(person.email)]
        assert sorted(s.split(",")[0] for s in subjects) == ["Reminder: daily", "Reminder: long"]
    # (by the reminder rows their keys named when they were planned)
    assert long_ones <= {k for _, k, _, _ in world.reminders()}
