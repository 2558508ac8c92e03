"""The SSRF rule on the wire, for webhooks and Web Push alike: a redirect is never
followed, the connection goes to the address that was checked (DNS rebinding gains
nothing) with the certificate verified for the URL's name, and a refusal never tells the
user what an internal name resolves to.

The receivers are real HTTPS servers on loopback addresses. The guard counts exactly the
listeners a test names as public (``AddressGuard(test_listeners=...)``); everything else
on this machine stays refused, as in production.
"""

from __future__ import annotations

import errno
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from calsync.notify.addresses import AddressGuard
from calsync.notify.deliveries import deliver_due
from calsync.notify.outbound import OutboundHttp
from calsync.notify.preferences import Preferences
from tests.integration.accounts.conftest import App
from tests.integration.notify.conftest import (
    Listen,
    Receiver,
    dispatcher_for,
    receiving_http,
)
from tests.integration.notify.test_outgoing_webhooks_and_web_push import (
    NOW,
    only_delivery,
    record_change,
    subscribe,
    vapid_key,
)

pytestmark = pytest.mark.integration

CHANNELS = ["webhook", "push"]
# What each channel calls the other end in a delivery's reason.
PEER = {"webhook": "the webhook", "push": "the push service"}
REFUSED = {"webhook": "webhook URL refused", "push": "push endpoint refused"}


def notify_at(sessions: sessionmaker[Session], channel: str, url: str) -> None:
    """Alice changes an event Bob attends; Bob is told through ``channel`` at ``url``."""
    if channel == "webhook":
        record_change(sessions, Preferences(channels=("webhook",), webhook_url=url))
    else:
        subscribe(sessions, record_change(sessions, Preferences(channels=("push",))), url)


def same_port_pair(listen: Listen) -> tuple[Receiver, Receiver]:
    """Two receivers on one port: on 127.0.0.2 and on 127.0.0.1."""
    for _ in range(20):
        outside = listen("127.0.0.2")
        try:
            return outside, listen("127.0.0.1", outside.port)
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise
    raise AssertionError("no port free on both 127.0.0.1 and 127.0.0.2")


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_redirect_is_never_followed_even_to_an_allowed_listener(
    sessions: sessionmaker[Session], listen: Listen, channel: str
) -> None:
    # Given an endpoint that answers 307 to another server on this machine, one the guard
    # would even let through
    inside = listen()
    endpoint = listen()
    endpoint.statuses.append(307)
    endpoint.location = f"{inside.url}/inside"
    notify_at(sessions, channel, f"{endpoint.url}/hook")
    dispatcher = dispatcher_for(vapid_key=vapid_key(), receivers=[endpoint, inside])

    # When the notice is sent
    report = deliver_due(sessions, dispatcher, now=NOW)

    # Then the redirect is an answer, not a way in: the delivery fails and says why
    assert report.failed == 1
    assert len(endpoint.requests) == 1
    assert inside.requests == []
    assert only_delivery(sessions).reason == (
        f"{PEER[channel]} answered 307 (redirects are not followed)"
    )


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_name_that_rebinds_to_this_machine_is_only_connected_at_the_checked_address(
    sessions: sessionmaker[Session], listen: Listen, channel: str
) -> None:
    # Given rebind.test, which resolves first to an address that stands for a public one
    # (127.0.0.2, a listener the guard counts as public), then to 127.0.0.1, where another
    # server listens on the same port
    outside, inside = same_port_pair(listen)
    calls: list[tuple[str, int]] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["127.0.0.2"] if len(calls) == 1 else ["127.0.0.1"]

    outside.statuses.append(503)
    notify_at(sessions, channel, f"https://rebind.test:{outside.port}/hook")
    http = receiving_http(outside, resolver=rebinding)
    dispatcher = dispatcher_for(vapid_key=vapid_key(), http=http)

    # When the notice is sent: one resolution, and the request goes to the address checked,
    # under the name (Host header, and TLS verified for rebind.test: the certificate does
    # not cover 127.0.0.2)
    assert deliver_due(sessions, dispatcher, now=NOW).retrying == 1
    assert calls == [("rebind.test", outside.port)]
    [request] = outside.requests
    assert request.headers["host"] == f"rebind.test:{outside.port}"
    assert inside.requests == []

    # Then the retry resolves again, gets 127.0.0.1 and is refused before connecting
    assert deliver_due(sessions, dispatcher, now=NOW + timedelta(minutes=1)).failed == 1
    assert len(calls) == 2
    assert inside.requests == []
    assert len(outside.requests) == 1
    assert only_delivery(sessions).reason == f"{REFUSED[channel]}: not a public address"


def test_the_certificate_is_verified_for_the_urls_name_not_the_address(
    sessions: sessionmaker[Session], listen: Listen
) -> None:
    # Given a name the receiver's certificate does not cover, resolving to that receiver
    outside = listen("127.0.0.2")
    notify_at(sessions, "webhook", f"https://elsewhere.test:{outside.port}/hook")
    http = receiving_http(outside, resolver=lambda host, port: ["127.0.0.2"])

    # When the webhook is sent
    report = deliver_due(sessions, dispatcher_for(http=http), now=NOW)

    # Then TLS fails, nothing is sent, and it is tried again later
    assert report.retrying == 1
    assert outside.requests == []
    reason = only_delivery(sessions).reason
    assert reason is not None
    assert "CERTIFICATE_VERIFY_FAILED" in reason


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_production_rule_refuses_a_receiver_on_this_machine_however_it_is_named(
    sessions: sessionmaker[Session], receiver: Receiver, channel: str
) -> None:
    # Given a public-looking name that resolves to a real receiver on 127.0.0.1
    notify_at(sessions, channel, f"https://hooks.example.com:{receiver.port}/hook")
    production = OutboundHttp(
        AddressGuard(resolver=lambda host, port: ["127.0.0.1"]),
        ssl_context=receiver.authority.client_context(),
    )

    dispatcher = dispatcher_for(vapid_key=vapid_key(), http=production)

    assert deliver_due(sessions, dispatcher, now=NOW).failed == 1

    assert receiver.requests == []
    assert only_delivery(sessions).reason == f"{REFUSED[channel]}: not a public address"


def test_the_notices_page_does_not_say_what_an_internal_name_resolves_to(app: App) -> None:
    # Given Bob's webhook at a name that resolves inside (one public address, one private)
    sessions = app.services.sessions
    record_change(
        sessions, Preferences(channels=("webhook",), webhook_url="https://intranet.example/h")
    )
    guard = AddressGuard(resolver=lambda host, port: ["93.184.216.34", "10.0.0.5"])
    deliver_due(sessions, dispatcher_for(http=OutboundHttp(guard)), now=NOW)

    # When Bob, and Alice, read their notices
    _, bob = app.user("bob@example.com")
    _, alice = app.user("alice@example.com")
    answer = app.client.get("/me/notices", headers=bob)

    # Then Bob sees that it was refused, and not where the name points
    assert answer.status_code == 200
    [notice] = answer.json()["notices"]
    assert (notice["status"], notice["reason"]) == (
        "failed",
        "webhook URL refused: not a public address",
    )
    assert "10.0.0.5" not in answer.text
    assert "93.184.216.34" not in answer.text
    assert app.client.get("/me/notices", headers=alice).json()["notices"] == []
