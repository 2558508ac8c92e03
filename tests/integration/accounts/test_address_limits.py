"""Each client address is rate limited before authentication, and a flood of failures is
counted in the audit trail instead of written row by row; on both modes, over HTTP."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta

import httpx2 as httpx
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.store.tables import AuditEvent
from calsync.web.app import create_app
from calsync.web.auth.tokens import issue_token
from tests.integration.accounts.conftest import App
from tests.migrated import upgrade

pytestmark = pytest.mark.integration

LIMIT = 50  # requests per minute from one address
ATTACKER = "198.51.100.9"
GOOD = "203.0.113.7"
PROXY = "10.0.0.1"


class PeerFromHeader:
    """Test scaffolding in front of the app: each request's TCP peer is the address in its
    ``X-Test-Peer`` header, as a connection from there would give (one client and one
    event loop for every address: the Redis client is bound to the loop)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            peer = dict(scope["headers"]).get(b"x-test-peer", b"127.0.0.1").decode()
            scope["client"] = (peer, 40000)
        await self.app(scope, receive, send)


def limited_app(request: pytest.FixtureRequest, **changes: object) -> Iterator[App]:
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    services = bootstrap(replace(settings, address_rate_limit_per_minute=LIMIT, **changes))
    upgrade(services.engine)
    with TestClient(PeerFromHeader(create_app(services))) as client:
        yield App(services, client)
    services.close()


@pytest.fixture(params=["embedded", "production"])
def app(request: pytest.FixtureRequest) -> Iterator[App]:
    yield from limited_app(request)


@pytest.fixture(params=["embedded", "production"])
def proxied_app(request: pytest.FixtureRequest) -> Iterator[App]:
    yield from limited_app(request, trusted_proxies=("10.0.0.0/8",))


def get(
    app: App, path: str, *, peer: str, headers: dict[str, str] | None = None, **params: str
) -> httpx.Response:
    """``GET path`` from ``peer``."""
    return app.client.get(path, headers={"X-Test-Peer": peer, **(headers or {})}, params=params)


def flood(send: Callable[[int], httpx.Response], *, at_most: int = 1000) -> list[int]:
    """The statuses of requests ``send(0)``, ``send(1)``, ... sent until the first 429
    (or `at_most`), after checking that the limit showed in time: the first LIMIT are
    let through, and no more than LIMIT plus what refilled while they were sent (LIMIT
    a minute). A fixed count of LIMIT + a few is not enough on a loaded host, where the
    bucket refills while the flood is still under way."""
    started = time.monotonic()
    statuses: list[int] = []
    for i in range(at_most):
        statuses.append(send(i).status_code)
        if statuses[-1] == 429:
            break
    refilled = math.ceil((time.monotonic() - started) * LIMIT / 60)
    assert statuses[-1] == 429
    assert 429 not in statuses[:LIMIT]
    assert len(statuses) - 1 <= LIMIT + refilled
    return statuses


def bad_tokens(app: App) -> list[str]:
    """Three kinds of bad token: a bad signature, an expired one, garbage."""
    jwt, now = app.services.jwt, app.services.clock()
    good = issue_token(jwt, subject=str(uuid.uuid4()), email="x@y.z", role="user")
    expired = issue_token(
        jwt, subject=str(uuid.uuid4()), email="x@y.z", role="user", now=now - timedelta(hours=3)
    )
    return [good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"), expired, "not.a.jwt"]


def auth_failures(app: App) -> list[AuditEvent]:
    with app.services.sessions() as session:
        rows = list(
            session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "auth_failed"))
        )
        session.expunge_all()
        return rows


def test_a_flood_of_bad_tokens_from_one_address_is_limited_and_counted(app: App) -> None:
    # Given a good user, who calls from their own address
    _, good_headers = app.user("good@example.com")
    tokens = bad_tokens(app)

    # When one address sends 1,000 requests with bad tokens
    started = time.monotonic()
    answers = [
        get(app, "/me", peer=ATTACKER, headers={"Authorization": f"Bearer {tokens[i % 3]}"})
        for i in range(1000)
    ]
    elapsed = time.monotonic() - started

    # Then the first LIMIT are 401 and the rest 429 with Retry-After, but for the tokens
    # that refilled meanwhile (LIMIT a minute)
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {401, 429}
    assert statuses[:LIMIT] == [401] * LIMIT
    refilled = math.ceil(elapsed * LIMIT / 60)
    assert statuses.count(401) <= LIMIT + refilled
    assert statuses.count(429) >= 1000 - LIMIT - refilled
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers if a.status_code == 429)
    # And the audit trail holds one row per reason (and minute), counting the 401s only
    rows = auth_failures(app)
    assert len(rows) <= 2 * len(tokens)  # the flood may straddle a minute
    assert sum(row.count for row in rows) == statuses.count(401)
    assert {row.remote_addr for row in rows} == {ATTACKER}
    # And the good user, from another address, is served
    assert get(app, "/me", peer=GOOD, headers=good_headers).status_code == 200
    # And probes stay unlimited
    assert get(app, "/healthz", peer=ATTACKER).status_code == 200


def test_a_flood_of_forged_sign_in_callbacks_is_limited_and_counted(app: App) -> None:
    statuses = flood(
        lambda i: get(app, "/auth/google/callback", peer=ATTACKER, error=f"made-up-{i}")
    )

    assert set(statuses[:-1]) == {400}
    with app.services.sessions() as session:
        rows = list(
            session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "sign_in_failed"))
        )
    # The made-up error codes are not echoed into the reason, so they share one row
    assert {row.details["reason"] for row in rows if row.details} == {"consent (other)"}
    assert len(rows) <= 2
    assert sum(row.count for row in rows) == statuses.count(400)


def test_x_forwarded_for_is_ignored_unless_the_proxy_is_trusted(app: App) -> None:
    # Given no trusted proxy: a client that names a fresh address on every request
    statuses = flood(
        lambda i: get(
            app,
            "/me",
            peer=ATTACKER,
            headers={
                "X-Forwarded-For": f"192.0.{i // 250}.{i % 250}",
                "Authorization": "Bearer x.y.z",
            },
        )
    )
    # Then it still has one bucket, and one name in the audit trail: its own address
    assert set(statuses[:-1]) == {401}
    assert {row.remote_addr for row in auth_failures(app)} == {ATTACKER}


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket(
    proxied_app: App,
) -> None:
    _, good_headers = proxied_app.user("good@example.com")

    # When one client behind the proxy floods
    statuses = flood(
        lambda _: get(
            proxied_app,
            "/me",
            peer=PROXY,
            headers={"X-Forwarded-For": ATTACKER, "Authorization": "Bearer x.y.z"},
        )
    )

    # Then that client is limited, under its own address in the audit trail
    assert set(statuses[:-1]) == {401}
    assert {row.remote_addr for row in auth_failures(proxied_app)} == {ATTACKER}
    # And another client behind the same proxy is not
    forwarded_good = {"X-Forwarded-For": GOOD, **good_headers}
    assert get(proxied_app, "/me", peer=PROXY, headers=forwarded_good).status_code == 200
    # And a client that is not the proxy cannot pass for another with the header
    outsider = "192.0.2.50"
    forged = {"X-Forwarded-For": GOOD, "Authorization": "Bearer x.y.z"}
    assert get(proxied_app, "/me", peer=outsider, headers=forged).status_code == 401
    addresses = {row.remote_addr for row in auth_failures(proxied_app)}
    assert addresses == {ATTACKER, outsider}
