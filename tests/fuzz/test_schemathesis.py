"""schemathesis against ``GET /openapi.json`` of the running app, every check on.

The app is the production configuration (PostgreSQL, Redis) in process, pointed at the
emulator, and called through ASGI; requests carry the JWT of a connected admin (so the
admin routes are reached too). Every operation of the document gets positive and
negative examples; every built-in check runs: no 5xx, status codes, content types and
bodies match the document, valid input accepted, invalid input rejected with a 4xx.
Bounded: a few examples per operation, no shrinking, so the module runs in about a
minute.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Final

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode

from calsync.config import Settings
from calsync.domain.accounts import Role
from calsync.web.openapi import OPERATIONS
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, User, running

pytestmark = pytest.mark.integration

#: Examples per operation and mode; ``CALSYNC_FUZZ_EXAMPLES=200`` for a deeper, randomised
#: local run (CI keeps the small, derandomised default).
EXAMPLES = int(os.environ.get("CALSYNC_FUZZ_EXAMPLES", "12"))
DERANDOMIZE = "CALSYNC_FUZZ_EXAMPLES" not in os.environ


@pytest.fixture
def fuzzed(production_settings: Settings, fake_google: FakeGoogle) -> Iterator[EventsApp]:
    yield from running(production_settings, fake_google)


@pytest.fixture
def admin(fuzzed: EventsApp) -> User:
    return fuzzed.connect("fuzz@example.com", role=Role.ADMIN)


#: Operations whose valid-by-the-document input can still be refused on meaning, which a
#: JSON Schema cannot say: an end before its start, a rule or zone Google would refuse,
#: start_date without end_date, a random cursor, a sign-in state not bound to a cookie,
#: a push endpoint on a private address. There, a refusal of positive data is accepted
#: with these statuses (never a 5xx); everywhere else valid input must succeed.
MEANING_CHECKED: dict[tuple[str, str], list[int]] = {
    ("POST", "/events"): [422],
    ("PUT", "/events/{event_id}"): [422],
    ("PATCH", "/events/{event_id}"): [422],  # the same as PUT
    ("GET", "/events"): [422],
    ("GET", "/me/notices"): [422],
    ("GET", "/sync/logs"): [422],
    ("GET", "/admin/users"): [422],
    ("GET", "/admin/audit"): [422],
    ("PUT", "/me/preferences"): [422],
    ("POST", "/me/push-subscriptions"): [422],
    ("GET", "/auth/google/callback"): [400],
    ("PATCH", "/calendars/{calendar_id}"): [],
}
ACCEPTED: Final = [200, 201, 202, 204, 302, 404, 409, 412]


def load_schema(app: EventsApp, admin: User, refusals: list[int]) -> Any:
    """The app's document, with `refusals` also accepted as answers to valid input."""
    bearer = admin.headers["Authorization"].removeprefix("Bearer ")
    config = SchemathesisConfig.from_dict(
        {
            "auth": {"openapi": {"bearer": {"bearer": bearer}}},
            "generation": {"max-examples": EXAMPLES, "no-shrink": True},
            "checks": {
                "enabled": True,
                "positive_data_acceptance": {"expected-statuses": ACCEPTED + refusals},
            },
        }
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app.client.app, config=config)


@pytest.mark.parametrize(("method", "path"), sorted(OPERATIONS))
def test_every_operation_honours_its_document(
    fuzzed: EventsApp, admin: User, method: str, path: str
) -> None:
    refusals = MEANING_CHECKED.get((method, path), [])
    operation = load_schema(fuzzed, admin, refusals)[path][method]
    ran: dict[GenerationMode, int] = {}
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        ran[mode] = 0

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=DERANDOMIZE,
            database=None,
            phases=[Phase.explicit, Phase.generate],
        )
        def honours(case: Any) -> None:
            case.call_and_validate()
            ran[mode] += 1  # noqa: B023 - the loop waits for honours() below

        try:
            honours()
        except Unsatisfiable:
            # Nothing in the operation can be made invalid (no parameters or body, or
            # only free-form strings): there is no negative example to send.
            assert mode is GenerationMode.NEGATIVE, f"no valid example of {method} {path}"
    assert ran[GenerationMode.POSITIVE] > 0
    print(
        f"{method} {path}: {ran[GenerationMode.POSITIVE]} valid, "
        f"{ran[GenerationMode.NEGATIVE]} invalid examples"
    )
