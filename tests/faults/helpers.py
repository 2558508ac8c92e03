"""Helpers shared by the fault scenarios: a second Google client, the API as a client,
a fast scheduler sweep, and waiting for the system to settle after healing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx2 as httpx
import sqlalchemy as sa

from calsync.bootstrap import Services
from calsync.scheduler import due_calendars, due_pushes
from calsync.store.tables import Calendar, OutboxEntry
from calsync.store.tables import Event as EventRow
from calsync.web.auth.tokens import issue_token
from tests.faults.ledger import local_view
from tests.integration.sync.conftest import SyncStack, wait_until
from tests.integration.sync.seed import timed

#: The other Google client: a writer on alice's primary calendar, so that its edits are
#: told apart from calsync's in the emulator's request log.
EDITOR = "bob@example.com"
EVENTS = r"^/calendar/v3/calendars/[^/]+/events"


def connect_with_editor(stack: SyncStack, events: int = 5, *, timeout: float = 60.0) -> str:
    """Connect alice (events seeded by the editor), pull, open the channel; her calendar."""
    stack.connect()
    stack.control.create_user(EDITOR)
    stack.control.share(stack.email, EDITOR, "writer")
    if events:
        stack.insert_many(stack.email, [timed(i) for i in range(events)], email=EDITOR)
    stack.services.jobs.connect_user.send(str(stack.user_id))
    wait_until(lambda: stack.events_channel() is not None, timeout, "a push channel")
    stack.wait_in_sync(stack.email, timeout)
    wait_until(lambda: idle(stack, stack.email), timeout, "the first pull to end")
    return stack.email


def idle(stack: SyncStack, google_id: str) -> bool:
    row = stack.calendar_row(google_id)
    return row.sync_queued_at is None and not row.dirty and row.sync_lease_owner is None


def pending_pushes(services: Services) -> int:
    with services.sessions() as session:
        return int(
            session.scalar(
                sa.select(sa.func.count())
                .select_from(OutboxEntry)
                .where(OutboxEntry.status == "pending")
            )
            or 0
        )


def api(stack: SyncStack, *, timeout: float = 30.0) -> httpx.Client:
    """An HTTP client of calsync's API signed in as the stack's user."""
    token = issue_token(
        stack.services.jwt,
        subject=str(stack.user_id),
        email=stack.email,
        role="user",
        lifetime=timedelta(hours=2),
    )
    return httpx.Client(
        base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
    )


def body(title: str, day: int, hour: int = 10) -> dict[str, str]:
    """A timed event for the API, on day `day` of 2031-03 (1-28)."""
    return {
        "title": title,
        "start_time": f"2031-03-{day:02d}T{hour:02d}:00:00Z",
        "end_time": f"2031-03-{day:02d}T{hour:02d}:45:00Z",
    }


@dataclass
class Sweeper:
    """The scheduler's two sweeps, every `every` seconds instead of 10 and 30.

    The calendar sweep re-kicks dirty calendars whose kick was lost and calendars whose
    queue slot is older than the sync lease; the outbox sweep re-enqueues due pushes.
    `push_skew` moves the outbox sweep's "now" forward, so that retry backoffs (seconds
    up to an hour) do not make a test wait: the sweep only decides what to enqueue, the
    push runs on the real clock. Failures (the database or Redis down) are counted and
    the sweep goes on.
    """

    services: Services
    every: float = 0.5
    push_skew: timedelta = timedelta(0)
    failures: int = 0
    rounds: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def sweep_once(self) -> None:
        now = self.services.clock()
        for calendar_id in due_calendars(self.services, now):
            self.services.jobs.sync_calendar.send(str(calendar_id))
        for event_id in due_pushes(self.services.sessions, now + self.push_skew):
            self.services.jobs.push_outbox.send(str(event_id))

    def run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.sweep_once()
            except Exception:
                self.failures += 1
            self.rounds += 1

    @contextmanager
    def running(self) -> Iterator[Sweeper]:
        thread = threading.Thread(target=self.run, name="fault-sweeper", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(10)


def settle(stack: SyncStack, google_id: str, timeout: float = 60.0) -> None:
    """Wait until nothing is left to push, the calendar is idle and both sides agree."""

    def settled() -> bool:
        if pending_pushes(stack.services) or not idle(stack, google_id):
            return False
        return local_view(stack, google_id)[0] == stack.remote_events(google_id)

    wait_until(settled, timeout, f"{google_id} to settle")


def calendar_id(stack: SyncStack, google_id: str) -> str:
    with stack.services.sessions() as session:
        found = session.scalar(
            sa.select(Calendar.id).where(
                Calendar.user_id == stack.user_id, Calendar.provider_calendar_id == google_id
            )
        )
    assert found is not None
    return str(found)


def expire_push_leases(services: Services) -> int:
    """Let the push leases of a dead worker run out (2 minutes in production; moved here
    instead of waited for). Returns how many there were."""
    with services.sessions.begin() as session:
        result = session.execute(
            sa.update(EventRow)
            .where(EventRow.push_lease_until.is_not(None))
            .values(push_lease_until=None)
        )
    return int(result.rowcount)  # type: ignore[attr-defined]


def editor_inserts(stack: SyncStack, google_id: str, bodies: list[dict[str, Any]]) -> list[Any]:
    """Insert events as the other client, one request each, retrying a connection the
    emulator closed while idle (the client library retries with ``num_retries``)."""
    events = stack.google_as(EDITOR).events()
    return [events.insert(calendarId=google_id, body=one).execute(num_retries=3) for one in bodies]
