"""A whole calsync on PostgreSQL and Redis, pointed at the emulator, reachable by push.

`SyncStack` runs the API (uvicorn on a thread, so the emulator can POST notifications to
it), Dramatiq worker threads on the Redis broker, and knows one connected user. Helpers
read both sides so tests compare the local store with what Google holds.
"""

from __future__ import annotations

import dataclasses
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from googleapiclient.http import BatchHttpRequest

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.domain.accounts import Role
from calsync.domain.models import Event, EventStatus
from calsync.emulator.testing import EmulatorControl, build_calendar_service, new_batch
from calsync.providers.google.mapping import event_from_google
from calsync.runtime import worker_threads
from calsync.store.db import make_engine
from calsync.store.events import attendees_by_event, to_event
from calsync.store.tables import Calendar, User, WatchChannel
from calsync.store.tables import Event as EventRow
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.pull import pull_calendar
from calsync.threaded_server import ThreadedServer
from calsync.web.app import create_app
from calsync.web.auth.tokens import issue_token
from tests.conftest import FakeGoogle
from tests.google_users import connect_google_user
from tests.integration.events.conftest import EventsApp
from tests.integration.events.conftest import running as running_app
from tests.migrated import upgrade

EMAIL = "alice@example.com"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    """Poll `condition` until it is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


@dataclass
class SyncStack:
    services: Services
    google: FakeGoogle
    url: str
    user_id: uuid.UUID = field(default_factory=uuid.uuid4)
    email: str = EMAIL
    _services_of: dict[str, Any] = field(default_factory=dict)

    @property
    def control(self) -> EmulatorControl:
        return self.google.control

    def connect(
        self, email: str = EMAIL, calendars: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Create the user in the emulator and in calsync with their tokens; returns the
        emulator's answer (with the calendars)."""
        account, granted = connect_google_user(
            self.services, self.control, email, calendars=calendars
        )
        self.user_id, self.email = account.id, email
        return granted

    def connect_pulled(self, email: str) -> uuid.UUID:
        """`email` connected, their calendar list stored and every calendar pulled once
        (by hand: for stacks without worker threads)."""
        self.connect(email)
        sync_calendar_list(self.services, self.user_id)
        with self.services.sessions() as session:
            calendar_ids = session.scalars(
                sa.select(Calendar.id).where(Calendar.user_id == self.user_id)
            ).all()
        for calendar_id in calendar_ids:
            assert pull_calendar(self.services, calendar_id).status == "ok"
        return self.user_id

    def calendar_id(self, user_id: uuid.UUID, google_id: str) -> uuid.UUID:
        """calsync's id of `user_id`'s calendar `google_id` (their primary: their email)."""
        with self.services.sessions() as session:
            found = session.scalar(
                sa.select(Calendar.id).where(
                    Calendar.user_id == user_id, Calendar.provider_calendar_id == google_id
                )
            )
        assert found is not None, f"{google_id} is not stored for {user_id}"
        return found

    def headers(self, user_id: uuid.UUID, role: Role = Role.USER) -> dict[str, str]:
        """Headers that authenticate as `user_id` on the API."""
        with self.services.sessions() as session:
            email = session.scalar(sa.select(User.email).where(User.id == user_id))
        token = issue_token(
            self.services.jwt, subject=str(user_id), email=str(email), role=role.value
        )
        return {"Authorization": f"Bearer {token}"}

    def google_as(self, email: str | None = None) -> Any:
        """The Google client library acting as `email` (another client, not calsync)."""
        email = email or self.email
        if email not in self._services_of:
            token = self.control.issue_tokens(email)["access_token"]
            self._services_of[email] = build_calendar_service(self.google.url, token)
        return self._services_of[email]

    def insert_many(
        self, calendar_id: str, bodies: list[dict[str, Any]], email: str | None = None
    ) -> list[dict[str, Any]]:
        """Insert events on Google in batches of 500 (as another client)."""
        service = self.google_as(email)
        created: list[dict[str, Any]] = []
        errors: list[Any] = []

        def collect(_id: str, response: Any, exception: Any) -> None:
            if exception is not None:
                errors.append(exception)
            else:
                created.append(response)

        for start in range(0, len(bodies), 500):
            batch: BatchHttpRequest = new_batch(self.google.url, collect)
            for body in bodies[start : start + 500]:
                batch.add(service.events().insert(calendarId=calendar_id, body=body))
            batch.execute()
        assert not errors, errors[:3]
        return created

    def calendar_row(self, google_id: str) -> Calendar:
        with self.services.sessions() as session:
            row = session.scalar(
                sa.select(Calendar).where(
                    Calendar.user_id == self.user_id, Calendar.provider_calendar_id == google_id
                )
            )
        assert row is not None, f"calendar {google_id} is not stored"
        return row

    def events_channel(self) -> WatchChannel | None:
        """The active push channel of an events collection, if there is one."""
        with self.services.sessions() as session:
            return session.scalar(
                sa.select(WatchChannel).where(
                    WatchChannel.kind == "events", WatchChannel.status == "active"
                )
            )

    def local_events(self, google_id: str) -> dict[str, Event]:
        """The calendar's stored events by Google id, as comparable domain values."""
        with self.services.sessions() as session:
            calendar = session.scalar(
                sa.select(Calendar).where(
                    Calendar.user_id == self.user_id, Calendar.provider_calendar_id == google_id
                )
            )
            if calendar is None:
                return {}
            rows = list(
                session.scalars(sa.select(EventRow).where(EventRow.calendar_id == calendar.id))
            )
            attendees = attendees_by_event(session, [r.id for r in rows])
            return {
                str(r.google_event_id): _comparable(to_event(r, attendees.get(r.id, ())))
                for r in rows
            }

    def remote_events(self, google_id: str, email: str | None = None) -> dict[str, Event]:
        """What Google holds: masters, singles and exceptions, cancelled ones only if they
        are exceptions (tombstones of deleted events are not content)."""
        service = self.google_as(email)
        found: dict[str, Event] = {}
        page_token = None
        while True:
            answer = (
                service.events()
                .list(
                    calendarId=google_id,
                    showDeleted=True,
                    singleEvents=False,
                    maxResults=2500,
                    pageToken=page_token,
                )
                .execute()
            )
            for item in answer.get("items", []):
                event = event_from_google(item, answer.get("timeZone", "UTC"))
                if event.status == EventStatus.CANCELLED and not event.is_exception:
                    continue
                found[item["id"]] = _comparable(event)
            page_token = answer.get("nextPageToken")
            if not page_token:
                return found

    def wait_in_sync(
        self, google_id: str, timeout: float = 20.0, email: str | None = None
    ) -> dict[str, Event]:
        """Wait until the local store equals Google's content for the calendar."""
        remote = self.remote_events(google_id, email)
        wait_until(lambda: self.local_events(google_id) == remote, timeout, f"{google_id} in sync")
        return remote


def _comparable(event: Event) -> Event:
    return dataclasses.replace(event, calsync_id=None)


def sync_settings(settings: Settings, google: FakeGoogle, **changes: Any) -> Settings:
    port = free_port()
    # The tests read the state metrics right after changing the state: no snapshot reuse.
    defaults: dict[str, Any] = {"sync_min_interval_seconds": 0.0, "state_metrics_cache_seconds": 0}
    return dataclasses.replace(
        google.settings_for(settings, public_url=f"http://127.0.0.1:{port}"),
        **(defaults | changes),
    )


def running_stack(
    settings: Settings, google: FakeGoogle, *, threads: int = 4
) -> Iterator[SyncStack]:
    """The stack with `threads` Dramatiq worker threads in this process (0: none, for
    tests that run workers elsewhere, e.g. as processes they kill)."""
    services = bootstrap(settings)
    port = int(settings.public_url.rsplit(":", 1)[1])
    server = ThreadedServer(create_app(services), port=port, name="calsync-api")
    with server, worker_threads(services, threads=threads) if threads else nullcontext():
        stack = SyncStack(services, google, server.url)
        yield stack
        for service in stack._services_of.values():
            service.close()
    services.close()


@pytest.fixture(params=["embedded", "production"])
def app(request: pytest.FixtureRequest, fake_google: FakeGoogle) -> Iterator[EventsApp]:
    """calsync on SQLite with the in-process broker, and on PostgreSQL with Redis, its
    jobs driven by hand (`EventsApp`) and its clock moved by the test."""
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    # The tests read the state metrics right after changing the state, at one clock time.
    yield from running_app(settings, fake_google, state_metrics_cache_seconds=0)


@pytest.fixture
def stack(production_settings: Settings, fake_google: FakeGoogle) -> Iterator[SyncStack]:
    """calsync on PostgreSQL + Redis with API, webhook and workers, pointed at the emulator."""
    yield from running_stack(sync_settings(production_settings, fake_google), fake_google)


def migrated(settings: Settings) -> Settings:
    """`settings` with their database migrated (the PostgreSQL test database is already;
    an embedded SQLite file is new)."""
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    return settings


@pytest.fixture(params=["embedded", "production"])
def any_stack(request: pytest.FixtureRequest, fake_google: FakeGoogle) -> Iterator[SyncStack]:
    """The whole stack (API, webhook, worker threads) on SQLite + the in-process broker,
    and on PostgreSQL + Redis."""
    settings = migrated(request.getfixturevalue(f"{request.param}_settings"))
    yield from running_stack(sync_settings(settings, fake_google), fake_google)


@pytest.fixture(params=["embedded", "production"])
def hand_stack(request: pytest.FixtureRequest, fake_google: FakeGoogle) -> Iterator[SyncStack]:
    """The stack on each database with no worker threads: the test runs the jobs' use
    cases itself, so it sees exactly each one's effect."""
    settings = migrated(request.getfixturevalue(f"{request.param}_settings"))
    yield from running_stack(sync_settings(settings, fake_google), fake_google, threads=0)


@pytest.fixture
def statements(hand_stack: SyncStack) -> Iterator[list[str]]:
    """The statements the hand stack's engine sends, one lower-case string each."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(" ".join(str(args[2]).split()).lower())

    sa.event.listen(hand_stack.services.engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(hand_stack.services.engine, "before_cursor_execute", record)
