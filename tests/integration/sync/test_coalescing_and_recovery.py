"""Storms coalesce, dropped notifications are caught, expired cursors and channels recover.

Against the emulator with PostgreSQL and Redis. Notifications are POSTed to calsync's
webhook with the headers Google sends (or delivered by the emulator itself); pulls are
counted in the emulator's request log.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx2 as httpx
import pytest
import sqlalchemy as sa

from calsync.config import Settings
from calsync.scheduler import due_calendars
from calsync.store.tables import Calendar, Event, SyncLog, WatchChannel
from calsync.sync.channels import channel_token, renew_channels
from calsync.web.auth.tokens import issue_token
from tests.conftest import FakeGoogle
from tests.integration.sync.conftest import SyncStack, running_stack, sync_settings, wait_until
from tests.integration.sync.seed import timed

pytestmark = pytest.mark.integration
STORM = 10_000


def connected(stack: SyncStack, events: int = 3) -> str:
    stack.connect()
    stack.insert_many(stack.email, [timed(i) for i in range(events)])
    stack.services.jobs.connect_user.send(str(stack.user_id))
    stack.wait_in_sync(stack.email)
    wait_until(lambda: stack.events_channel() is not None, what="a channel")
    wait_until(lambda: _idle(stack, stack.email), what="the first pull to finish")
    return stack.email


def _idle(stack: SyncStack, google_id: str) -> bool:
    row = stack.calendar_row(google_id)
    return row.sync_queued_at is None and not row.dirty


def _headers(
    stack: SyncStack, channel: WatchChannel, number: int, state: str = "exists"
) -> dict[str, str]:
    return {
        "X-Goog-Channel-ID": str(channel.id),
        "X-Goog-Channel-Token": channel_token(
            stack.services.settings.encryption_keys, str(channel.id)
        ),
        "X-Goog-Resource-ID": channel.resource_id or "",
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": str(number),
    }


def _event_lists(stack: SyncStack, google_id: str) -> int:
    return len(
        stack.control.requests(method="GET", path=f"/calendar/v3/calendars/{google_id}/events")
    )


@pytest.fixture
def slow_stack(production_settings: Settings, fake_google: FakeGoogle) -> Iterator[SyncStack]:
    """Pulls of one calendar at least 20 s apart (production default: 5 s), so that the
    storm below, which a test client sends more slowly than Google would, fits in one
    interval even on a loaded machine."""
    settings = dataclasses.replace(
        sync_settings(production_settings, fake_google), sync_min_interval_seconds=20.0
    )
    yield from running_stack(settings, fake_google)


def test_a_storm_of_notifications_costs_at_most_three_pulls(slow_stack: SyncStack) -> None:
    stack = slow_stack
    calendar = connected(stack)
    channel = stack.events_channel()
    assert channel is not None
    stack.insert_many(calendar, [timed(100)])  # a real change to pull
    stack.control.clear_requests()

    # When 10,000 notifications for the calendar arrive within a few seconds
    def send(numbers: range) -> list[int]:
        with httpx.Client(base_url=stack.url) as client:
            return [
                client.post("/webhooks/google", headers=_headers(stack, channel, n)).status_code
                for n in numbers
            ]

    with ThreadPoolExecutor(8) as pool:
        statuses = [
            s for chunk in pool.map(send, [range(i, STORM, 8) for i in range(8)]) for s in chunk
        ]

    # Then every one was acknowledged, the change arrived, and at most 3 listings ran
    assert len(statuses) == STORM
    assert set(statuses) == {202}
    stack.wait_in_sync(calendar, timeout=60)
    wait_until(lambda: _idle(stack, calendar), timeout=60, what="the pulls to settle")
    assert 1 <= _event_lists(stack, calendar) <= 3


def test_a_forged_or_unknown_notification_does_nothing(stack: SyncStack) -> None:
    calendar = connected(stack)
    channel = stack.events_channel()
    assert channel is not None
    stack.control.clear_requests()
    forged = {**_headers(stack, channel, 1), "X-Goog-Channel-Token": "0" * 64}
    wrong_resource = {**_headers(stack, channel, 2), "X-Goog-Resource-ID": "someone-else"}
    unknown = {**_headers(stack, channel, 3), "X-Goog-Channel-ID": str(uuid.uuid4())}
    with httpx.Client(base_url=stack.url) as client:
        answers = [
            client.post("/webhooks/google", headers=h).status_code
            for h in (forged, wrong_resource, unknown)
        ]
        missing = client.post("/webhooks/google", headers={"X-Goog-Channel-ID": str(channel.id)})
    assert answers == [200, 200, 200]
    assert missing.status_code == 400
    row = stack.calendar_row(calendar)
    assert not row.dirty
    assert row.sync_queued_at is None
    assert _event_lists(stack, calendar) == 0


def test_the_safety_net_catches_dropped_notifications(stack: SyncStack) -> None:
    calendar = connected(stack)
    # Given Google drops every notification from now on
    stack.control.add_fault(kind="drop_push", count=None)
    added = stack.insert_many(calendar, [timed(50)])[0]
    assert added["id"] not in stack.local_events(calendar)
    # When the scheduler's sweep runs after the safety-net interval of a calendar with
    # a live channel (the long one: decisions Y4)
    later = stack.services.clock() + timedelta(
        seconds=stack.services.settings.poll_with_channel_seconds + 1
    )
    claimed = due_calendars(stack.services, later)
    for calendar_id in claimed:
        stack.services.jobs.sync_calendar.send(str(calendar_id))
    # Then the calendar is pulled and the change is there
    assert stack.calendar_row(calendar).id in claimed
    stack.wait_in_sync(calendar)
    # And a sweep right after finds nothing more to do
    wait_until(lambda: _idle(stack, calendar), what="idle")
    assert due_calendars(stack.services, stack.services.clock()) == []


def test_an_invalidated_sync_token_leads_to_a_full_resync_without_stale_rows(
    stack: SyncStack,
) -> None:
    calendar = connected(stack, events=5)
    stack.control.add_fault(kind="drop_push", count=None)
    google = stack.google_as()
    gone = next(iter(stack.remote_events(calendar)))
    # Given Google forgets the sync token and an event vanishes without a tombstone
    # (deleted, then the token invalidated: a full listing has no trace of it)
    google.events().delete(calendarId=calendar, eventId=gone).execute()
    stack.control.invalidate_sync_tokens(calendar)
    stack.control.clear_requests()
    # When calsync pulls
    stack.services.jobs.sync_calendar.send(str(stack.calendar_row(calendar).id))
    # Then it got 410, listed everything again, and the stale row is gone
    wait_until(lambda: gone not in stack.local_events(calendar), what="stale row removed")
    stack.wait_in_sync(calendar)
    statuses = [
        r["status"]
        for r in stack.control.requests(
            method="GET", path=f"/calendar/v3/calendars/{calendar}/events"
        )
    ]
    assert statuses[0] == 410
    assert statuses[-1] == 200
    with stack.services.sessions() as session:
        kinds = list(
            session.scalars(sa.select(SyncLog.kind).order_by(SyncLog.sync_time.desc()).limit(1))
        )
    assert kinds == ["full_sync"]


def test_a_channel_near_expiry_is_renewed_without_a_gap(stack: SyncStack) -> None:
    calendar = connected(stack)
    old = stack.events_channel()
    assert old is not None
    assert old.expires_at is not None
    # Given the channel expires within the renewal margin
    with stack.services.sessions.begin() as session:
        session.execute(
            sa.update(WatchChannel)
            .where(WatchChannel.id == old.id)
            .values(expires_at=stack.services.clock() + timedelta(hours=2))
        )
    # When the renewal runs
    report = renew_channels(stack.services)
    # Then a new channel was opened before the old one was stopped, both on Google
    assert report.renewed == 1
    assert report.failed == 0
    with stack.services.sessions() as session:
        rows = {
            r.id: r
            for r in session.scalars(sa.select(WatchChannel).where(WatchChannel.kind == "events"))
        }
    new = next(r for r in rows.values() if r.id != old.id)
    assert rows[old.id].status == "stopped"
    assert new.status == "active"
    assert new.expires_at is not None
    assert new.expires_at > old.expires_at - timedelta(days=1)
    requests = stack.control.requests(method="POST")
    watch_at = next(i for i, r in enumerate(requests) if r["path"].endswith("/events/watch"))
    stop_at = next(i for i, r in enumerate(requests) if r["path"].endswith("/channels/stop"))
    assert watch_at < stop_at
    # And changes now arrive through the new channel
    stack.insert_many(calendar, [timed(77)])
    stack.wait_in_sync(calendar)
    emulated = {c["id"]: c for c in stack.control.channels()}
    assert str(new.id) in emulated


def test_post_sync_queues_the_callers_calendars_and_logs_show_the_runs(stack: SyncStack) -> None:
    calendar = connected(stack)
    token = issue_token(
        stack.services.jwt, subject=str(stack.user_id), email=stack.email, role="user"
    )
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token}"}) as client:
        queued = client.post("/sync")
        wait_until(lambda: _idle(stack, calendar), what="the pull")
        logs = client.get("/sync/logs", params={"limit": 2})
        everything = client.get("/sync/logs", params={"limit": 200}).json()["logs"]
        paged: list[dict[str, object]] = []
        cursor = None
        while True:
            page = client.get(
                "/sync/logs", params={"limit": 1} | ({"cursor": cursor} if cursor else {})
            )
            paged += page.json()["logs"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        bad_cursor = client.get("/sync/logs", params={"cursor": "not-a-cursor"})
        other = client.get("/sync/logs", params={"user_id": str(uuid.uuid4())})
    assert queued.status_code == 202
    assert queued.json()["queued"] == [str(stack.calendar_row(calendar).id)]
    assert logs.status_code == 200
    entries = logs.json()["logs"]
    assert entries
    assert entries[0]["kind"] == "pull"
    assert entries[0]["status"] == "ok"
    assert entries[0]["api_calls"] >= 1
    # And paging one by one with the cursor yields every entry once, newest first
    assert len(everything) >= 3
    assert [e["id"] for e in paged] == [e["id"] for e in everything]
    assert bad_cursor.status_code == 422
    assert other.status_code == 404
    with stack.services.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Event)) == 3
        assert session.scalar(sa.select(Calendar.last_sync_status)) == "ok"


def test_metrics_report_calendars_without_a_live_channel(stack: SyncStack) -> None:
    connected(stack)

    def unwatched() -> float:
        with httpx.Client(base_url=stack.url) as client:
            text = client.get("/metrics").text
        line = next(
            x for x in text.splitlines() if x.startswith("calsync_calendars_without_channel ")
        )
        return float(line.split()[1])

    # Given every calendar is watched, none is reported
    assert unwatched() == 0
    # When the calendar's channel expires without renewal
    with stack.services.sessions.begin() as session:
        session.execute(
            sa.update(WatchChannel)
            .where(WatchChannel.kind == "events")
            .values(expires_at=stack.services.clock() - timedelta(minutes=1))
        )
    # Then the calendar is reported
    assert unwatched() == 1
