"""``/metrics`` can be kept from the public: behind a token (CALSYNC_METRICS_TOKEN) or on a
port of its own (CALSYNC_METRICS_PORT); and a flood of scrapes costs one computation of the
state metrics per interval. On both modes."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.testclient import TestClient

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.store.tables import AuditEvent
from calsync.sync.polling import budget_report
from calsync.web.app import create_app, create_metrics_app
from calsync.web.state_metrics import collect_state
from tests.migrated import upgrade

pytestmark = pytest.mark.integration

TOKEN = "metrics-" + "t" * 40


class Clock:
    """The services' clock, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime(2031, 5, 6, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Running:
    services: Services
    clock: Clock


def running(request: pytest.FixtureRequest, **changes: Any) -> Iterator[Running]:
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    clock = Clock()
    services = bootstrap(replace(settings, **changes), clock=clock)
    upgrade(services.engine)
    yield Running(services, clock)
    services.close()


@pytest.fixture(params=["embedded", "production"])
def with_token(request: pytest.FixtureRequest) -> Iterator[Running]:
    yield from running(request, metrics_token=TOKEN)


@pytest.fixture(params=["embedded", "production"])
def with_port(request: pytest.FixtureRequest) -> Iterator[Running]:
    yield from running(request, metrics_port=9100, metrics_token=TOKEN)


@pytest.fixture(params=["embedded", "production"])
def public(request: pytest.FixtureRequest) -> Iterator[Running]:
    yield from running(request)


def auth_failures(services: Services) -> int:
    with services.sessions() as session:
        return int(
            session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "auth_failed"))
            or 0
        )


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"X-Token": TOKEN}],
    ids=["none", "wrong", "no scheme", "other header"],
)
def test_with_a_token_metrics_answer_only_the_bearer_of_it(
    with_token: Running, headers: dict[str, str]
) -> None:
    with TestClient(create_app(with_token.services)) as client:
        refused = client.get("/metrics", headers=headers)
        served = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert refused.status_code == 401
    assert "calsync_" not in refused.text
    assert served.status_code == 200
    assert "calsync_state_source_up" in served.text
    # The metrics token is not a calsync JWT: nothing is audited as a failed sign-in
    assert auth_failures(with_token.services) == 0


def test_with_a_port_the_api_has_no_metrics_and_the_metrics_app_has(with_port: Running) -> None:
    with TestClient(create_app(with_port.services)) as api:
        assert api.get("/metrics").status_code == 404
        assert api.get("/healthz").status_code == 200
        assert "/metrics" not in api.get("/openapi.json").json()["paths"]
    with TestClient(create_metrics_app(with_port.services)) as metrics:
        assert metrics.get("/metrics").status_code == 401
        served = metrics.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert served.status_code == 200
        assert "calsync_state_source_up" in served.text
        assert metrics.get("/me").status_code == 404


class Statements:
    """Counts the statements run on an engine while it listens."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.count = 0

    def _seen(self, *_: Any) -> None:
        self.count += 1

    def __enter__(self) -> Statements:
        sa.event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_: Any) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)


def scrape_concurrently(app: Starlette, times: int) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return list(await asyncio.gather(*(client.get("/metrics") for _ in range(times))))

    return asyncio.run(main())


def test_a_flood_of_scrapes_costs_one_state_computation_per_interval(public: Running) -> None:
    services = public.services
    # (What one computation costs, on this database)
    with Statements(services.engine) as one:
        collect_state(
            services.sessions,
            services.broker,
            public.clock(),
            budget=functools.partial(budget_report, services),
        )
    assert one.count >= 5
    app = create_app(services)

    # When 100 scrapes arrive at once
    with Statements(services.engine) as flood:
        answers = scrape_concurrently(app, 100)

    # Then all are answered from one computation
    assert [a.status_code for a in answers] == [200] * 100
    assert flood.count == one.count
    assert len({a.text.split("calsync_state_source_up", 1)[1] for a in answers}) == 1

    # And scrapes within the interval compute nothing; the first one after it computes again
    public.clock.now += timedelta(seconds=services.settings.state_metrics_cache_seconds - 1)
    with Statements(services.engine) as within:
        scrape_concurrently(app, 10)
    public.clock.now += timedelta(seconds=1)
    with Statements(services.engine) as after:
        scrape_concurrently(app, 10)
    assert (within.count, after.count) == (0, one.count)
