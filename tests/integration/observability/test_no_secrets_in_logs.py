"""Secrets never reach the logs: a whole run at DEBUG, grepped for every token it used.

The run: Google sign-in through HTTP against the emulator (code exchange), the connection
of the user's calendars (listing, channels, pulls), a change on Google pushed to the
webhook and pulled, an API write pushed to Google, and an expired access token refreshed
on the way. The API runs in uvicorn (in this process, access log on), the jobs on
Dramatiq worker threads over Redis; every logger (calsync's, googleapiclient, httpx,
authlib, dramatiq, uvicorn, SQLAlchemy's statements) is captured at DEBUG twice: as raw
record text (so calsync's redaction cannot hide a leak) and as calsync's JSON lines.

Neither may contain the access tokens, the refresh token, the JWT, the OAuth client
secret, a channel token, the encryption key or the JWT signing secret; the JSON lines
(what operators keep) may not contain the one-time authorization code either.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import pytest
import sqlalchemy as sa
import uvicorn

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.logs import ContextFilter, JSONFormatter
from calsync.runtime import worker_threads
from calsync.store.tables import Event, OAuthToken, WatchChannel
from calsync.sync.channels import channel_token
from calsync.web.app import create_app
from tests.conftest import FakeGoogle
from tests.integration.sync.conftest import sync_settings, wait_until
from tests.integration.sync.seed import timed

pytestmark = pytest.mark.integration

EMAIL = "alice@example.com"
CLIENT_ID = "calsync-no-secrets"
#: Loggers that configure themselves (uvicorn) or are quiet by default, opened up for the run.
LIBRARY_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "googleapiclient",
    "httpx2",
    "httpcore2",
    "authlib",
    "dramatiq",
    "sqlalchemy.engine",
)


class RawRecords(logging.Handler):
    """Every record's text, message and exception, before any formatting or redaction."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.loggers: set[str] = set()
        self._lock_lines = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.name} {record.getMessage()}"
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + record.stack_info
        with self._lock_lines:
            self.lines.append(text)
            self.loggers.add(record.name)


@dataclass
class Capture:
    raw: RawRecords
    json: io.StringIO

    def raw_text(self) -> str:
        return "\n".join(self.raw.lines)


@pytest.fixture
def capture() -> Iterator[Capture]:
    """All logging at DEBUG into a raw handler and calsync's JSON handler, restored after."""
    root = logging.getLogger()
    raw = RawRecords()
    stream = io.StringIO()
    json_handler = logging.StreamHandler(stream)
    json_handler.setFormatter(JSONFormatter())
    json_handler.addFilter(ContextFilter())
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in LIBRARY_LOGGERS]
    propagation = [(logging.getLogger(n), logging.getLogger(n).propagate) for n in LIBRARY_LOGGERS]
    root_level = root.level
    root.addHandler(raw)
    root.addHandler(json_handler)
    root.setLevel(logging.DEBUG)
    for logger, _ in saved:
        logger.setLevel(logging.DEBUG)
        logger.propagate = True
    yield Capture(raw, stream)
    root.removeHandler(raw)
    root.removeHandler(json_handler)
    root.setLevel(root_level)
    for logger, level in saved:
        logger.setLevel(level)
    for logger, propagate in propagation:
        logger.propagate = propagate


class DebugServer:
    """uvicorn on a thread with its own logging left to the root logger (access log on)."""

    def __init__(self, app: Any, port: int) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, log_level="debug", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="calsync-api", daemon=True)

    def __enter__(self) -> DebugServer:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=10, what="uvicorn to listen")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class Run:
    services: Services
    google: FakeGoogle
    url: str
    client: httpx.Client
    running: contextlib.ExitStack
    used: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        """Stop the server and the workers (their last lines are logged by then)."""
        self.running.close()

    def remember(self, name: str, value: str | None) -> None:
        assert value, f"{name} is empty"
        self.used[name] = value


@pytest.fixture
def run(capture: Capture, production_settings: Settings, fake_google: FakeGoogle) -> Iterator[Run]:
    client_secret = secrets.token_urlsafe(24)
    fake_google.control.configure(clients={CLIENT_ID: client_secret})
    settings = dataclasses.replace(
        sync_settings(production_settings, fake_google),
        google_client_id=CLIENT_ID,
        google_client_secret=client_secret,
    )
    services = bootstrap(settings)
    port = int(settings.public_url.rsplit(":", 1)[1])
    with contextlib.ExitStack() as running:
        running.enter_context(DebugServer(create_app(services), port))
        running.enter_context(worker_threads(services, threads=4))
        client = running.enter_context(httpx.Client(base_url=settings.public_url, timeout=30))
        used = Run(services, fake_google, settings.public_url, client, running)
        used.remember("client secret", client_secret)
        used.remember("encryption key", settings.encryption_keys[0])
        used.remember("JWT signing secret", settings.jwt_secret)
        yield used
    services.close()


def sign_in(run: Run) -> str:
    """The OAuth dance through HTTP; returns calsync's JWT."""
    start = run.client.get("/auth/google", params={"login_hint": EMAIL})
    assert start.status_code == 302, start.text
    at_google = httpx.get(start.headers["location"], follow_redirects=False)
    assert at_google.is_redirect, at_google.text
    back = urlsplit(at_google.headers["location"])
    run.remember("authorization code", parse_qs(back.query)["code"][0])
    answer = run.client.get(f"{back.path}?{back.query}")
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    run.remember("JWT", token)
    return token


def stored_tokens(run: Run) -> tuple[str, str]:
    with run.services.sessions() as session:
        row = session.scalar(sa.select(OAuthToken))
    assert row is not None
    assert row.refresh_token_encrypted is not None
    box = run.services.secrets
    return box.decrypt(row.access_token_encrypted), box.decrypt(row.refresh_token_encrypted)


def channel_tokens(run: Run) -> list[str]:
    with run.services.sessions() as session:
        ids = session.scalars(sa.select(WatchChannel.id)).all()
    keys = run.services.settings.encryption_keys
    return [channel_token(keys, str(channel_id)) for channel_id in ids]


def sync_state(run: Run, event_id: str) -> str | None:
    with run.services.sessions() as session:
        row = session.get(Event, uuid.UUID(event_id))
    return row.sync_state if row is not None else None


def pulled(run: Run, google_id: str) -> bool:
    with run.services.sessions() as session:
        found = session.scalar(sa.select(Event.id).where(Event.google_event_id == google_id))
    return found is not None


def test_a_whole_run_at_debug_logs_none_of_the_secrets_it_used(run: Run, capture: Capture) -> None:
    # Given a user signed in with Google, whose calendars calsync connected
    jwt = sign_in(run)
    access, refresh = stored_tokens(run)
    run.remember("access token", access)
    run.remember("refresh token", refresh)
    wait_until(lambda: channel_tokens(run), timeout=30, what="the calendar's push channel")
    for number, token in enumerate(channel_tokens(run)):
        run.remember(f"channel token {number}", token)
    control = run.google.control

    # When a change on Google comes in through the webhook and is pulled
    other = control.issue_tokens(EMAIL)["access_token"]
    run.remember("another client's access token", other)
    created = httpx.post(
        f"{run.google.url}/calendar/v3/calendars/{EMAIL}/events",
        json=timed(1),
        headers={"Authorization": f"Bearer {other}"},
    ).json()
    wait_until(lambda: pulled(run, created["id"]), timeout=30, what="the pulled change")

    # And an API write goes to Google, the access token expiring on the way
    control.add_fault(kind="expire_token", count=1, path="/events")
    headers = {"Authorization": f"Bearer {jwt}"}
    body = {
        "title": "Board meeting",
        "start_time": "2031-03-04T10:00:00",
        "end_time": "2031-03-04T11:00:00",
        "timezone": "Europe/Berlin",
    }
    answer = run.client.post("/events", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    event_id = answer.json()["id"]
    wait_until(lambda: sync_state(run, event_id) == "synced", timeout=30, what="the push")
    refreshed, _ = stored_tokens(run)
    assert refreshed != access, "the expired access token was refreshed"
    run.remember("refreshed access token", refreshed)
    run.stop()

    # Then the logs saw the whole run at DEBUG, libraries included...
    loggers = capture.raw.loggers
    for expected in ("uvicorn.access", "dramatiq", "googleapiclient", "sqlalchemy.engine"):
        assert any(name.startswith(expected) for name in loggers), (expected, sorted(loggers))
    assert any(name.startswith("calsync") for name in loggers), sorted(loggers)
    raw = capture.raw_text()
    lines = capture.json.getvalue()
    assert "/auth/google/callback" in raw
    assert "/webhooks/google" in raw
    # ...and none of the secrets it used: not in the raw records, not in the JSON lines
    for name, secret in run.used.items():
        if name != "authorization code":  # in uvicorn's raw access line; redacted below
            assert secret not in raw, f"the {name} is in the raw log records"
        assert secret not in lines, f"the {name} is in calsync's JSON log lines"
