"""The address limit and the user limit of a request with a token are taken in one hit
(decision HB1): from both buckets or from neither; both stay enforced, per user and per
address, across processes; on both modes, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.web.app import create_app
from tests.integration.accounts.conftest import App
from tests.integration.accounts.test_address_limits import (
    GOOD,
    PeerFromHeader,
    auth_failures,
    bad_tokens,
    get,
)
from tests.migrated import upgrade

pytestmark = pytest.mark.integration

PER_USER = 3
PER_ADDRESS = 5
SHARED = "198.51.100.20"  # one address (an office's NAT) for several users


@pytest.fixture(params=["embedded", "production"])
def app(request: pytest.FixtureRequest) -> Iterator[App]:
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    limits = {"api_rate_limit_per_minute": PER_USER, "address_rate_limit_per_minute": PER_ADDRESS}
    services = bootstrap(replace(settings, **limits))
    upgrade(services.engine)
    with TestClient(PeerFromHeader(create_app(services))) as client:
        yield App(services, client)
    services.close()


def test_a_request_the_user_limit_refuses_costs_its_address_nothing(app: App) -> None:
    # Given two users behind one address
    _, alice = app.user("alice@example.com")
    _, bob = app.user("bob@example.com")

    # When Alice sends five requests: her limit refuses the last two
    answers = [get(app, "/me", peer=SHARED, headers=alice) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]

    # Then the address has two requests left, for Bob (before HB1 the refused requests
    # had taken the address's tokens: Bob got 429 at once)
    bob_answers = [get(app, "/me", peer=SHARED, headers=bob) for _ in range(3)]
    assert [a.status_code for a in bob_answers] == [200, 200, 429]
    assert bob_answers[0].json()["email"] == "bob@example.com"
    # And each answer shows the tighter bucket: the address's once it has fewer left
    shown = [(a.headers["RateLimit-Limit"], a.headers["RateLimit-Remaining"]) for a in answers]
    assert shown == [("3", "2"), ("3", "1"), ("3", "0"), ("3", "0"), ("3", "0")]
    assert (
        bob_answers[0].headers["RateLimit-Limit"],
        bob_answers[0].headers["RateLimit-Remaining"],
    ) == ("5", "1")
    assert bob_answers[2].headers["RateLimit-Remaining"] == "0"


def test_the_address_limit_holds_for_several_users_and_bad_tokens(app: App) -> None:
    # Given three users and a bad token behind one address
    headers = [app.user(f"u{n}@example.com")[1] for n in range(3)]
    bad = {"Authorization": f"Bearer {bad_tokens(app)[0]}"}

    # When they take turns: good, good, good, bad, good, bad
    turns = [headers[0], headers[1], headers[2], bad, headers[0], bad]
    statuses = [get(app, "/me", peer=SHARED, headers=h).status_code for h in turns]

    # Then the address allows five, whoever sends them, and the sixth is 429
    assert statuses == [200, 200, 200, 401, 200, 429]
    # And only the refused token that was let through is audited
    assert sum(row.count for row in auth_failures(app)) == 1
    # And another address is not affected
    assert get(app, "/me", peer=GOOD, headers=headers[1]).status_code == 200


def test_both_limits_are_shared_by_two_api_processes(
    production_settings: Settings,
) -> None:
    # Given two API processes (two apps) on one Redis
    limits = {"api_rate_limit_per_minute": PER_USER, "address_rate_limit_per_minute": 50}
    settings = replace(production_settings, **limits)
    first, second = bootstrap(settings), bootstrap(settings)
    upgrade(first.engine)
    with (
        TestClient(PeerFromHeader(create_app(first))) as one,
        TestClient(PeerFromHeader(create_app(second))) as two,
    ):
        a = App(first, one)
        _, alice = a.user("alice@example.com")
        _, bob = a.user("bob@example.com")
        # When Alice alternates between them
        statuses = [
            (one if n % 2 else two).get("/me", headers={"X-Test-Peer": SHARED, **alice}).status_code
            for n in range(5)
        ]
        # Then her limit counts both processes' requests, and Bob's is his own
        assert statuses == [200, 200, 200, 429, 429]
        assert two.get("/me", headers={"X-Test-Peer": SHARED, **bob}).status_code == 200
    first.close()
    second.close()
