"""``calsync dev``: the whole service in one process on the embedded default.

Starts the emulator (in embedded mode), migrates, runs worker threads and the scheduler
loop beside the API, and prints a banner with a ready-to-use JWT and curl lines. With the
in-process emulator, the development admin is also a Google user of the emulator whose
calendars are connected (as a Google sign-in would), so events can be created at once.
The emulator keeps its state in memory: each start begins with an empty Google, and the
first pull of the kept database drops what that Google no longer has.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from datetime import timedelta

import uvicorn

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.domain.accounts import Role
from calsync.emulator.server import EmulatorServer
from calsync.emulator.testing import EmulatorControl
from calsync.logs import configure_logging
from calsync.runtime import scheduler_thread, worker_threads
from calsync.store.credentials import save_tokens
from calsync.store.migrate import upgrade
from calsync.store.secrets import Secret
from calsync.store.users import ensure_user
from calsync.tracing import configure_tracing
from calsync.web.app import create_app
from calsync.web.auth.tokens import issue_token

log = logging.getLogger(__name__)

DEV_ADMIN_EMAIL = "admin@calsync.local"


def run_dev(settings: Settings, *, host: str, port: int) -> None:
    """Run until interrupted; everything started here is stopped on the way out."""
    configure_logging(settings.log_level)
    configure_tracing("calsync-dev")
    with ExitStack() as stack:
        emulator: EmulatorServer | None = None
        if settings.run_emulator:
            emulator = stack.enter_context(
                EmulatorServer(host="127.0.0.1", port=settings.emulator_port)
            )
            log.info("emulator listening on %s", emulator.url)
        services = bootstrap(settings)
        stack.callback(services.close)
        upgrade(services.engine)
        stack.enter_context(worker_threads(services))
        stack.enter_context(scheduler_thread(services))
        if emulator is not None:
            connect_dev_admin(services, emulator.url)
        print(banner(services, host=host, port=port), flush=True)
        uvicorn.run(create_app(services), host=host, port=port, log_level="warning")


def connect_dev_admin(services: Services, emulator_url: str) -> None:
    """Make the development admin a user of the emulator, store their tokens and queue the
    connection of their calendars, as the end of a Google sign-in does."""
    with EmulatorControl(emulator_url) as control:
        granted = control.create_user(DEV_ADMIN_EMAIL)
    with services.sessions.begin() as session:
        admin = ensure_user(session, DEV_ADMIN_EMAIL, role=Role.ADMIN)
        save_tokens(
            session,
            services.secrets,
            user_id=admin.id,
            access_token=Secret(granted["access_token"]),
            refresh_token=Secret(granted["refresh_token"]),
            expires_at=services.clock() + timedelta(seconds=int(granted["expires_in"])),
            scopes=granted["scope"],
        )
    services.jobs.connect_user.send(str(admin.id))


def banner(services: Services, *, host: str, port: int) -> str:
    """The start-up text: where things are and a JWT for the development admin."""
    with services.sessions.begin() as session:
        admin = ensure_user(session, DEV_ADMIN_EMAIL, role=Role.ADMIN)
    token = issue_token(services.jwt, subject=str(admin.id), email=admin.email, role="admin")
    base = f"http://{host}:{port}"
    settings = services.settings
    lines = [
        "",
        f"calsync dev is running ({settings.mode.value} mode)",
        f"  API and webhook receiver  {base}",
        f"  database                  {settings.database_url}",
        f"  Google API                {settings.google_api_base}",
        "",
        f"A JWT for {admin.email} (admin), valid {settings.jwt_lifetime_seconds // 60} minutes:",
        f"  export TOKEN={token}",
        "",
        "Try:",
        f"  curl {base}/healthz",
        f"  curl {base}/readyz",
        f'  curl -H "Authorization: Bearer $TOKEN" {base}/me',
        f'  curl -H "Authorization: Bearer $TOKEN" {base}/events',
        f'  curl -H "Authorization: Bearer $TOKEN" {base}/events \\',
        """    -H "Content-Type: application/json" \\""",
        """    -d '{"title": "Hello", "start_time": "2026-12-01T09:00:00+01:00","""
        """ "end_time": "2026-12-01T10:00:00+01:00", "timezone": "Europe/Berlin"}'""",
        "",
    ]
    return "\n".join(lines)
