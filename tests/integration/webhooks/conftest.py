"""calsync's API served by uvicorn on a thread, on PostgreSQL and Redis, with channels.

No emulator and no workers: the channel rows are stored as calsync stores them when it
opens channels, and the queued jobs stay in Redis, where the tests count them.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.queue import NAMESPACE
from calsync.store.tables import Calendar, WatchChannel
from calsync.store.users import ensure_user
from calsync.sync.channels import channel_token
from calsync.threaded_server import ThreadedServer
from calsync.web.app import create_app
from calsync.web.webhook_app import create_webhook_app

RESOURCE = "resource-of-the-calendar"


@dataclass
class Intake:
    """A served app and the rows it knows: one calendar with an events channel, the
    user's calendar-list channel, and a stopped channel."""

    services: Services
    url: str
    queue: redis.Redis
    user_id: uuid.UUID
    calendar_id: uuid.UUID
    channel_id: uuid.UUID
    list_channel_id: uuid.UUID
    stopped_channel_id: uuid.UUID
    kind: str = "api"  # or "webhooks": the app of ``calsync serve-webhooks``

    def headers(
        self, state: str = "exists", channel_id: uuid.UUID | None = None, **override: str
    ) -> dict[str, str]:
        """The headers Google sends for `channel_id` (default: the calendar's channel)."""
        channel = str(channel_id or self.channel_id)
        headers = {
            "X-Goog-Channel-ID": channel,
            "X-Goog-Channel-Token": channel_token(self.services.settings.encryption_keys, channel),
            "X-Goog-Resource-ID": RESOURCE,
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": "7",
        }
        headers.update({name.replace("_", "-"): value for name, value in override.items()})
        return headers

    def calendar(self) -> Calendar:
        with self.services.sessions() as session:
            row = session.get(Calendar, self.calendar_id)
        assert row is not None
        return row

    def messages(self, queue: str) -> list[dict[str, Any]]:
        """The messages waiting on `queue` (immediate and delayed)."""
        found = []
        for name in (queue, f"{queue}.DQ"):
            for raw in self.queue.hgetall(f"{NAMESPACE}:{name}.msgs").values():
                found.append(json.loads(raw))
        return found


def seed(services: Services) -> dict[str, uuid.UUID]:
    with services.sessions.begin() as session:
        user = ensure_user(session, f"{uuid.uuid4().hex[:8]}@example.com")
        calendar = Calendar(user_id=user.id, provider_calendar_id="primary@example.com")
        session.add(calendar)
        session.flush()
        channels = {
            "channel_id": WatchChannel(
                id=uuid.uuid4(),
                user_id=user.id,
                calendar_id=calendar.id,
                kind="events",
                resource_id=RESOURCE,
            ),
            "list_channel_id": WatchChannel(
                id=uuid.uuid4(), user_id=user.id, kind="calendar_list", resource_id=RESOURCE
            ),
            "stopped_channel_id": WatchChannel(
                id=uuid.uuid4(),
                user_id=user.id,
                calendar_id=calendar.id,
                kind="events",
                resource_id=RESOURCE,
                status="stopped",
            ),
        }
        session.add_all(channels.values())
        return {
            "user_id": user.id,
            "calendar_id": calendar.id,
            **{name: row.id for name, row in channels.items()},
        }


@pytest.fixture
def intake_settings(production_settings: Settings) -> Settings:
    return dataclasses.replace(production_settings, sync_min_interval_seconds=0.0)


@pytest.fixture(params=["api", "webhooks"])
def intake(request: pytest.FixtureRequest, intake_settings: Settings) -> Iterator[Intake]:
    """The intake of the API process, and of ``calsync serve-webhooks`` (decision U4)."""
    services = bootstrap(intake_settings)
    ids = seed(services)
    queue = redis.Redis.from_url(intake_settings.redis_url or "")
    app = create_app(services) if request.param == "api" else create_webhook_app(services)
    with ThreadedServer(app, name="calsync-intake") as server:
        yield Intake(services, server.url, queue, **ids, kind=request.param)
    queue.close()
    services.close()
