"""A storm's notification answered without awaiting anything (decision HQ1): only the
change of an accepted, live channel whose calendar a lease covers; every other
notification is answered as before, on PostgreSQL (where leases exist) with several
users, and on SQLite (where none do, so nothing is settled at once).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx2 as httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.metric_tally import Tally
from calsync.store.tables import Calendar, WatchChannel
from calsync.sync.channels import channel_token
from calsync.sync.notification_checks import (
    ChannelCache,
    DirtyMarks,
    Intake,
    Notification,
    receive,
    settled,
)
from tests.integration.webhooks.conftest import RESOURCE, seed
from tests.integration.webhooks.conftest import Intake as Served
from tests.migrated import upgrade

pytestmark = pytest.mark.integration

WEBHOOK = "/webhooks/google"


class Frozen:
    """A monotonic clock that does not move: leases and cached rows never run out."""

    def __call__(self) -> float:
        return 1000.0


@pytest.fixture(params=["postgresql", "sqlite"])
def services(request: pytest.FixtureRequest, embedded_settings: Settings) -> Iterator[Services]:
    settings = (
        request.getfixturevalue("intake_settings")
        if request.param == "postgresql"
        else embedded_settings
    )
    built = bootstrap(settings)
    upgrade(built.engine)
    yield built
    built.close()


def note(
    services: Services, channel_id: uuid.UUID, state: str = "exists", **override: str
) -> Notification:
    channel = str(channel_id)
    token = channel_token(services.settings.encryption_keys, channel)
    fields = {"token": token, "resource_id": RESOURCE, "state": state, **override}
    return Notification(channel_id=channel, **fields)


def both(
    services: Services, notes: list[Notification], cache: ChannelCache, marks: DirtyMarks
) -> list[tuple[Intake | None, Intake]]:
    """For each note, in order on one loop: `settled`'s answer once `receive` has
    answered it (and so read its channel), and `receive`'s."""

    async def run() -> list[tuple[Intake | None, Intake]]:
        answers = []
        try:
            for each in notes:
                received = await receive(services, each, cache, marks)
                answers.append((settled(services, each, cache, marks, Tally()), received))
        finally:
            await marks.aclose()  # this loop's connections (leases stay)
        return answers

    return asyncio.run(run())


def storm(
    services: Services, users: list[dict[str, uuid.UUID]], cache: ChannelCache, marks: DirtyMarks
) -> None:
    """Changes of every user's calendar until each is dirty with its pull queued and, where
    markers exist, its pending pull seen and leased."""

    async def run() -> None:
        try:
            for _ in range(4):  # a write, a probe that sets the markers, reads that lease
                notes = [note(services, u["channel_id"]) for u in users for _ in range(4)]
                await asyncio.gather(*(receive(services, n, cache, marks) for n in notes))
        finally:
            await marks.aclose()

    asyncio.run(run())


def test_only_a_leased_change_of_a_live_accepted_channel_is_settled_at_once(
    services: Services,
) -> None:
    users = [seed(services) for _ in range(3)]
    clock = Frozen()
    cache, marks = ChannelCache(clock=clock), DirtyMarks(clock=clock)
    storm(services, users, cache, marks)
    leased = services.engine.dialect.name == "postgresql"  # SQLite has no markers
    first, second, third = users
    with services.sessions.begin() as session:  # the third user's channel is stopped
        session.execute(
            sa.update(WatchChannel)
            .where(WatchChannel.id == third["channel_id"])
            .values(status="stopped")
        )
    cache = ChannelCache(clock=clock)  # read the rows again (`both` reads them)

    notes = [
        note(services, first["channel_id"]),
        note(services, second["channel_id"], "not_exists"),
        note(services, first["channel_id"], token="0" * 64),  # forged token
        note(services, second["channel_id"], resource_id="another-resource"),
        note(services, first["channel_id"], "sync"),  # the handshake
        note(services, first["list_channel_id"]),  # a calendar-list change
        note(services, third["channel_id"]),  # stopped while its calendar is leased
        note(services, uuid.uuid4()),  # unknown
    ]
    answers = both(services, notes, cache, marks)

    change = Intake.COALESCED if leased else None
    assert answers == [
        (change, Intake.COALESCED),
        (change, Intake.COALESCED),
        (None, Intake.FORGED),
        (None, Intake.FORGED),
        (None, Intake.ACKNOWLEDGED),
        (None, Intake.QUEUED),
        (None, Intake.STALE),
        (None, Intake.UNKNOWN),
    ]


def test_a_channel_past_its_expiration_is_not_settled_at_once(services: Services) -> None:
    users = [seed(services) for _ in range(2)]
    ends = services.clock() + timedelta(hours=1)
    with services.sessions.begin() as session:
        session.execute(
            sa.update(WatchChannel)
            .where(WatchChannel.id.in_([u["channel_id"] for u in users]))
            .values(expires_at=ends)
        )
    clock = Frozen()
    cache, marks = ChannelCache(clock=clock), DirtyMarks(clock=clock)
    storm(services, users, cache, marks)
    leased = services.engine.dialect.name == "postgresql"
    real_clock = services.clock

    def later() -> datetime:  # the first channel ends while rows and leases still hold
        return real_clock() + timedelta(hours=2)

    services.clock = later
    try:
        expired = both(services, [note(services, users[0]["channel_id"])], cache, marks)
    finally:
        services.clock = real_clock
    live = both(services, [note(services, users[1]["channel_id"])], cache, marks)

    assert expired == [(None, Intake.STALE)]
    assert live == [(Intake.COALESCED if leased else None, Intake.COALESCED)]
    for user in users:  # neither was written again; the stale one changed nothing
        with services.sessions() as session:
            row = session.get(Calendar, user["calendar_id"])
            assert row is not None
            assert row.dirty


def scraped(intake: Served) -> dict[str, float]:
    """The intake's counts on the served app's ``/metrics``."""
    text = httpx.get(f"{intake.url}/metrics", timeout=20).text
    wanted = {
        ("calsync_http_requests_total", "202"): "answered 202",
        ("calsync_http_request_duration_seconds_count", ""): "timed",
        ("calsync_notifications_coalesced_total", ""): "coalesced",
    }
    found = dict.fromkeys(wanted.values(), 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("route", WEBHOOK) != WEBHOOK:
                continue
            key = wanted.get((sample.name, sample.labels.get("status", "")))
            if key is not None:
                found[key] += sample.value
    return found


def test_metrics_show_every_answer_as_soon_as_they_are_read(intake: Served) -> None:
    """The intake counts in bulk (decision HQ2); ``/metrics`` adds what is pending first."""
    users = [seed(intake.services) for _ in range(2)]
    channels = [intake.channel_id, *(u["channel_id"] for u in users)]
    before = scraped(intake)

    with httpx.Client(base_url=intake.url, timeout=20) as client:
        statuses = [
            client.post(WEBHOOK, headers=intake.headers(channel_id=channel)).status_code
            for _ in range(20)
            for channel in channels
        ]
    after = scraped(intake)  # at once: no timer has to have run

    assert statuses == [202] * 60
    assert after["answered 202"] - before["answered 202"] == 60
    assert after["timed"] - before["timed"] == 60
    assert after["coalesced"] - before["coalesced"] == 60 - 3  # one pull queued each


class Moving:
    """A monotonic clock moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_leases_of_every_calendar_answered_are_renewed_together(
    intake_settings: Settings,
) -> None:
    """One lease running out renews the leases of all the calendars answered from theirs
    since (decision HQ3): they then run out together, one request for all."""
    services = bootstrap(intake_settings)
    try:
        upgrade(services.engine)
        first, *others = users = [seed(services) for _ in range(3)]
        clock = Moving()
        cache, marks = ChannelCache(clock=clock), DirtyMarks(clock=clock)
        storm(services, [first], cache, marks)  # leased until 1000.15
        clock.now = 1000.05
        storm(services, others, cache, marks)  # leased until 1000.20
        clock.now = 1000.10  # the first lease is running out, the others are not

        async def answered_later() -> list[bool]:
            try:
                for user in [*others, first]:  # the first one asks for new leases
                    assert marks.covered(services, user["calendar_id"])
                clock.now = 1000.21  # past the others' leases, within a renewed one
                for _ in range(500):  # until the renewal's answer is in
                    covered = [marks.covered(services, u["calendar_id"]) for u in users]
                    if all(covered):
                        break
                    await asyncio.sleep(0.01)
                return covered
            finally:
                await marks.aclose()

        assert asyncio.run(answered_later()) == [True, True, True]
    finally:
        services.close()
