"""``calsync dev``: the whole service in one process on the embedded default.

Starts the emulator (in embedded mode), migrates, runs worker threads and the scheduler
loop beside the API, and prints a banner with a ready-to-use JWT and curl lines.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack

import uvicorn

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.domain.accounts import Role
from calsync.logs import configure_logging
from calsync.runtime import scheduler_thread, worker_threads
from calsync.store.migrate import upgrade
from calsync.store.users import ensure_user
from calsync.web.app import create_app
from calsync.web.auth.tokens import issue_token

log = logging.getLogger(__name__)

DEV_ADMIN_EMAIL = "admin@calsync.local"


def run_dev(settings: Settings, *, host: str, port: int) -> None:
    """Run until interrupted; everything started here is stopped on the way out."""
    configure_logging(settings.log_level)
    with ExitStack() as stack:
        if settings.run_emulator:
            from calsync.emulator.server import EmulatorServer

            emulator = stack.enter_context(
                EmulatorServer(host="127.0.0.1", port=settings.emulator_port)
            )
            log.info("emulator listening on %s", emulator.url)
        services = bootstrap(settings)
        stack.callback(services.close)
        upgrade(services.engine)
        stack.enter_context(worker_threads(services))
        stack.enter_context(scheduler_thread(services))
        print(banner(services, host=host, port=port), flush=True)
        uvicorn.run(create_app(services), host=host, port=port, log_level="warning")


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
        "",
    ]
    return "\n".join(lines)
