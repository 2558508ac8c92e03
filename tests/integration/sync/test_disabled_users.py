"""A disabled user's calendars stop syncing - pulls, pushes, channels, notices - until an
admin enables them again; other users are not touched. Both databases, through the admin
API; the jobs' use cases run by hand (no worker threads)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx2 as httpx
import pytest
import sqlalchemy as sa

from calsync.domain.accounts import Role
from calsync.notify.deliveries import deliver_due
from calsync.store.tables import AuditEvent, NotificationDelivery, WatchChannel
from calsync.store.users import ensure_user
from calsync.sync.channels import ensure_channels, maintain_channels
from calsync.sync.pull import pull_calendar
from calsync.sync.write_back import PushStatus, push_outbox
from tests.integration.notify.conftest import SmtpServer, dispatcher_for, smtp_server
from tests.integration.sync.conftest import SyncStack

pytestmark = pytest.mark.integration
__all__ = ["smtp_server"]  # the fixture, used by name

ANN, BEN = "ann@example.com", "ben@example.com"
BODY = {
    "title": "offsite",
    "start_time": "2026-06-02T09:00:00Z",
    "end_time": "2026-06-02T17:00:00Z",
    "timezone": "UTC",
}


def set_status(stack: SyncStack, admin: dict[str, str], user_id: uuid.UUID, status: str) -> None:
    answer = httpx.patch(
        f"{stack.url}/admin/users/{user_id}", headers=admin, json={"status": status}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == status


def admin_headers(stack: SyncStack) -> dict[str, str]:
    with stack.services.sessions.begin() as session:
        admin_id = ensure_user(session, "root@example.com", role=Role.ADMIN).id
    return stack.headers(admin_id, Role.ADMIN)


def at(moment: datetime, hours: float) -> dict[str, str]:
    """An hour-long event body starting `hours` after `moment`."""
    start = moment.replace(microsecond=0) + timedelta(hours=hours)
    return {
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(hours=1)).isoformat(),
        "timezone": "UTC",
    }


def notices_of(stack: SyncStack, user_id: uuid.UUID) -> list[tuple[str, str, str | None]]:
    """(kind, status, reason) of every notice recorded for `user_id`."""
    with stack.services.sessions() as session:
        rows = session.execute(
            sa.select(
                NotificationDelivery.kind, NotificationDelivery.status, NotificationDelivery.reason
            )
            .where(NotificationDelivery.user_id == user_id)
            .order_by(NotificationDelivery.created_at, NotificationDelivery.id)
        ).all()
    return [(row.kind, row.status, row.reason) for row in rows]


def live_channels(stack: SyncStack, user_id: uuid.UUID) -> int:
    with stack.services.sessions() as session:
        return len(
            session.scalars(
                sa.select(WatchChannel.id).where(
                    WatchChannel.user_id == user_id, WatchChannel.status == "active"
                )
            ).all()
        )


def test_a_disabled_user_stops_syncing_until_enabled_again(hand_stack: SyncStack) -> None:
    # Given two connected users with channels, and ann's event waiting to be pushed
    ben = hand_stack.connect_pulled(BEN)
    ann = hand_stack.connect_pulled(ANN)
    for user_id in (ann, ben):
        ensure_channels(hand_stack.services, user_id)
    created = httpx.post(f"{hand_stack.url}/events", headers=hand_stack.headers(ann), json=BODY)
    assert created.status_code == 201, created.text
    event_id = uuid.UUID(created.json()["id"])
    with hand_stack.services.sessions.begin() as session:
        admin_id = ensure_user(session, "root@example.com", role=Role.ADMIN).id
    admin = hand_stack.headers(admin_id, Role.ADMIN)
    # When an admin disables ann
    set_status(hand_stack, admin, ann, "disabled")
    hand_stack.control.clear_requests()
    report = maintain_channels(hand_stack.services)
    # Then her channels are stopped, her pulls and pushes do nothing with Google
    assert report.stopped == 2
    assert live_channels(hand_stack, ann) == 0
    assert live_channels(hand_stack, ben) == 2
    assert pull_calendar(hand_stack.services, hand_stack.calendar_id(ann, ANN)).status == "skipped"
    pushed = push_outbox(hand_stack.services, hand_stack.services.providers, event_id)
    assert pushed.status is PushStatus.STOPPED
    by_ann = [r for r in hand_stack.control.requests() if r.get("user") == ANN]
    assert len([r for r in by_ann if r["path"].endswith("/channels/stop")]) == 2
    assert [r["path"] for r in by_ann if not r["path"].endswith("/channels/stop")] == []
    # And she cannot use the API, while ben syncs as before
    assert httpx.get(f"{hand_stack.url}/me", headers=hand_stack.headers(ann)).status_code == 401
    assert pull_calendar(hand_stack.services, hand_stack.calendar_id(ben, BEN)).status == "ok"
    # When the admin enables her again
    set_status(hand_stack, admin, ann, "active")
    report = maintain_channels(hand_stack.services)
    # Then her channels are back, her calendar pulls and her event reaches Google once
    assert report.opened == 2
    assert live_channels(hand_stack, ann) == 2
    assert pull_calendar(hand_stack.services, hand_stack.calendar_id(ann, ANN)).status == "ok"
    pushed = push_outbox(hand_stack.services, hand_stack.services.providers, event_id)
    assert pushed.status is PushStatus.SYNCED
    inserts = hand_stack.control.requests(
        method="POST", path=f"/calendar/v3/calendars/{ANN}/events"
    )
    assert [r["status"] for r in inserts] == [200]
    # And both changes are in the audit trail
    with hand_stack.services.sessions() as session:
        audited = session.scalars(
            sa.select(AuditEvent.details).where(AuditEvent.action == "status_changed")
        ).all()
    assert [d["to"] for d in audited] == ["disabled", "active"]


def test_a_disabled_user_gets_no_notices_until_enabled_again(
    hand_stack: SyncStack, smtp_server: SmtpServer
) -> None:
    """Notices (reminders and change notices) stop with the user: none is recorded for a
    disabled user, one already planned is not sent, and they come back on enable."""
    stack = hand_stack
    ben = stack.connect_pulled(BEN)
    ann = stack.connect_pulled(ANN)
    admin = admin_headers(stack)
    now = stack.services.clock()
    dispatcher = dispatcher_for(smtp=smtp_server)
    # Given ann's own event in two hours, with its reminder planned (10 minutes before)
    own = httpx.post(
        f"{stack.url}/events", headers=stack.headers(ann), json={"title": "own"} | at(now, 2)
    )
    assert own.status_code == 201, own.text
    assert notices_of(stack, ann) == [("reminder", "pending", None)]
    # When an admin disables her, and ben invites her to his meeting meanwhile
    set_status(stack, admin, ann, "disabled")
    meeting = httpx.post(
        f"{stack.url}/events",
        headers=stack.headers(ben),
        json={"title": "meeting", "attendees": [ANN]} | at(now, 3),
    )
    assert meeting.status_code == 201, meeting.text
    # Then no notice is recorded for her, and her reminder, once due, is not sent
    assert [kind for kind, _, _ in notices_of(stack, ann)] == ["reminder"]
    report = deliver_due(stack.services.sessions, dispatcher, now=now + timedelta(hours=2))
    assert (report.sent, report.skipped) == (0, 1)
    assert notices_of(stack, ann) == [("reminder", "skipped", "the user is disabled")]
    assert smtp_server.mailbox.to(ANN) == []
    # When the admin enables her again and ben moves the meeting
    set_status(stack, admin, ann, "active")
    moved = httpx.put(
        f"{stack.url}/events/{meeting.json()['id']}",
        headers=stack.headers(ben),
        json={"location": "Room 2"},
    )
    assert moved.status_code == 200, moved.text
    # Then she is told, by email, as before
    assert [kind for kind, _, _ in notices_of(stack, ann)] == ["reminder", "change"]
    report = deliver_due(stack.services.sessions, dispatcher, now=now + timedelta(hours=2))
    assert report.sent == 1
    [message] = smtp_server.mailbox.to(ANN)
    assert "meeting" in message["Subject"]
    # And ben, never disabled, was not held up: his own reminders are planned as usual
    assert ("reminder", "pending", None) in notices_of(stack, ben)
