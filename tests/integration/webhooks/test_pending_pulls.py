"""The intake's storm path (decisions I1-I5): pending-pull markers and leases in Redis
instead of a PostgreSQL round trip, and channels that stop being accepted.

Several users at once, through the served apps (API and ``calsync serve-webhooks``) on
PostgreSQL and Redis; channel expiry and stopping on both databases, and the embedded
mode's intake (SQLite, in-process broker) served as ``calsync dev`` serves it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx2 as httpx
import pytest
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.store.tables import Calendar, WatchChannel
from calsync.sync import pending_pulls, pull
from calsync.sync.channels import channel_token
from calsync.sync.notification_checks import ChannelCache, DirtyMarks, Intake, Notification, receive
from calsync.threaded_server import ThreadedServer
from calsync.web.app import create_app
from tests.integration.webhooks.conftest import RESOURCE, seed
from tests.integration.webhooks.conftest import Intake as Served
from tests.migrated import upgrade

pytestmark = pytest.mark.integration

WEBHOOK = "/webhooks/google"


def headers(services: Services, channel_id: uuid.UUID, state: str = "exists") -> dict[str, str]:
    channel = str(channel_id)
    return {
        "X-Goog-Channel-ID": channel,
        "X-Goog-Channel-Token": channel_token(services.settings.encryption_keys, channel),
        "X-Goog-Resource-ID": RESOURCE,
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": "9",
    }


def calendar_row(services: Services, calendar_id: uuid.UUID) -> Calendar:
    with services.sessions() as session:
        row = session.get(Calendar, calendar_id)
    assert row is not None
    return row


def sync_messages(served: Served) -> list[str]:
    return [m["args"][0] for m in served.messages("sync")]


@pytest.fixture
def users(intake: Served) -> list[dict[str, uuid.UUID]]:
    """Three users of the served intake, each with a calendar and its events channel
    (the fixture's own user first)."""
    first = {"calendar_id": intake.calendar_id, "channel_id": intake.channel_id}
    more = [seed(intake.services) for _ in range(2)]
    return [
        first,
        *({"calendar_id": u["calendar_id"], "channel_id": u["channel_id"]} for u in more),
    ]


def storm(served: Served, users: list[dict[str, uuid.UUID]], per_user: int) -> list[int]:
    """`per_user` notifications for each user's channel from 6 connections at once."""

    def send(channel_id: uuid.UUID) -> list[int]:
        with httpx.Client(base_url=served.url, timeout=20) as client:
            sent = headers(served.services, channel_id)
            return [client.post(WEBHOOK, headers=sent).status_code for _ in range(per_user // 2)]

    with ThreadPoolExecutor(6) as pool:
        chunks = pool.map(send, [u["channel_id"] for u in users for _ in range(2)])
        return [status for chunk in chunks for status in chunk]


def test_a_storm_over_several_users_leaves_markers_and_one_pull_each(
    intake: Served, users: list[dict[str, uuid.UUID]]
) -> None:
    statuses = storm(intake, users, per_user=60)

    assert statuses == [202] * 180
    calendars = sorted(str(u["calendar_id"]) for u in users)
    assert sorted(sync_messages(intake)) == calendars  # one pull each
    for user in users:
        row = calendar_row(intake.services, user["calendar_id"])
        assert row.dirty
        assert row.sync_queued_at is not None
        # PostgreSQL showed it dirty and queued: the marker says so to later batches
        marker = intake.queue.get(pending_pulls.marker_key(user["calendar_id"]))
        epoch = intake.queue.get(pending_pulls.epoch_key(user["calendar_id"]))
        assert marker is not None
        assert marker == (epoch or b"")


def test_a_pull_that_starts_makes_the_next_notification_a_write(
    intake: Served, users: list[dict[str, uuid.UUID]]
) -> None:
    """The pull replaces the epoch before it clears ``dirty``: no marker or lease taken
    before then covers a notification that arrives after it."""
    assert set(storm(intake, users, per_user=20)) == {202}
    services = intake.services
    started, untouched = users[0], users[1:]
    # the storm holds a lease on every calendar now; a pull of the first one starts. The
    # calendar is not selected, so the real pull takes the lease and drops its dirty mark
    # and slot without calling Google (`pull._not_taken`): `dirty` is now cleared.
    with services.sessions.begin() as session:
        session.execute(
            sa.update(Calendar).where(Calendar.id == started["calendar_id"]).values(selected=False)
        )
    assert pull.pull_calendar(services, started["calendar_id"]).status == "skipped"
    assert not calendar_row(services, started["calendar_id"]).dirty

    with httpx.Client(base_url=intake.url, timeout=20) as client:
        answers = [
            client.post(WEBHOOK, headers=headers(services, user["channel_id"])).status_code
            for user in users
        ]

    assert answers == [202, 202, 202]
    assert calendar_row(services, started["calendar_id"]).dirty  # written, not leased
    for user in untouched:  # still covered by their pending pulls
        assert calendar_row(services, user["calendar_id"]).dirty


def test_a_pull_that_finds_the_lease_taken_leaves_the_epoch_and_markers(
    intake: Served, users: list[dict[str, uuid.UUID]]
) -> None:
    """A pull that finds another worker's lease changes nothing: that worker's pull
    replaced the epoch before it listed, and ``dirty`` stays as it is, so the markers of
    the notifications since stay valid (no Redis write, no wait for their leases)."""
    assert set(storm(intake, users, per_user=20)) == {202}
    services = intake.services
    busy, other = users[0], users[1]
    with services.sessions.begin() as session:
        session.execute(
            sa.update(Calendar)
            .where(Calendar.id == busy["calendar_id"])
            .values(
                sync_lease_owner="another-worker:1",
                sync_lease_until=services.clock() + timedelta(minutes=5),
            )
        )
    epochs = {
        u["calendar_id"]: intake.queue.get(pending_pulls.epoch_key(u["calendar_id"])) for u in users
    }

    assert pull.pull_calendar(services, busy["calendar_id"]).status == "busy"

    assert (
        intake.queue.get(pending_pulls.epoch_key(busy["calendar_id"]))
        == epochs[busy["calendar_id"]]
    )
    assert intake.queue.get(pending_pulls.marker_key(busy["calendar_id"])) == (
        epochs[busy["calendar_id"]] or b""
    )
    assert calendar_row(services, busy["calendar_id"]).dirty
    # while a pull that drops the calendar's mark (not selected) does replace it
    with services.sessions.begin() as session:
        session.execute(
            sa.update(Calendar).where(Calendar.id == other["calendar_id"]).values(selected=False)
        )
    assert pull.pull_calendar(services, other["calendar_id"]).status == "skipped"
    assert (
        intake.queue.get(pending_pulls.epoch_key(other["calendar_id"]))
        != epochs[other["calendar_id"]]
    )


def test_without_redis_the_intake_asks_postgresql(intake_settings: Settings) -> None:
    services = bootstrap(dataclasses.replace(intake_settings, redis_url="redis://127.0.0.1:1/0"))
    try:
        ids = [seed(services)["calendar_id"] for _ in range(2)]
        marks = DirtyMarks()

        async def marked() -> list[bool]:
            try:
                return await asyncio.gather(*(marks.mark(services, c) for c in ids * 5))
            finally:
                await marks.aclose()

        asyncio.run(marked())  # the queue is down too: the slots are given back (W5)
        for calendar_id in ids:
            assert calendar_row(services, calendar_id).dirty
    finally:
        services.close()


# --- channels that stop being accepted, on both databases --------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def services(request: pytest.FixtureRequest, embedded_settings: Settings) -> Iterator[Services]:
    settings = (
        embedded_settings
        if request.param == "sqlite"
        else request.getfixturevalue("intake_settings")
    )
    built = bootstrap(settings)
    upgrade(built.engine)
    yield built
    built.close()


def test_a_stopped_channel_is_refused_within_the_cache_period(services: Services) -> None:
    users = [seed(services) for _ in range(3)]
    clock = Clock()
    cache = ChannelCache(clock=clock)

    def note(user: dict[str, uuid.UUID]) -> Notification:
        sent = headers(services, user["channel_id"])
        return Notification(
            str(user["channel_id"]), sent["X-Goog-Channel-Token"], RESOURCE, "exists"
        )

    async def receive_all() -> list[Intake]:
        marks = DirtyMarks()
        try:
            return [await receive(services, note(user), cache, marks) for user in users]
        finally:
            await marks.aclose()

    assert asyncio.run(receive_all()) == [Intake.QUEUED] * 3
    with services.sessions.begin() as session:  # as `channels.stop_channel_quietly` does
        session.execute(
            sa.update(WatchChannel)
            .where(WatchChannel.id == users[0]["channel_id"])
            .values(status="stopped")
        )
    # The bound is 5 s (decision I5): within it the row read earlier still holds ...
    clock.now += 4.5
    assert asyncio.run(receive_all()) == [Intake.COALESCED] * 3
    clock.now += 1.0  # ... past it, every process has read the row again
    assert asyncio.run(receive_all()) == [Intake.STALE, Intake.COALESCED, Intake.COALESCED]


def test_a_channel_past_its_expiration_is_stale(services: Services) -> None:
    users = [seed(services) for _ in range(2)]
    past = services.clock() - timedelta(minutes=1)
    with services.sessions.begin() as session:
        session.execute(
            sa.update(WatchChannel)
            .where(WatchChannel.id == users[0]["channel_id"])
            .values(expires_at=past)
        )
        session.execute(
            sa.update(WatchChannel)
            .where(WatchChannel.id == users[1]["channel_id"])
            .values(expires_at=services.clock() + timedelta(days=1))
        )

    async def receive_all() -> list[Intake]:
        marks = DirtyMarks()
        try:
            return [
                await receive(
                    services,
                    Notification(
                        str(user["channel_id"]),
                        headers(services, user["channel_id"])["X-Goog-Channel-Token"],
                        RESOURCE,
                        "exists",
                    ),
                    ChannelCache(),
                    marks,
                )
                for user in users
            ]
        finally:
            await marks.aclose()

    assert asyncio.run(receive_all()) == [Intake.STALE, Intake.QUEUED]
    assert not calendar_row(services, users[0]["calendar_id"]).dirty
    assert calendar_row(services, users[1]["calendar_id"]).dirty


def test_the_embedded_intake_records_several_users(embedded_settings: Settings) -> None:
    """``calsync dev``'s intake: SQLite and the in-process broker, no markers."""
    services = bootstrap(embedded_settings)
    try:
        upgrade(services.engine)
        users = [seed(services) for _ in range(3)]
        with (
            ThreadedServer(create_app(services), name="calsync-dev-intake") as server,
            httpx.Client(base_url=server.url, timeout=20) as client,
        ):
            answers = [
                client.post(WEBHOOK, headers=headers(services, user["channel_id"])).status_code
                for user in users * 3
            ]
            forged = client.post(
                WEBHOOK,
                headers={
                    **headers(services, users[0]["channel_id"]),
                    "X-Goog-Channel-Token": "x",
                },
            ).status_code
        assert answers == [202] * 9
        assert forged == 200
        for user in users:
            row = calendar_row(services, user["calendar_id"])
            assert row.dirty
            assert row.sync_queued_at is not None
        broker = services.broker
        assert isinstance(broker, StubBroker)
        queued = [json.loads(raw)["args"][0] for raw in broker.queues["sync"].queue]
        assert sorted(queued) == sorted(str(u["calendar_id"]) for u in users)
    finally:
        services.close()
