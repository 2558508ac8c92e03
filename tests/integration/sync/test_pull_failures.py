"""A failed pull, whatever failed, is recorded and leaves its calendar free to pull again;
a 404 alone never removes a calendar. On both databases, with two users.

Pulls run by hand here (no worker threads), so each test sees exactly one pull's effect.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from calsync.bootstrap import bootstrap
from calsync.providers.errors import NotFound
from calsync.store.secrets import SecretDecryptError
from calsync.store.tables import Calendar, OAuthToken, SyncLog, WatchChannel
from calsync.store.tables import Event as EventRow
from calsync.sync.channels import ensure_channels, renew_channels
from calsync.sync.pull import pull_calendar
from tests.integration.sync.conftest import SyncStack

pytestmark = pytest.mark.integration

ANN, BEN = "ann@example.com", "ben@example.com"
EVENT = {
    "summary": "standup",
    "start": {"dateTime": "2026-06-01T09:00:00Z"},
    "end": {"dateTime": "2026-06-01T09:15:00Z"},
}


def calendar_ids(stack: SyncStack, user_id: uuid.UUID) -> list[uuid.UUID]:
    with stack.services.sessions() as session:
        return list(session.scalars(sa.select(Calendar.id).where(Calendar.user_id == user_id)))


def calendar(stack: SyncStack, user_id: uuid.UUID, google_id: str) -> Calendar | None:
    with stack.services.sessions() as session:
        return session.scalar(
            sa.select(Calendar).where(
                Calendar.user_id == user_id, Calendar.provider_calendar_id == google_id
            )
        )


def last_pull_log(stack: SyncStack, user_id: uuid.UUID) -> SyncLog:
    with stack.services.sessions() as session:
        row = session.scalar(
            sa.select(SyncLog)
            .where(SyncLog.user_id == user_id, SyncLog.kind == "pull")
            .order_by(SyncLog.sync_time.desc(), SyncLog.id.desc())
            .limit(1)
        )
    assert row is not None
    return row


def test_a_404_for_a_calendar_still_in_the_owners_list_keeps_it(hand_stack: SyncStack) -> None:
    # Given two connected users
    ben = hand_stack.connect_pulled(BEN)
    ann = hand_stack.connect_pulled(ANN)
    primary = calendar(hand_stack, ann, ANN)
    assert primary is not None
    # When Google answers 404 to one listing of ann's calendar
    hand_stack.control.add_fault(
        kind="status", status=404, method="GET", path=f"/calendars/{ANN}/events", count=1
    )
    with pytest.raises(NotFound):
        pull_calendar(hand_stack.services, primary.id)
    # Then the calendar stays, marked in error, its lease free, and the log says why
    after = calendar(hand_stack, ann, ANN)
    assert after is not None
    assert (after.selected, after.last_sync_status, after.sync_lease_owner) == (True, "error", None)
    logged = last_pull_log(hand_stack, ann)
    assert logged.sync_status == "error"
    assert logged.details == {"not_found": "still_listed"}
    assert "still in the owner's calendar list" in (logged.message or "")
    # And the next pull works at once, and ben's calendar was never touched
    hand_stack.google_as(ANN).events().insert(calendarId="primary", body=EVENT).execute()
    assert pull_calendar(hand_stack.services, primary.id).status == "ok"
    assert calendar(hand_stack, ann, ANN).last_sync_status == "ok"  # type: ignore[union-attr]
    assert "standup" in {e.title for e in hand_stack.local_events(ANN).values()}
    bens = calendar(hand_stack, ben, BEN)
    assert bens is not None
    assert bens.selected
    assert bens.last_sync_status == "ok"


def test_a_calendar_unshared_on_google_leaves_once_the_owners_list_confirms(
    hand_stack: SyncStack,
) -> None:
    # Given ben's team calendar shared with ann, and both connected
    hand_stack.control.create_user(ANN)
    hand_stack.control.create_user(BEN)
    team = hand_stack.control.add_calendar(BEN, "team")
    hand_stack.control.share(team["id"], ANN, "reader")
    hand_stack.google_as(BEN).events().insert(calendarId=team["id"], body=EVENT).execute()
    ben = hand_stack.connect_pulled(BEN)
    ann = hand_stack.connect_pulled(ANN)
    anns_team = calendar(hand_stack, ann, team["id"])
    assert anns_team is not None
    # When ben stops sharing it, and ann's next pull of it gets 404
    hand_stack.control.share(team["id"], ANN, "none")
    with pytest.raises(NotFound):
        pull_calendar(hand_stack.services, anns_team.id)
    # Then ann's copy is gone with its events, and the log says it was confirmed
    assert calendar(hand_stack, ann, team["id"]) is None
    with hand_stack.services.sessions() as session:
        left = session.scalar(
            sa.select(sa.func.count()).where(EventRow.calendar_id == anns_team.id)
        )
    assert left == 0
    logged = last_pull_log(hand_stack, ann)
    assert logged.details == {"not_found": "confirmed_gone"}
    assert logged.calendar_id is None  # the calendar row is gone
    # And ben still has his calendar, selected and healthy, with its event
    bens_team = calendar(hand_stack, ben, team["id"])
    assert bens_team is not None
    assert bens_team.selected
    hand_stack.user_id = ben
    assert "standup" in {e.title for e in hand_stack.local_events(team["id"]).values()}


def test_any_exception_releases_the_lease_logs_its_class_and_marks_the_calendar(
    hand_stack: SyncStack,
) -> None:
    # Given two connected users
    ben = hand_stack.connect_pulled(BEN)
    ann = hand_stack.connect_pulled(ANN)
    primary = calendar(hand_stack, ann, ANN)
    assert primary is not None
    # When a worker whose keys no longer decrypt the stored tokens pulls ann's calendar
    wrong_keys = dataclasses.replace(
        hand_stack.services.settings, encryption_keys=(Fernet.generate_key().decode(),)
    )
    stranger = bootstrap(wrong_keys)
    try:
        with pytest.raises(SecretDecryptError):
            pull_calendar(stranger, primary.id)
    finally:
        stranger.close()
    # Then the lease is free, the calendar says error, and the log names the class only
    after = calendar(hand_stack, ann, ANN)
    assert after is not None
    assert (after.last_sync_status, after.sync_lease_owner) == ("error", None)
    logged = last_pull_log(hand_stack, ann)
    assert logged.sync_status == "error"
    assert (logged.message or "").startswith("SecretDecryptError")
    # And a worker with the right keys pulls it at once (not "busy" for a lease period)
    assert pull_calendar(hand_stack.services, primary.id).status == "ok"
    assert calendar(hand_stack, ann, ANN).last_sync_status == "ok"  # type: ignore[union-attr]
    assert calendar(hand_stack, ben, BEN).last_sync_status == "ok"  # type: ignore[union-attr]


def test_one_channel_that_cannot_be_renewed_does_not_stop_the_others(
    hand_stack: SyncStack,
) -> None:
    # Given two users whose channels all expire soon, one whose token cannot be decrypted
    ben = hand_stack.connect_pulled(BEN)
    ann = hand_stack.connect_pulled(ANN)
    for user_id in (ann, ben):
        ensure_channels(hand_stack.services, user_id)
    soon = hand_stack.services.clock() + timedelta(minutes=5)
    with hand_stack.services.sessions.begin() as session:
        session.execute(sa.update(WatchChannel).values(expires_at=soon))
        session.execute(
            sa.update(OAuthToken)
            .where(OAuthToken.user_id == ann)
            .values(
                access_token_encrypted=b"not a fernet token", expires_at=soon + timedelta(hours=1)
            )
        )
    # When the renewal runs
    report = renew_channels(hand_stack.services)
    # Then ben's channels are renewed, ann's failures are counted and logged by class
    assert report.failed == 2  # ann's calendar and calendar-list channels
    assert report.renewed == 2
    with hand_stack.services.sessions() as session:
        logged = session.scalars(
            sa.select(SyncLog.message).where(SyncLog.user_id == ann, SyncLog.kind == "channel")
        ).all()
        renewed_for = session.scalars(
            sa.select(WatchChannel.user_id).where(
                WatchChannel.status == "active", WatchChannel.expires_at > soon
            )
        ).all()
    assert len(logged) == 2
    assert all("SecretDecryptError" in (m or "") for m in logged), logged
    assert set(renewed_for) == {ben}
