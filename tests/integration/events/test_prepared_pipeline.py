"""An API process makes its request pipeline's first-use parts before it serves (decision
IY1): the thread pool's first worker thread and, with Redis, the rate limit's
connection with its script loaded (`calsync.web.warm_up.prepare_pipeline`, run by the
app's lifespan). A process's first page paid ~2 ms of the loop's CPU more for them.

Each test starts "a new process": new services and an app on the same database. Both
databases, three users: the pages are the same bytes as the old process's, another
user's event is 404, and Redis down or silent at start leaves a process that starts
and serves all the same.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import redis.asyncio
from starlette.testclient import TestClient

from calsync.bootstrap import bootstrap
from calsync.store.db import api_pool
from calsync.token_buckets import BUCKET_SCRIPT
from calsync.web.app import create_app
from calsync.web.warm_up import prepare_pipeline
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, User, filled_month
from tests.integration.events.test_prepared_reads import pages

pytestmark = pytest.mark.integration


@pytest.fixture(params=["embedded", "production"])
def filled(
    request: pytest.FixtureRequest, fake_google: FakeGoogle
) -> Iterator[tuple[EventsApp, list[User]]]:
    """Three users with a weekly series and a single each (three pages of two)."""
    yield from filled_month(request, fake_google, users=3, count=4, tag="pipe")


def _worker_threads() -> set[threading.Thread]:
    """anyio's thread-pool threads alive now (the objects: an ended thread's id may be
    a new thread's)."""
    return {t for t in threading.enumerate() if type(t).__name__ == "WorkerThread"}


def test_a_new_process_has_its_pool_thread_and_limits_script_before_a_request(
    filled: tuple[EventsApp, list[User]], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, people = filled
    loaded: list[str] = []
    script_load = redis.asyncio.Redis.script_load

    async def recorded(self: Any, script: str) -> Any:
        loaded.append(script)
        return await script_load(self, script)

    monkeypatch.setattr(redis.asyncio.Redis, "script_load", recorded)
    services = bootstrap(app.services.settings, clock=app.clock, pool=api_pool(2))
    try:
        before = _worker_threads()
        with TestClient(create_app(services)) as client:
            # the lifespan ran; no request yet
            assert _worker_threads() - before, "no pool thread was started before serving"
            with_redis = services.settings.redis_url is not None
            assert loaded == ([BUCKET_SCRIPT] if with_redis else [])
            for user in people:
                assert pages(client, user) == pages(app.client, user)
            theirs = client.get("/events", params={"limit": "1"}, headers=people[0].headers)
            event_id = theirs.json()["events"][0]["id"]
            assert client.get(f"/events/{event_id}", headers=people[1].headers).status_code == 404
            assert client.get(f"/events/{event_id}", headers=people[0].headers).status_code == 200
    finally:
        services.close()


@pytest.fixture
def silent_redis_url() -> Iterator[str]:
    """A Redis URL whose server accepts TCP connections and never says a word."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        listener.close()


@pytest.mark.parametrize("filled", ["production"], indirect=True)
@pytest.mark.parametrize("redis_state", ["down", "silent"])
def test_a_process_whose_redis_is_down_or_silent_at_start_serves_all_the_same(
    filled: tuple[EventsApp, list[User]],
    redis_state: str,
    silent_redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, people = filled
    url = silent_redis_url if redis_state == "silent" else "redis://127.0.0.1:1/0"
    client = redis.asyncio.Redis.from_url(url)

    async def prepared() -> bool:
        try:
            return await prepare_pipeline(client, seconds=0.5)
        finally:
            await client.aclose()

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="calsync.web.warm_up"):
        assert anyio.run(prepared) is False  # logged, not raised; bounded
    assert time.monotonic() - started < 30  # on a silent Redis: it returns at all
    assert "request pipeline" in caplog.text
    if redis_state == "silent":  # the bound's own warning (redis-py gives up only at 5 s; SB4)
        assert "was not prepared within" in caplog.text
    settings = dataclasses.replace(app.services.settings, redis_url="redis://127.0.0.1:1/0")
    services = bootstrap(settings, clock=app.clock, pool=api_pool(2))
    try:
        with TestClient(create_app(services), raise_server_exceptions=False) as down:
            assert down.get("/healthz").status_code == 200
    finally:
        services.close()
    assert pages(app.client, people[1])  # the running process is untouched


def test_a_redis_that_refuses_the_credentials_is_logged_without_them(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Review SB3: a start-up whose Redis refuses its user and password (or is down)
    returns False with a warning, and neither the password nor the URL's user is in
    what is logged (the traceback included)."""
    secret = "sb-not-a-real-password"
    host = redis_url.split("://", 1)[1]
    for url in (f"redis://sb-no-such-user:{secret}@{host}", f"redis://:{secret}@127.0.0.1:1/0"):
        client = redis.asyncio.Redis.from_url(url)

        async def prepared(client: redis.asyncio.Redis = client) -> bool:
            try:
                return await prepare_pipeline(client, seconds=5)
            finally:
                await client.aclose()

        with caplog.at_level(logging.WARNING, logger="calsync.web.warm_up"):
            assert anyio.run(prepared) is False
    assert caplog.text.count("could not prepare the request pipeline") == 2
    assert secret not in caplog.text
    assert "sb-no-such-user" not in caplog.text
