"""An app on real storage with helpers to create users and mint their tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from starlette.testclient import TestClient

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.domain.accounts import Role, UserAccount
from calsync.store.users import ensure_user
from calsync.web.app import create_app
from calsync.web.auth.tokens import issue_token
from tests.migrated import upgrade


@dataclass
class App:
    services: Services
    client: TestClient

    def user(self, email: str, role: Role = Role.USER) -> tuple[UserAccount, dict[str, str]]:
        """Create a user; return it and the headers that authenticate as it."""
        with self.services.sessions.begin() as session:
            account = ensure_user(session, email, role=role)
        token = issue_token(
            self.services.jwt, subject=str(account.id), email=account.email, role=role.value
        )
        return account, {"Authorization": f"Bearer {token}"}


def running_app(settings: Settings) -> Iterator[App]:
    services = bootstrap(settings)
    upgrade(services.engine)
    with TestClient(create_app(services)) as client:
        yield App(services, client)
    services.close()


@pytest.fixture(params=["embedded", "production"])
def app(request: pytest.FixtureRequest) -> Iterator[App]:
    """The app in each mode: SQLite + in-process broker, PostgreSQL + Redis."""
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    yield from running_app(settings)
