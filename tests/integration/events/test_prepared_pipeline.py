"""An API process starts its thread pool's first worker thread before it serves
(decision IY1; `calsync.web.warm_up.prepare_pipeline`, run by the app's lifespan).

Each test starts "a new process": new services and an app on the same database. Both
databases, three users: the pages are the same bytes as the old process's, another
user's event is 404.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from calsync.bootstrap import bootstrap
from calsync.store.db import api_pool
from calsync.web.app import create_app
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


def test_a_new_process_has_its_pool_thread_before_a_request(
    filled: tuple[EventsApp, list[User]],
) -> None:
    app, people = filled
    services = bootstrap(app.services.settings, clock=app.clock, pool=api_pool(2))
    try:
        before = _worker_threads()
        with TestClient(create_app(services)) as client:
            # the lifespan ran; no request yet
            assert _worker_threads() - before, "no pool thread was started before serving"
            for user in people:
                assert pages(client, user) == pages(app.client, user)
            theirs = client.get("/events", params={"limit": "1"}, headers=people[0].headers)
            event_id = theirs.json()["events"][0]["id"]
            assert client.get(f"/events/{event_id}", headers=people[1].headers).status_code == 404
            assert client.get(f"/events/{event_id}", headers=people[0].headers).status_code == 200
    finally:
        services.close()
