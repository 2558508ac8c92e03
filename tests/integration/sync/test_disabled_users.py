"""A disabled user's calendars stop syncing - pulls, pushes, channels, notices - until an
admin enables them again; other users are not touched. Both databases, through the admin
API; the jobs' use cases run by hand (no worker threads)."""

from __future__ import annotations

import uuid

import httpx2 as httpx
import pytest
import sqlalchemy as sa

from calsync.domain.accounts import Role
from calsync.store.tables import AuditEvent, WatchChannel
from calsync.store.users import ensure_user
from calsync.sync.channels import ensure_channels, maintain_channels
from calsync.sync.pull import pull_calendar
from calsync.sync.push import PushStatus, push_outbox
from tests.integration.sync.conftest import SyncStack

pytestmark = pytest.mark.integration

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
