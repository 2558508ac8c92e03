"""A push that fails for a reason that is not Google's answer is handled like a passing
provider failure: logged by class, backed off, and written once it can be. Both
databases, two users."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from calsync.store.tables import OAuthToken, SyncLog
from calsync.sync.write_back import PushStatus
from tests.integration.events.conftest import EventsApp

pytestmark = pytest.mark.integration

BODY = {
    "title": "planning",
    "start_time": "2031-03-10T09:00:00Z",
    "end_time": "2031-03-10T10:00:00Z",
    "timezone": "UTC",
}


def test_an_undecryptable_token_backs_the_push_off_and_logs_its_class(any_app: EventsApp) -> None:
    # Given two users who each created an event, and ann's stored token is unreadable
    ann = any_app.connect("ann@example.com")
    ben = any_app.connect("ben@example.com")
    anns = any_app.create(ann, BODY)
    bens = any_app.create(ben, BODY | {"title": "review"})
    with any_app.services.sessions.begin() as session:
        kept = session.scalar(
            sa.select(OAuthToken.access_token_encrypted).where(OAuthToken.user_id == ann.id)
        )
        session.execute(
            sa.update(OAuthToken)
            .where(OAuthToken.user_id == ann.id)
            .values(access_token_encrypted=b"not a fernet token")
        )
    # When their events are pushed
    assert any_app.push(anns["id"]).status is PushStatus.RETRY
    assert any_app.push(bens["id"]).status is PushStatus.SYNCED
    # Then ann's push is logged by the exception's class and waits, still pending
    with any_app.services.sessions() as session:
        logged = session.scalars(
            sa.select(SyncLog.message).where(SyncLog.user_id == ann.id, SyncLog.kind == "push")
        ).all()
    assert len(logged) == 1
    assert "SecretDecryptError" in (logged[0] or "")
    assert any_app.get(ann, anns["id"])["sync_state"] == "pending"
    assert any_app.push_all() == []  # backed off: nothing due at once
    # And once the token is readable again and the delay has passed, it is written once
    with any_app.services.sessions.begin() as session:
        session.execute(
            sa.update(OAuthToken)
            .where(OAuthToken.user_id == ann.id)
            .values(access_token_encrypted=kept)
        )
    any_app.clock.advance(minutes=5)
    assert [r.status for r in any_app.push_all()] == [PushStatus.SYNCED]
    assert any_app.get(ann, anns["id"])["sync_state"] == "synced"
    inserts = any_app.google_requests("POST", f"/calendars/{ann.email}/events")
    assert [r["status"] for r in inserts] == [200]
