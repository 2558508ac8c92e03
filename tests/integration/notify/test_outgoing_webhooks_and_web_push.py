"""Signed webhooks and Web Push, delivered to real HTTP receivers on 127.0.0.1.

The Web Push receiver plays the browser's push service: it gets the encrypted payload and
decrypts it with the subscription's private key and auth secret (RFC 8291), as the browser
would, and checks the VAPID signature.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import uuid
from datetime import UTC, datetime, timedelta

import http_ece  # type: ignore[import-untyped]
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02  # type: ignore[import-untyped]
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.models import Attendee, Event, EventTime
from calsync.notify.addresses import AddressGuard
from calsync.notify.deliveries import deliver_due
from calsync.notify.on_event_change import event_changed
from calsync.notify.outbound import OutboundHttp
from calsync.notify.outgoing_webhooks import WebhookSender, verify_signature
from calsync.notify.preferences import Preferences, load_webhook_secret, save_preferences
from calsync.notify.senders import Dispatcher
from calsync.store.tables import NotificationDelivery, PushSubscription
from tests.integration.notify.conftest import (
    BOX,
    Receiver,
    add_calendar,
    add_event,
    add_user,
    dispatcher_for,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
BEFORE = Event(
    start=EventTime.at(datetime(2026, 6, 3, 14, 0), "Europe/Berlin"),
    end=EventTime.at(datetime(2026, 6, 3, 15, 0), "Europe/Berlin"),
    title="Launch review",
    organizer_email="alice@example.com",
    attendees=(Attendee(email="bob@example.com"),),
    provider_event_id="launch1",
)
AFTER = dataclasses.replace(BEFORE, title="Launch review (final)")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def record_change(sessions: sessionmaker[Session], prefs: Preferences) -> uuid.UUID:
    """Alice changes an event Bob attends; Bob's preferences are ``prefs``."""
    with sessions.begin() as session:
        alice = add_user(session, "alice@example.com")
        bob = add_user(session, "bob@example.com")
        save_preferences(session, bob, prefs, BOX)
        event_id = add_event(
            session, BEFORE, user_id=alice, calendar_id=add_calendar(session, alice)
        )
        event_changed(
            session,
            before=BEFORE,
            after=AFTER,
            event_id=event_id,
            actor_user_id=alice,
            source="api",
            now=NOW,
        )
    return bob


def only_delivery(sessions: sessionmaker[Session]) -> NotificationDelivery:
    with sessions() as session:
        [row] = session.scalars(sa.select(NotificationDelivery)).all()
        return row


# --- webhooks -----------------------------------------------------------------------------


def webhook_prefs(receiver: Receiver) -> Preferences:
    return Preferences(channels=("webhook",), webhook_url=f"{receiver.url}/calsync-hook")


def test_a_webhook_is_signed_over_timestamp_and_body(
    sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    bob = record_change(sessions, webhook_prefs(receiver))

    assert deliver_due(sessions, dispatcher_for(receivers=[receiver]), now=NOW).sent == 1

    [request] = receiver.requests
    assert request.path == "/calsync-hook"
    with sessions() as session:
        secret = load_webhook_secret(session, bob, BOX)
    assert secret is not None
    assert verify_signature(
        secret.reveal(),
        timestamp=request.headers["calsync-timestamp"],
        signature=request.headers["calsync-signature"],
        body=request.body,
        now=NOW,
    )
    body = json.loads(request.body)
    row = only_delivery(sessions)
    assert body["id"] == str(row.id) == request.headers["calsync-delivery"]
    assert body["type"] == "event.updated"
    assert body["changed"] == ["title"]
    assert body["after"]["title"] == "Launch review (final)"
    assert row.status == "sent"


def test_a_failing_webhook_is_retried_with_backoff_as_the_same_delivery(
    sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    record_change(sessions, webhook_prefs(receiver))
    receiver.statuses.extend([503, 500])
    dispatcher = dispatcher_for(receivers=[receiver])

    assert deliver_due(sessions, dispatcher, now=NOW).retrying == 1
    row = only_delivery(sessions)
    assert (row.status, row.attempts, row.due_at) == ("pending", 1, NOW + timedelta(seconds=30))
    assert row.reason is not None
    assert "503" in row.reason
    # Not before the backoff is over; then again (500), with a doubled wait; then through
    assert deliver_due(sessions, dispatcher, now=NOW + timedelta(seconds=29)).handled == 0
    assert deliver_due(sessions, dispatcher, now=NOW + timedelta(seconds=30)).retrying == 1
    assert only_delivery(sessions).due_at == NOW + timedelta(seconds=90)
    assert deliver_due(sessions, dispatcher, now=NOW + timedelta(seconds=90)).sent == 1

    assert only_delivery(sessions).attempts == 3
    assert len({r.headers["calsync-delivery"] for r in receiver.requests}) == 1
    assert len(receiver.requests) == 3


def test_a_webhook_that_keeps_failing_is_given_up_with_the_reason(
    sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    record_change(sessions, webhook_prefs(receiver))
    receiver.statuses.extend([500, 500])

    deliver_due(sessions, dispatcher_for(receivers=[receiver]), now=NOW, max_attempts=2)
    deliver_due(
        sessions,
        dispatcher_for(receivers=[receiver]),
        now=NOW + timedelta(minutes=1),
        max_attempts=2,
    )

    row = only_delivery(sessions)
    assert (row.status, row.attempts) == ("failed", 2)
    assert row.reason is not None
    assert "gave up after 2 attempts" in row.reason


def test_a_refused_webhook_is_not_retried(
    sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    record_change(sessions, webhook_prefs(receiver))
    receiver.statuses.append(404)

    assert deliver_due(sessions, dispatcher_for(receivers=[receiver]), now=NOW).failed == 1
    assert only_delivery(sessions).reason == "the webhook answered 404"


def test_the_ssrf_rule_refuses_a_webhook_to_this_machine(
    sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    # Given a webhook URL on 127.0.0.1 (stored directly: the API would refuse it too)
    record_change(sessions, webhook_prefs(receiver))
    production = Dispatcher({"webhook": WebhookSender(BOX, OutboundHttp(AddressGuard()))})

    assert deliver_due(sessions, production, now=NOW).failed == 1

    assert receiver.requests == []
    reason = only_delivery(sessions).reason
    assert reason is not None
    assert reason.startswith("webhook URL refused")


# --- Web Push -----------------------------------------------------------------------------


@dataclasses.dataclass
class Browser:
    """The keys a browser makes for a push subscription."""

    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def new(cls) -> Browser:
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    def decrypt(self, body: bytes) -> bytes:
        return bytes(
            http_ece.decrypt(
                body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
            )
        )


def vapid_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return b64(key.private_numbers().private_value.to_bytes(32, "big"))


def subscribe(sessions: sessionmaker[Session], user_id: uuid.UUID, endpoint: str) -> Browser:
    browser = Browser.new()
    with sessions.begin() as session:
        session.add(
            PushSubscription(
                user_id=user_id, endpoint=endpoint, p256dh=browser.p256dh, auth=b64(browser.auth)
            )
        )
    return browser


def test_a_push_arrives_encrypted_for_the_subscription_and_signed_with_vapid(
    sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    bob = record_change(sessions, Preferences(channels=("push",)))
    browser = subscribe(sessions, bob, f"{receiver.url}/push/abc")

    assert (
        deliver_due(
            sessions, dispatcher_for(vapid_key=vapid_key(), receivers=[receiver]), now=NOW
        ).sent
        == 1
    )

    [request] = receiver.requests
    assert request.path == "/push/abc"
    assert request.headers["content-encoding"] == "aes128gcm"
    assert int(request.headers["ttl"]) > 0
    assert Vapid02.verify(request.headers["authorization"])
    message = json.loads(browser.decrypt(request.body))
    assert message["id"] == str(only_delivery(sessions).id)
    assert message["type"] == "event.updated"
    assert message["title"].startswith("Updated: Launch review (final)")
    assert message["event"]["title"] == "Launch review (final)"


def test_an_expired_subscription_is_removed(
    sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    bob = record_change(sessions, Preferences(channels=("push",)))
    subscribe(sessions, bob, f"{receiver.url}/push/gone")
    receiver.statuses.append(410)

    assert (
        deliver_due(
            sessions, dispatcher_for(vapid_key=vapid_key(), receivers=[receiver]), now=NOW
        ).failed
        == 1
    )

    with sessions() as session:
        assert session.scalars(sa.select(PushSubscription)).all() == []
    reason = only_delivery(sessions).reason
    assert reason is not None
    assert "expired" in reason


def test_one_working_subscription_is_enough(
    sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    bob = record_change(sessions, Preferences(channels=("push",)))
    subscribe(sessions, bob, f"{receiver.url}/push/old")
    browser = subscribe(sessions, bob, f"{receiver.url}/push/new")
    receiver.statuses.extend([404, 201])

    assert (
        deliver_due(
            sessions, dispatcher_for(vapid_key=vapid_key(), receivers=[receiver]), now=NOW
        ).sent
        == 1
    )

    with sessions() as session:
        [left] = session.scalars(sa.select(PushSubscription)).all()
    assert left.endpoint.endswith("/push/new")
    assert json.loads(browser.decrypt(receiver.requests[1].body))["type"] == "event.updated"


def test_push_without_a_subscription_or_a_vapid_key_fails_with_a_reason(
    sessions: sessionmaker[Session],
) -> None:
    record_change(sessions, Preferences(channels=("push",)))

    deliver_due(sessions, dispatcher_for(vapid_key=vapid_key()), now=NOW)

    assert only_delivery(sessions).reason == "no push subscription is registered"
