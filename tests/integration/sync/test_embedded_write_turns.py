"""Writers of the embedded default take turns (decisions JE1, JG1).

Three users write through the API from six client threads at once (preferences, which
replan their reminders, creates and edits) while the worker threads push those writes
to Google and pull what another client edits there. On SQLite every write answers, none
fails with "database is locked", and while one transaction waits for the write lock no
other thread takes the lock more than a few times: a waiter is served after those
already waiting and at most `MAX_OVERTAKES` later comers (JG1), so its wait is bounded
by a turn of each other writer and those few - not, as with SQLite's busy
handler alone, by its luck in waking when the lock is free (main: a write waited
seconds while others, arriving later, took the lock dozens of times; the longest hold
was a fraction of that). On PostgreSQL the same mix answers every write (its row locks
queue writers in the server; unchanged).
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
import sqlalchemy as sa

from calsync.store import sqlite_turns
from calsync.store.tables import Calendar
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.channels import ensure_channels
from calsync.sync.pull import pull_calendar
from tests.integration.sync.conftest import SyncStack
from tests.sqlite_writes import WriteLockLog

pytestmark = pytest.mark.integration

EMAILS = ("ann@example.com", "ben@example.com", "cat@example.com")
CLIENTS = 6
REQUESTS = 30  # per client


def _connected(stack: SyncStack, email: str) -> Any:
    """`email` connected with 30 events at Google (a few weekly series), all pulled."""
    stack.connect(email)
    start = datetime.now(UTC).replace(microsecond=0)
    bodies = []
    for i in range(30):
        begins = start + timedelta(hours=9 * i - 24 * 20)
        body: dict[str, Any] = {
            "summary": f"{email} {i}",
            "start": {"dateTime": begins.isoformat()},
            "end": {"dateTime": (begins + timedelta(hours=1)).isoformat()},
        }
        if i % 6 == 0:
            body["recurrence"] = ["RRULE:FREQ=WEEKLY;COUNT=30"]
            body["start"]["timeZone"] = body["end"]["timeZone"] = "Europe/Paris"
        bodies.append(body)
    stack.insert_many(email, bodies, email)
    sync_calendar_list(stack.services, stack.user_id)
    with stack.services.sessions() as session:
        calendars = session.scalars(
            sa.select(Calendar.id).where(Calendar.user_id == stack.user_id)
        ).all()
    for calendar_id in calendars:
        assert pull_calendar(stack.services, calendar_id).status == "ok"
    ensure_channels(stack.services, stack.user_id)
    return stack.user_id


def _client(stack: SyncStack, users: list[Any], first: int) -> list[str]:
    """`REQUESTS` writes for the users in turn; what did not answer 2xx."""
    failed: list[str] = []
    created: dict[Any, list[str]] = {user: [] for user in users}
    # The test asserts that every write answers and how writers take turns, not how fast
    # (latency is the benchmark's, tests.perf.embedded_writes): under CI's load a
    # PostgreSQL write of this mix once took longer than httpx's default 5 s
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        for n in range(first, first + REQUESTS):
            user = users[n % len(users)]
            headers = stack.headers(user)
            if n % 3 == 0:
                body = {"reminder_minutes": [5 + n % 40]}
                answer = client.put("/me/preferences", json=body, headers=headers)
            elif n % 3 == 1 or not created[user]:
                begins = datetime.now(UTC) + timedelta(days=1 + n % 9, hours=n % 5)
                body = {
                    "title": f"api {n}",
                    "start_time": begins.isoformat(),
                    "end_time": (begins + timedelta(hours=1)).isoformat(),
                }
                answer = client.post("/events", json=body, headers=headers)
                if answer.is_success:
                    created[user].append(answer.json()["id"])
            else:
                event_id = created[user][n % len(created[user])]
                body = {"title": f"edit {n}"}
                answer = client.patch(f"/events/{event_id}", json=body, headers=headers)
            if not answer.is_success:
                failed.append(f"{answer.status_code} {answer.text[:200]}")
    return failed


def _edit_at_google(stack: SyncStack, stop: threading.Event) -> None:
    """Another client edits each user's events at Google, so the workers pull."""
    listed = {e: stack.google_as(e).events().list(calendarId=e).execute() for e in EMAILS}
    ids = {email: [item["id"] for item in listed[email]["items"]] for email in EMAILS}
    for n in itertools.count():
        if stop.wait(0.1):
            return
        email = EMAILS[n % len(EMAILS)]
        stack.google_as(email).events().patch(
            calendarId=email, eventId=ids[email][n % len(ids[email])], body={"summary": f"g{n}"}
        ).execute()


def test_concurrent_writers_take_turns_and_none_is_refused(any_stack: SyncStack) -> None:
    # Given three users, each with events pulled and push channels open
    users = [_connected(any_stack, email) for email in EMAILS]
    embedded = any_stack.services.engine.dialect.name == "sqlite"
    log = WriteLockLog()
    if embedded:
        log.attach(any_stack.services.engine)
    # When six clients write through the API while Google-side edits are pulled
    stop = threading.Event()
    editor = threading.Thread(target=_edit_at_google, args=(any_stack, stop))
    editor.start()
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(
                pool.map(lambda i: _client(any_stack, users, i * REQUESTS), range(CLIENTS))
            )
    finally:
        stop.set()
        editor.join()
        if embedded:
            log.detach(any_stack.services.engine)
    # Then every write answered 2xx
    assert [f for failed in results for f in failed] == []
    if not embedded:
        return
    # And no transaction was refused the lock
    assert log.locked_errors == []
    writes = list(log.writes)
    assert len(writes) >= CLIENTS * REQUESTS
    # And while any transaction waited, no other thread took the lock more than
    # 2 + MAX_OVERTAKES times: once if it was in line before it, MAX_OVERTAKES times if
    # it came later and was handed the turn first (JG1: later comers pass a waiter that
    # often in all), and once more when it asked in the instant between the waiter's
    # clock and its place in the line - main's worst: dozens of times (35-58, JE4)
    bound = 2 + sqlite_turns.MAX_OVERTAKES
    worst = max(writes, key=log.most_turns_of_one_thread)
    turns = log.most_turns_of_one_thread(worst)
    longest = log.longest_hold()
    slowest = max(w.waited for w in writes)
    print(f"{len(writes)} writes; longest wait {slowest * 1000:.0f} ms, longest hold "
          f"{longest * 1000:.0f} ms; one thread took the lock {turns} times in a wait")  # fmt: skip
    assert turns <= bound, (
        f"a write waited {worst.waited * 1000:.0f} ms ({worst.who}) while one thread took "
        f"the lock {turns} times; the longest hold was {longest * 1000:.0f} ms"
    )
