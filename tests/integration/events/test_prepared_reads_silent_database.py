"""An API process whose database does not answer at start still starts and serves its
liveness check (decision RX1).

`calsync serve`'s app factory prepares the listing before uvicorn accepts a connection
(decision HZ1). A database that refuses connections fails that at once (logged; see
`test_prepared_reads`), but one that accepts a TCP connection and never answers - a
server hung, a proxy whose backend is gone - left the factory waiting for ever: psycopg
has no connect timeout here, so uvicorn never bound its port, ``/healthz`` never
answered, and Kubernetes' startup probe (60 s) restarted the pod in a loop for as long
as the outage lasted, where the deployment promises that an outage of PostgreSQL never
restarts API pods (docs/deploy/kubernetes/api.yaml). Both databases: PostgreSQL through
a socket that never answers; SQLite embedded (no such outage: the control).
"""

from __future__ import annotations

import dataclasses
import gc
import threading

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from calsync.config import Settings
from calsync.web import asgi

pytestmark = pytest.mark.integration

#: Far above the factory's own wait (`calsync.web.warm_up.PREPARE_WAIT`); on main the
#: factory never returned. Not a speed figure: whether it returns at all.
NEVER = 45.0


def _start(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Starlette | None:
    """`asgi.app_factory` for `settings`, or None if it has not returned within `NEVER`."""
    monkeypatch.setattr(Settings, "from_env", classmethod(lambda cls, environ=None: settings))
    made: list[Starlette] = []
    starting = threading.Thread(target=lambda: made.append(asgi.app_factory()), daemon=True)
    starting.start()
    starting.join(NEVER)
    return made[0] if made else None


@pytest.mark.usefixtures("logging_restored")
@pytest.mark.parametrize("mode", ["embedded", "production"])
def test_a_process_whose_database_never_answers_starts_and_answers_healthz(
    mode: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings: Settings = request.getfixturevalue(f"{mode}_settings")
    if mode == "production":
        settings = dataclasses.replace(
            settings, database_url=request.getfixturevalue("silent_pg_url")
        )
    app = None
    try:
        app = _start(settings, monkeypatch)
        assert app is not None, "the app factory waited for a database that never answers"
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
    finally:
        gc.unfreeze()
        if app is not None:
            app.state.services.close()
