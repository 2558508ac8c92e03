"""Liveness, readiness and metrics over HTTP, in both modes."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.store.migrate import upgrade
from calsync.web.app import create_app

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("mode", ["embedded", "production"])
def test_ready_when_database_migrated_and_broker_reachable(
    mode: str, request: pytest.FixtureRequest
) -> None:
    settings: Settings = request.getfixturevalue(f"{mode}_settings")
    services = bootstrap(settings)
    upgrade(services.engine)
    with TestClient(create_app(services)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
    services.close()

    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "broker": "ok"}


def test_not_ready_before_migrations(embedded_settings: Settings) -> None:
    services = bootstrap(embedded_settings)
    with TestClient(create_app(services)) as client:
        ready = client.get("/readyz")
    services.close()

    assert ready.status_code == 503
    assert ready.json()["checks"]["migrations"] == "behind"
    assert ready.headers["Retry-After"] == "5"


def test_not_ready_when_database_and_broker_are_down(production_settings: Settings) -> None:
    settings = replace(
        production_settings,
        database_url="postgresql://postgres@127.0.0.1:1/nowhere",
        redis_url="redis://127.0.0.1:1/0",
    )
    services = bootstrap(settings)
    with TestClient(create_app(services)) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
    services.close()

    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"].startswith("unavailable")
    assert checks["broker"].startswith("unavailable")


def test_unknown_route_answers_in_the_error_shape(embedded_settings: Settings) -> None:
    services = bootstrap(embedded_settings)
    with TestClient(create_app(services)) as client:
        response = client.get("/no-such-thing")
    services.close()

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_metrics_count_requests_by_route_template(embedded_settings: Settings) -> None:
    services = bootstrap(embedded_settings)
    upgrade(services.engine)
    with TestClient(create_app(services)) as client:
        client.get("/healthz")
        body = client.get("/metrics").text
    services.close()

    assert 'calsync_http_requests_total{method="GET",route="/healthz",status="200"}' in body


def test_a_database_migrated_by_a_newer_release_is_still_ready(
    production_settings: Settings, empty_pg_url: str
) -> None:
    # Given a database stamped with a revision this code does not know (a newer release)
    services = bootstrap(replace(production_settings, database_url=empty_pg_url))
    upgrade(services.engine)
    with services.engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = 'f00dfeed9999'"))
    with TestClient(create_app(services)) as client:
        ready = client.get("/readyz")
    services.close()

    assert ready.status_code == 200
    assert ready.json()["checks"]["migrations"] == "ok"
