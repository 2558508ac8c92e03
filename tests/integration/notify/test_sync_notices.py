"""Changes that arrive by sync (a pull) tell the people of the event and replan reminders.

Alice reads Carol's team calendar through calsync and attends Carol's meeting there.
Carol changes the meeting with her own client, on the emulator; calsync pulls the team
calendar (the real Google client, PostgreSQL, Redis) and the notices go out through a
real SMTP server (aiosmtpd).
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
from calsync.store.tables import Calendar, NotificationDelivery
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.pull import pull_calendar
from tests.conftest import FakeGoogle
from tests.google_users import connect_google_user
from tests.integration.notify.conftest import SmtpServer, dispatcher_for
from tests.integration.sync.conftest import sync_settings

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
ALICE = "alice@example.com"
CAROL = "carol@example.com"


@dataclass
class Team:
    """Alice, connected to calsync, and Carol's team calendar that Alice reads."""

    services: Services
    carol: Any  # Carol's Google client
    google_id: str
    calendar_id: uuid.UUID
    alice: uuid.UUID

    def pull(self) -> None:
        outcome = pull_calendar(self.services, self.calendar_id)
        assert outcome.status == "ok", outcome

    def insert(self, start: datetime, **body: Any) -> dict[str, Any]:
        created: dict[str, Any] = (
            self.carol.events()
            .insert(calendarId=self.google_id, body={**_times(start, 1), **body})
            .execute()
        )
        return created

    def deliveries(self, kind: str) -> list[NotificationDelivery]:
        with self.services.sessions() as session:
            return list(
                session.scalars(
                    sa.select(NotificationDelivery)
                    .where(NotificationDelivery.kind == kind)
                    .order_by(NotificationDelivery.created_at, NotificationDelivery.due_at)
                )
            )


def _times(start: datetime, hours: int) -> dict[str, Any]:
    end = start + timedelta(hours=hours)
    return {
        "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": end.isoformat(), "timeZone": "UTC"},
    }


@pytest.fixture
def team(production_settings: Settings, fake_google: FakeGoogle) -> Iterator[Team]:
    services = bootstrap(sync_settings(production_settings, fake_google), clock=lambda: NOW)
    fake_google.control.create_user(CAROL)
    account, granted = connect_google_user(
        services,
        fake_google.control,
        ALICE,
        calendars=[{"summary": "Team", "access_role": "reader", "owner": CAROL}],
    )
    [team_calendar] = [c for c in granted["calendars"] if c["summary"] == "Team"]
    sync_calendar_list(services, account.id)
    with services.sessions() as session:
        calendar_id = session.scalars(
            sa.select(Calendar.id).where(
                Calendar.user_id == account.id,
                Calendar.provider_calendar_id == team_calendar["id"],
            )
        ).one()
    token = fake_google.control.issue_tokens(CAROL)["access_token"]
    carol = build_calendar_service(fake_google.url, token)
    yield Team(services, carol, team_calendar["id"], calendar_id, account.id)
    carol.close()
    services.close()


MEETING: dict[str, Any] = {
    "summary": "Roadmap review",
    "location": "Room 1",
    "attendees": [{"email": ALICE}, {"email": CAROL}],
}


def test_the_first_sync_announces_nothing_but_plans_the_reminders(team: Team) -> None:
    # Given Carol's calendar already holds meetings Alice attends, one of them soon
    team.insert(NOW + timedelta(hours=3), **MEETING)
    team.insert(NOW + timedelta(days=20), **MEETING)
    # When calsync pulls the calendar for the first time
    team.pull()
    # Then no change notice is recorded, and the soon meeting has its reminder
    assert team.deliveries("change") == []
    [reminder] = team.deliveries("reminder")
    assert (reminder.user_id, reminder.status) == (team.alice, "pending")
    assert reminder.due_at == NOW + timedelta(hours=3) - timedelta(minutes=10)


def test_a_meeting_moved_at_google_is_announced_and_reminded_at_its_new_time(
    team: Team, smtp_server: SmtpServer
) -> None:
    # Given a synced meeting in three hours, with its reminder planned
    meeting = team.insert(NOW + timedelta(hours=3), **MEETING)
    team.insert(NOW + timedelta(hours=4), summary="Untouched")
    team.pull()
    assert [r.due_at for r in team.deliveries("reminder")] == [
        NOW + timedelta(hours=3) - timedelta(minutes=10),
        NOW + timedelta(hours=4) - timedelta(minutes=10),
    ]
    # When Carol moves it by two hours with her own client and calsync pulls
    team.carol.events().patch(
        calendarId=team.google_id,
        eventId=meeting["id"],
        body=_times(NOW + timedelta(hours=5), 1),
    ).execute()
    team.pull()
    # Then Alice is told, once, by email, with the old and the new time
    [notice] = team.deliveries("change")
    assert (notice.user_id, notice.channel) == (team.alice, "email")
    assert notice.payload is not None
    assert (notice.payload["source"], notice.payload["changed"]) == ("sync", ["start", "end"])
    report = deliver_due(team.services.sessions, dispatcher_for(smtp=smtp_server), now=NOW)
    assert report.sent == 1
    [message] = smtp_server.mailbox.messages
    assert ALICE in str(message["To"])
    assert message["Subject"].startswith("Updated: Roadmap review")
    text = message.get_body(("plain",))
    assert text is not None
    assert "Starts: Mon 01 Jun 2026, 11:00 UTC -> Mon 01 Jun 2026, 13:00 UTC" in (
        text.get_content()
    )
    # And the reminder table holds the new time, not the old one; the other is untouched
    pending = sorted(r.due_at for r in team.deliveries("reminder") if r.status == "pending")
    assert pending == [
        NOW + timedelta(hours=4) - timedelta(minutes=10),
        NOW + timedelta(hours=5) - timedelta(minutes=10),
    ]
    # And pulling again (nothing changed) announces nothing more
    team.pull()
    assert len(team.deliveries("change")) == 1


def test_a_meeting_cancelled_at_google_is_announced_and_loses_its_reminders(
    team: Team, smtp_server: SmtpServer
) -> None:
    # Given two synced meetings soon, each with its reminder
    meeting = team.insert(NOW + timedelta(hours=3), **MEETING)
    other = team.insert(NOW + timedelta(hours=6), summary="Standup")
    team.pull()
    assert len(team.deliveries("reminder")) == 2
    # When Carol cancels the meeting and calsync pulls
    team.carol.events().delete(calendarId=team.google_id, eventId=meeting["id"]).execute()
    team.pull()
    # Then Alice gets a cancellation notice
    [notice] = team.deliveries("change")
    assert notice.payload is not None
    assert (notice.user_id, notice.payload["change"]) == (team.alice, "cancelled")
    assert deliver_due(team.services.sessions, dispatcher_for(smtp=smtp_server), now=NOW).sent == 1
    [message] = smtp_server.mailbox.messages
    assert message["Subject"].startswith("Cancelled: Roadmap review")
    # And only the other meeting still has a pending reminder
    [left] = team.deliveries("reminder")
    assert left.payload is not None
    assert left.payload["event"]["uid"] == other["id"]


def test_a_meeting_renamed_at_google_keeps_its_reminder_with_the_new_title(team: Team) -> None:
    # Given a synced meeting soon, with its reminder planned
    meeting = team.insert(NOW + timedelta(hours=3), **MEETING)
    team.pull()
    [planned] = team.deliveries("reminder")
    # When Carol renames it and calsync pulls
    team.carol.events().patch(
        calendarId=team.google_id, eventId=meeting["id"], body={"summary": "Roadmap, v2"}
    ).execute()
    team.pull()
    # Then the same reminder (same row, same due time) now names the new title
    [reminder] = team.deliveries("reminder")
    assert (reminder.id, reminder.due_at, reminder.status) == (
        planned.id,
        planned.due_at,
        "pending",
    )
    assert reminder.payload is not None
    assert reminder.payload["event"]["title"] == "Roadmap, v2"
    # And Alice is told of the new title
    [notice] = team.deliveries("change")
    assert notice.payload is not None
    assert notice.payload["changed"] == ["title"]
