"""Roles, audited role changes, body size limits and per-user rate limits over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
import sqlalchemy as sa

from calsync.config import Settings
from calsync.domain.accounts import Role
from calsync.store.tables import AuditEvent
from tests.integration.accounts.conftest import App, running_app

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/admin/users"), ("GET", "/admin/audit"), ("PATCH", "/admin/users/{id}")],
)
def test_a_user_on_an_admin_route_gets_403(app: App, method: str, path: str) -> None:
    user, headers = app.user("plain@example.com")
    response = app.client.request(
        method, path.format(id=user.id), headers=headers, json={"role": "admin"}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_an_admin_changes_a_role_which_takes_effect_at_once_and_is_audited(app: App) -> None:
    admin, admin_headers = app.user("boss@example.com", Role.ADMIN)
    user, user_headers = app.user("worker@example.com")
    assert app.client.get("/admin/users", headers=user_headers).status_code == 403

    changed = app.client.patch(
        f"/admin/users/{user.id}", headers=admin_headers, json={"role": "admin"}
    )

    assert changed.status_code == 200
    assert changed.json()["role"] == "admin"
    # The token minted before the change now carries admin rights: roles come from the DB.
    listed = app.client.get("/admin/users", headers=user_headers)
    assert listed.status_code == 200
    assert {u["email"] for u in listed.json()["users"]} == {admin.email, user.email}
    with app.services.sessions() as session:
        event = session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "role_changed"))
    assert event is not None
    assert (event.actor_id, event.subject_id) == (admin.id, user.id)
    assert event.details == {"from": "user", "to": "admin"}


@pytest.mark.parametrize(
    ("body", "status"),
    [({"role": "root"}, 422), ({"role": "user", "email": "x@y.z"}, 422), ({}, 422)],
)
def test_bad_role_changes_are_refused_and_change_nothing(
    app: App, body: dict[str, str], status: int
) -> None:
    _, admin_headers = app.user("boss@example.com", Role.ADMIN)
    user, _ = app.user("worker@example.com")

    response = app.client.patch(f"/admin/users/{user.id}", headers=admin_headers, json=body)

    assert response.status_code == status
    listed = app.client.get("/admin/users", headers=admin_headers).json()["users"]
    assert {u["email"]: u["role"] for u in listed}["worker@example.com"] == "user"


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_an_unknown_user_id_is_404(app: App, user_id: str) -> None:
    _, admin_headers = app.user("boss@example.com", Role.ADMIN)
    response = app.client.patch(
        f"/admin/users/{user_id}", headers=admin_headers, json={"role": "user"}
    )
    assert response.status_code == 404


def test_an_oversized_body_is_refused_with_413_before_anything_changes(app: App) -> None:
    _, admin_headers = app.user("boss@example.com", Role.ADMIN)
    user, _ = app.user("worker@example.com")
    limit = app.services.settings.max_request_body_bytes
    padding = "x" * (limit + 1)

    response = app.client.patch(
        f"/admin/users/{user.id}",
        headers={**admin_headers, "Content-Type": "application/json"},
        content=f'{{"role": "admin", "pad": "{padding}"}}',
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.fixture
def strict_app(embedded_settings: Settings) -> Iterator[App]:
    yield from running_app(replace(embedded_settings, api_rate_limit_per_minute=5))


def test_each_user_has_their_own_rate_limit_with_retry_after(strict_app: App) -> None:
    _, first = strict_app.user("first@example.com")
    _, second = strict_app.user("second@example.com")

    statuses = [strict_app.client.get("/me", headers=first).status_code for _ in range(6)]

    assert statuses == [200] * 5 + [429]
    refused = strict_app.client.get("/me", headers=first)
    assert int(refused.headers["Retry-After"]) >= 1
    assert strict_app.client.get("/me", headers=second).status_code == 200
    assert strict_app.client.get("/healthz").status_code == 200


def test_answers_show_the_tighter_limit_and_what_is_left_of_it(strict_app: App) -> None:
    """RateLimit-Limit / RateLimit-Remaining follow the user's bucket (5 a minute, tighter
    than the address's 1200), per user; probes carry none (no limit applies)."""
    _, first = strict_app.user("first@example.com")
    _, second = strict_app.user("second@example.com")

    answers = [strict_app.client.get("/me", headers=first) for _ in range(6)]

    assert [a.headers["RateLimit-Limit"] for a in answers] == ["5"] * 6
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
    assert answers[-1].status_code == 429
    other = strict_app.client.get("/me", headers=second)
    assert (other.headers["RateLimit-Limit"], other.headers["RateLimit-Remaining"]) == ("5", "4")
    anonymous = strict_app.client.get("/openapi.json")
    assert anonymous.headers["RateLimit-Limit"] == "1200"
    probe = strict_app.client.get("/healthz")
    assert "RateLimit-Limit" not in probe.headers
    assert "RateLimit-Remaining" not in probe.headers
