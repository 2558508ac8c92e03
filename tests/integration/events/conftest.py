"""The events API on real storage, pointed at the emulator, with jobs driven by hand.

`EventsApp` is one calsync (API through Starlette's TestClient, the services behind it)
with a controllable clock and Google clients that record their sleeps instead of
sleeping. `connect` makes a user that exists in the emulator and in calsync (tokens
stored, calendars from Google's calendar list). Pushes and pulls are run by calling the
use cases (`push_all`, `pull`), so tests decide exactly when Google is written or read.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from calsync.bootstrap import Services, bootstrap
from calsync.config import ConflictPolicy, Settings
from calsync.domain.accounts import Role
from calsync.emulator.testing import build_calendar_service
from calsync.events import read_model
from calsync.events.upkeep import CatchUp, catch_up
from calsync.providers.google.factory import GoogleProviders
from calsync.providers.quota import quota_limiter
from calsync.store import instances, outbox
from calsync.store.db import PoolSize, api_pool
from calsync.store.tables import Calendar, instance_horizon
from calsync.store.users import ensure_user
from calsync.store.zones import stored_zone
from calsync.sync import calendar_list, pull
from calsync.sync.write_back import PushResult, push_outbox
from calsync.web.app import create_app
from calsync.web.auth.tokens import issue_token
from tests.conftest import FakeGoogle
from tests.google_users import connect_google_user
from tests.migrated import upgrade

START = datetime(2031, 3, 3, 8, 0, tzinfo=UTC)


@dataclass
class Clock:
    """The services' clock: moves only when a test says so."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class User:
    id: uuid.UUID
    email: str
    headers: dict[str, str]
    google: dict[str, Any]
    calendar_id: uuid.UUID | None = None

    @property
    def primary(self) -> str:
        return self.email


@dataclass
class EventsApp:
    services: Services
    client: TestClient
    google: FakeGoogle
    clock: Clock
    sleeps: list[float] = field(default_factory=list)
    remotes: list[Any] = field(default_factory=list)

    @property
    def control(self) -> Any:
        return self.google.control

    def connect(self, email: str, *, role: Role = Role.USER, **extra: Any) -> User:
        """A user connected to Google: tokens stored, calendars listed from Google."""
        account, granted = connect_google_user(
            self.services,
            self.control,
            email,
            role=role,
            expires_at=self.clock() + timedelta(days=3650),
            **extra,
        )
        calendar_list.sync_calendar_list(self.services, account.id)
        token = self.token(account.id, email, role)
        user = User(account.id, email, {"Authorization": f"Bearer {token}"}, granted)
        user.calendar_id = self.calendar_id(user, email)
        return user

    def token(self, user_id: uuid.UUID, email: str, role: Role) -> str:
        return issue_token(
            self.services.jwt,
            subject=str(user_id),
            email=email,
            role=role.value,
            now=self.clock(),
            lifetime=timedelta(days=365),
        )

    def local_user(self, email: str, role: Role = Role.USER) -> User:
        """A calsync user without Google (for RBAC checks)."""
        with self.services.sessions.begin() as session:
            account = ensure_user(session, email, role=role)
        token = self.token(account.id, email, role)
        return User(account.id, email, {"Authorization": f"Bearer {token}"}, {})

    def calendar_id(self, user: User, google_id: str) -> uuid.UUID:
        with self.services.sessions() as session:
            found = session.scalar(
                sa.select(Calendar.id).where(
                    Calendar.user_id == user.id, Calendar.provider_calendar_id == google_id
                )
            )
        assert found is not None
        return found

    def remote(self, user: User) -> Any:
        """Google as another client of `user` sees and changes it."""
        tokens = self.control.issue_tokens(user.email)
        service = build_calendar_service(self.google.url, tokens["access_token"])
        self.remotes.append(service)
        return service.events()

    def google_event(self, user: User, google_id: str, calendar: str | None = None) -> Any:
        return (
            self.remote(user).get(calendarId=calendar or user.primary, eventId=google_id).execute()
        )

    def push(self, event_id: str | uuid.UUID) -> PushResult:
        return push_outbox(self.services, self.services.providers, uuid.UUID(str(event_id)))

    def push_all(self, *, rounds: int = 20) -> list[PushResult]:
        """Push every due event, as the sweep would, until nothing is due."""
        results: list[PushResult] = []
        for _ in range(rounds):
            with self.services.sessions() as session:
                due = outbox.due_events(session, now=self.clock())
            if not due:
                return results
            results += [self.push(event_id) for event_id in due]
        return results

    def pull(self, user: User, calendar: uuid.UUID | None = None) -> None:
        with self.services.sessions.begin() as session:
            row = session.get(Calendar, calendar or user.calendar_id)
            assert row is not None
            row.sync_lease_owner = None
            row.sync_lease_until = None
            row.last_pull_at = None
        pull.pull_calendar(self.services, calendar or user.calendar_id)  # type: ignore[arg-type]

    def upkeep(self) -> CatchUp:
        """Run the read model's upkeep after the writes, as the ``refresh_read_model``
        job does (the tests drive jobs by hand)."""
        return catch_up(self.services.sessions)

    @contextmanager
    def model_off(self) -> Iterator[None]:
        """The read model switched off (its horizon removed) while the block runs, so
        that listings expand per request as they did before it; switched on again after."""
        with self.services.sessions() as session:
            bounds = instances.horizon(session)
        assert bounds is not None, "the read model is not on"
        with self.services.sessions.begin() as session:
            session.execute(sa.delete(instance_horizon))
        try:
            yield
        finally:
            with self.services.sessions.begin() as session:
                instances.set_horizon(session, *bounds)

    def create(self, user: User, body: dict[str, Any], **headers: str) -> dict[str, Any]:
        response = self.client.post("/events", json=body, headers=user.headers | headers)
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def get(self, user: User, event_id: str) -> dict[str, Any]:
        response = self.client.get(f"/events/{event_id}", headers=user.headers)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def put(self, user: User, event_id: str, body: dict[str, Any], **params: str) -> Any:
        return self.client.put(
            f"/events/{event_id}", json=body, headers=user.headers, params=params
        )

    def google_requests(self, method: str | None = None, path: str = "") -> list[dict[str, Any]]:
        found = self.control.requests()
        return [
            r
            for r in found
            if (method is None or r.get("method") == method) and path in r.get("path", "")
        ]


def running(
    settings: Settings, google: FakeGoogle, *, pool: PoolSize | None = None, **changes: Any
) -> Iterator[EventsApp]:
    """`pool`: the database pool (default: a worker's, with pre-ping; an API process's
    is `calsync.store.db.api_pool`)."""
    clock = Clock()
    settings = dataclasses.replace(google.settings_for(settings), **changes)
    services = bootstrap(settings, clock=clock, pool=pool)
    upgrade(services.engine)
    sleeps: list[float] = []
    services.providers.close()
    services.providers = GoogleProviders(
        settings,
        services.access_tokens,
        quota_limiter(settings, sleep=sleeps.append, budget=services.budget),
        sleeps.append,
        shared_zones=functools.partial(stored_zone, services.sessions),
    )
    with TestClient(create_app(services)) as client:
        app = EventsApp(services, client, google, clock, sleeps)
        yield app
    for service in app.remotes:
        service.close()
    services.close()


def filled_month(
    request: pytest.FixtureRequest, fake_google: FakeGoogle, *, users: int, count: int, tag: str
) -> Iterator[tuple[EventsApp, list[User]]]:
    """For a fixture parametrised by mode (``embedded``, ``production``): calsync with an
    API process's pool, the read model filled, and `users` users (emails starting with
    `tag`) each with a weekly series of `count` instances from 4 March 2031 in Berlin
    (the second moved to 11 March, 15:00 UTC) and a single on 5 March, all made through
    the API."""
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    for app in running(settings, fake_google, pool=api_pool(2)):
        people = [app.connect(f"{tag}{n}-{uuid.uuid4().hex[:6]}@example.com") for n in range(users)]
        read_model.fill(app.services.sessions, app.clock())
        for n, user in enumerate(people):
            made = app.create(
                user,
                {
                    "title": f"weekly {n}",
                    "start_time": "2031-03-04T09:00:00",
                    "end_time": "2031-03-04T09:45:00",
                    "timezone": "Europe/Berlin",
                    "recurrence": [f"RRULE:FREQ=WEEKLY;COUNT={count}"],
                },
            )
            moved = app.put(
                user,
                f"{made['id']}_20310311T080000Z",
                {"start_time": "2031-03-11T15:00:00Z", "end_time": "2031-03-11T15:45:00Z"},
            )
            assert moved.status_code == 200, moved.text
            app.create(
                user,
                {
                    "title": f"single {n}",
                    "start_time": "2031-03-05T10:00:00Z",
                    "end_time": "2031-03-05T11:00:00Z",
                },
            )
        yield app, people


@pytest.fixture
def app(production_settings: Settings, fake_google: FakeGoogle) -> Iterator[EventsApp]:
    """Production mode: PostgreSQL and Redis."""
    yield from running(production_settings, fake_google)


@pytest.fixture(params=["embedded", "production"])
def any_app(request: pytest.FixtureRequest, fake_google: FakeGoogle) -> Iterator[EventsApp]:
    """Each mode: SQLite + in-process broker, PostgreSQL + Redis."""
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    yield from running(settings, fake_google)


def policy_app(
    production_settings: Settings, fake_google: FakeGoogle, policy: ConflictPolicy
) -> Iterator[EventsApp]:
    yield from running(production_settings, fake_google, conflict_policy=policy)


def committed_first(
    monkeypatch: pytest.MonkeyPatch,
    owner: object,
    name: str,
    competing: Callable[[], None],
    *,
    what: str = "the competing write",
) -> list[int]:
    """Force the worst interleaving: the first time anything calls ``owner.name``, run
    `competing` in another thread (another client, another session) to its commit, then
    go on with the real call. The returned list holds one item once `competing` ran, so
    a test can check the interleaving really happened.

    `competing`'s failures and a `competing` that does not finish within 60 s (blocked
    by what the interrupted call holds) fail the test in its own thread, naming `what`.
    """
    ran: list[int] = []
    real = getattr(owner, name)

    def run_competing() -> None:
        failures: list[BaseException] = []

        def run() -> None:
            try:
                competing()
            except BaseException as error:  # handed to the test's thread
                failures.append(error)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=60)
        assert not thread.is_alive(), f"{what} did not finish (blocked by the interrupted call?)"
        assert not failures, failures

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        if not ran:
            ran.append(1)
            run_competing()
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, interrupted)
    return ran


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """Put the logging configuration back after a test that runs `calsync serve`'s app
    factory (its `configure_logging` sets the root logger to INFO with a JSON handler,
    which left later tests of the process - `test_read_model_upkeep` - seeing INFO
    records they assert are absent)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, logger in logging.root.manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.setLevel(levels.get(name, logging.NOTSET))
