"""``calsync dev``: the whole service in one process on the embedded default.

Starts the emulator (in embedded mode), migrates, runs worker threads and the scheduler
loop beside the API, and prints a banner with a ready-to-use JWT and curl lines. With the
in-process emulator, the development admin is also a Google user of the emulator whose
calendars are connected (as a Google sign-in would), so events can be created at once.
The emulator keeps its world in ``emulator-state.json`` in the state folder, beside the
database, so a restart (even after ``kill -9``) finds Google as it was left.

Both ports are bound before anything else happens: a port in use ends the command with
one line (:class:`DevStartError`) before any banner or token is printed.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta

import uvicorn
from starlette.types import ASGIApp

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.domain.accounts import Role
from calsync.emulator.persistence import StateFileError
from calsync.emulator.server import EmulatorServer
from calsync.emulator.testing import EmulatorControl
from calsync.logs import configure_logging
from calsync.runtime import scheduler_thread, worker_threads
from calsync.store import outbox, pull_queue
from calsync.store.credentials import save_tokens
from calsync.store.migrate import upgrade
from calsync.store.secrets import Secret
from calsync.store.users import ensure_user
from calsync.threaded_server import PortInUse, bind
from calsync.tracing import configure_tracing
from calsync.web.app import create_app
from calsync.web.auth.tokens import issue_token

log = logging.getLogger(__name__)

DEV_ADMIN_EMAIL = "admin@calsync.local"


EMULATOR_STATE_FILE = "emulator-state.json"


class DevStartError(Exception):
    """``calsync dev`` cannot start; the message is one line saying why."""


def run_dev(settings: Settings, *, host: str, port: int) -> None:
    """Run until interrupted; everything started here is stopped on the way out.

    Raises:
        DevStartError: a port is in use or the emulator's state file cannot be used;
            nothing was started and nothing printed.
    """
    configure_logging(settings.log_level)
    configure_tracing("calsync-dev")
    with ExitStack() as stack:
        try:
            api_socket = stack.enter_context(bind(host, port, what="the API"))
            emulator_socket = (
                stack.enter_context(bind("127.0.0.1", settings.emulator_port, what="the emulator"))
                if settings.run_emulator
                else None
            )
        except PortInUse as err:
            raise DevStartError(f"{err} (choose another port: calsync dev --help)") from None
        emulator: EmulatorServer | None = None
        if emulator_socket is not None:
            try:
                server = EmulatorServer(
                    host="127.0.0.1",
                    port=settings.emulator_port,
                    state_file=settings.state_dir / EMULATOR_STATE_FILE,
                    sock=emulator_socket,
                )
            except StateFileError as err:
                raise DevStartError(str(err)) from None
            emulator = stack.enter_context(server)
            log.info("emulator listening on %s", emulator.url)
        services = bootstrap(settings)
        stack.callback(services.close)
        upgrade(services.engine)
        if settings.is_embedded:  # a Redis broker kept its messages, and has other workers
            forget_lost_work(services)
        stack.enter_context(worker_threads(services))
        stack.enter_context(scheduler_thread(services))
        if emulator is not None:
            connect_dev_admin(services, emulator.url)
        print(banner(services, host=host, port=port), flush=True)
        _serve(create_app(services), api_socket, host=host, port=port)


def _serve(app: ASGIApp, sock: socket.socket, *, host: str, port: int) -> None:
    """Serve ``app`` on the bound ``sock`` in this thread until SIGINT or SIGTERM."""
    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    server.run(sockets=[sock])


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM end serving, and ``run_dev`` then stops everything else and
        returns. uvicorn's own version raises the signal again once it has stopped, which
        for SIGTERM ends the process before the worker threads and the emulator stop."""
        handled = (signal.SIGINT, signal.SIGTERM)
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def forget_lost_work(services: Services) -> None:
    """The in-process broker of the last run is gone with every message it held: free
    the queue slots and leases those messages kept, so that the scheduler's first sweep
    pulls the calendars that were waiting (and pushes the waiting writes) at once."""
    with services.sessions.begin() as session:
        pull_queue.release_all(session)
        outbox.release_all_events(session)


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
    if settings.uses_emulator:
        lines += [
            "Sign in another user (the emulator stands in for Google: any email, no account):",
            f"  curl -sL -b '' '{base}/auth/google?login_hint=ann@example.com'",
            f"  or open {base}/auth/google in a browser and type an email;",
            "  the answer holds that user's JWT.",
            "",
        ]
    if settings.notice_sink_dir is not None:
        lines += [
            f"Kept in {settings.state_dir.resolve()}: calsync.db, emulator-state.json",
            "  (Google), notices/ (email and webhooks, listed at GET /dev/notices);",
            "  delete them to start over.",
            "",
        ]
    return "\n".join(lines)
