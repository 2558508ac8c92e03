"""The ``calsync`` command: run, migrate and operate calsync (docs/operations.md).

Each subcommand reads the settings from the environment once, builds what it needs through
:func:`calsync.bootstrap.bootstrap`, and runs. A failure the operator can fix ends the
command with one line on stderr and a non-zero status, never a traceback: configuration
problems (status 2, naming every faulty setting), an unreachable database or Redis, a
missing key file, and a stored secret that no configured key decrypts (status 1).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from calsync import __version__
from calsync.config import ConfigError, Settings, database_url_from_env
from calsync.logs import configure_logging


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``calsync`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except ConfigError as exc:
        _fail("invalid configuration: " + "; ".join(exc.problems))
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = operator_error(exc)
        if message is None:
            raise  # a bug: its traceback is what a report needs
        _fail(message)
        return 1
    return status


def operator_error(exc: BaseException) -> str | None:
    """One line saying what the operator must fix, for the failures that are theirs to
    fix (a dependency down, a key file missing, a secret no key decrypts); ``None`` for
    anything else. Never echoes a setting's value: a database URL holds a password."""
    from cryptography.fernet import InvalidToken
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import DBAPIError, OperationalError

    from calsync.store.secrets import SecretDecryptError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OperationalError | DBAPIError):
            reason = _first_line(str(current.orig)) if current.orig else type(current).__name__
            return f"cannot use the database (CALSYNC_DATABASE_URL): {reason}"
        if isinstance(current, RedisConnectionError | RedisTimeoutError):
            return f"cannot reach Redis (CALSYNC_REDIS_URL): {_first_line(str(current))}"
        if isinstance(current, SecretDecryptError | InvalidToken):
            return (
                "a stored secret decrypts under no key of CALSYNC_ENCRYPTION_KEYS: keep the"
                " key it was encrypted with in the list (newest first) and run again"
            )
        if isinstance(current, FileNotFoundError | PermissionError) and current.filename:
            return f"cannot read {current.filename}: {current.strerror}"
        if isinstance(current, ConnectionError):
            return f"cannot connect: {_first_line(str(current)) or type(current).__name__}"
        current = current.__cause__ or current.__context__
    return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _fail(message: str) -> None:
    print(f"calsync: {message}", file=sys.stderr)


def _progress(what: str) -> Callable[[int, int], None]:
    """A progress reporter that writes ``calsync: <what>: done/total`` lines to stderr."""

    def report(done: int, total: int) -> None:
        print(f"calsync: {what}: {done}/{total}", file=sys.stderr, flush=True)

    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="calsync",
        description=__doc__.splitlines()[0],
        epilog="Settings come from CALSYNC_* environment variables (docs/operations.md).",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"calsync {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    dev = commands.add_parser("dev", help="run everything in one process (embedded mode)")
    dev.add_argument("--host", default="127.0.0.1", help="address to serve the API on")
    dev.add_argument("--port", type=int, default=8000, help="the API's port")
    dev.add_argument(
        "--emulator-port",
        type=int,
        default=None,
        help="the emulator's port (default: CALSYNC_EMULATOR_PORT, else 8765)",
    )
    dev.set_defaults(run=_dev)

    serve = commands.add_parser("serve", help="serve the API and webhook receiver (uvicorn)")
    serve.add_argument(
        "--host",
        default="0.0.0.0",  # noqa: S104 - a server binds all interfaces
        help="address to listen on",
    )
    _server_arguments(serve, port=8000)
    serve.set_defaults(run=_serve)

    hooks = commands.add_parser(
        "serve-webhooks",
        help="serve only Google's push notifications (POST /webhooks/google), apart from the API",
    )
    hooks.add_argument(
        "--host",
        default="0.0.0.0",  # noqa: S104 - a server binds all interfaces
        help="address to listen on",
    )
    _server_arguments(hooks, port=8001)
    hooks.set_defaults(run=_serve_webhooks)

    worker = commands.add_parser("worker", help="run Dramatiq worker processes")
    worker.add_argument("--processes", type=int, default=2, help="worker processes")
    worker.add_argument("--threads", type=int, default=8, help="threads per worker process")
    worker.add_argument(
        "--queues", nargs="*", default=None, help="only these queues (default: all of them)"
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=9191,
        help="serve the worker processes' metrics and the pod's /readyz here when "
        "PROMETHEUS_MULTIPROC_DIR is set "
        "(0: off)",
    )
    worker.add_argument(
        "--shutdown-timeout",
        type=float,
        default=150.0,
        help="seconds in-flight jobs get to finish after SIGTERM; unfinished ones are "
        "redelivered to another worker (keep it below the pod's grace period)",
    )
    worker.set_defaults(run=_worker)

    scheduler = commands.add_parser("scheduler", help="run the periodic scheduler")
    scheduler.set_defaults(run=_scheduler)

    ready = commands.add_parser(
        "ready", help="exit 0 if the database (at head) and the broker answer, like /readyz"
    )
    ready.set_defaults(run=_ready)

    budget = commands.add_parser(
        "budget",
        help="print today's Google budget as JSON: spend by priority and the day's forecast",
    )
    budget.set_defaults(run=_budget)

    migrate = commands.add_parser("migrate", help="migrate the database to the newest schema")
    migrate.add_argument("--revision", default="head", help="the revision to migrate to")
    migrate.set_defaults(run=_migrate)

    emulator = commands.add_parser("emulator", help="run the Google Calendar API emulator")
    emulator.add_argument("--host", default="127.0.0.1", help="address to listen on")
    emulator.add_argument("--port", type=int, default=8765, help="port to listen on")
    emulator.set_defaults(run=_emulator)

    token = commands.add_parser("token", help="print a signed JWT for a user (created if new)")
    token.add_argument("--email", required=True, help="the user's email")
    token.add_argument(
        "--role",
        choices=["admin", "user"],
        default=None,
        help="set the user's role (default: a new user is a user, an existing one keeps theirs)",
    )
    token.set_defaults(run=_token)

    rotate = commands.add_parser("rotate-keys", help="re-encrypt stored secrets, newest key")
    rotate.set_defaults(run=_rotate_keys)
    return parser


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "(default" in text or action.default in (None, argparse.SUPPRESS, False):
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Subcommand parsers that show defaults in ``--help``."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def _dev(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from calsync.devserver import DevStartError, run_dev

    settings = Settings.from_env()
    if args.emulator_port is not None:
        emulator = f"http://127.0.0.1:{args.emulator_port}"
        settings = replace(
            settings,
            emulator_port=args.emulator_port,
            google_api_base=emulator if settings.is_embedded else settings.google_api_base,
            google_oauth_base=emulator if settings.is_embedded else settings.google_oauth_base,
        )
    if settings.is_embedded and args.port != 8000:
        settings = replace(settings, public_url=f"http://{args.host}:{args.port}")
    if settings.is_embedded:
        settings = replace(settings, notice_sink_dir=settings.state_dir / "notices")
    try:
        run_dev(settings, host=args.host, port=args.port)
    except DevStartError as err:
        print(f"calsync: {err}", file=sys.stderr)
        return 1
    return 0


#: Seconds an idle keep-alive connection stays open: longer than any client or proxy
#: that reuses connections keeps one idle (decision U3), so that it is always the client
#: that closes and never the server just as a request arrives.
KEEP_ALIVE_SECONDS = 75


def _server_arguments(parser: argparse.ArgumentParser, *, port: int) -> None:
    parser.add_argument("--port", type=int, default=port, help="port to listen on")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn processes")
    parser.add_argument("--backlog", type=int, default=2048, help="listen queue length")
    parser.add_argument("--no-access-log", action="store_true", help="no line per request")
    parser.add_argument(
        "--keep-alive",
        type=int,
        default=KEEP_ALIVE_SECONDS,
        metavar="SECONDS",
        help="close keep-alive connections idle this long; longer than the idle timeout of "
        "every client and proxy in front (default: %(default)s)",
    )


def _serve(args: argparse.Namespace) -> int:
    """uvicorn, which on SIGTERM stops accepting connections and gives the requests in
    flight ``timeout_graceful_shutdown`` seconds to finish before it exits.

    With ``CALSYNC_METRICS_PORT``, this process also serves ``/metrics`` on that port (the
    API processes then have none): the event metrics of every API process, merged from
    ``PROMETHEUS_MULTIPROC_DIR``, and the state metrics. ``X-Forwarded-For`` is read by
    the app, from ``CALSYNC_TRUSTED_PROXIES`` only, never by uvicorn."""
    from contextlib import ExitStack

    from calsync.runtime import prepare_metrics_dir

    settings = Settings.from_env()  # fail fast, in this process, on a bad configuration
    configure_logging(settings.log_level)
    prepare_metrics_dir()  # before uvicorn starts the processes that share it
    with ExitStack() as stack:
        if settings.metrics_port:
            stack.enter_context(_metrics_server(settings, host=args.host))
        _uvicorn("calsync.web.asgi:app_factory", args)
    return 0


def _serve_webhooks(args: argparse.Namespace) -> int:
    """The webhook intake alone (`calsync.web.webhook_app`), under uvicorn as ``serve``.

    With ``CALSYNC_METRICS_PORT`` it serves no ``/metrics``: run it with a
    ``PROMETHEUS_MULTIPROC_DIR`` of its own and scrape it as the API (docs/operations.md).
    """
    from calsync.runtime import prepare_metrics_dir

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    prepare_metrics_dir()
    _uvicorn("calsync.web.webhook_app:app_factory", args)
    return 0


def _uvicorn(factory: str, args: argparse.Namespace) -> None:
    import uvicorn

    uvicorn.run(
        factory,
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        http="httptools",  # uvicorn[standard]'s C parser and event loop, never fallbacks
        loop="uvloop",
        backlog=args.backlog,
        access_log=not args.no_access_log,
        proxy_headers=False,  # the app's CALSYNC_TRUSTED_PROXIES decides
        log_config=None,  # uvicorn's loggers propagate to calsync's JSON lines
        timeout_graceful_shutdown=20,
        timeout_keep_alive=args.keep_alive,
    )


@contextmanager
def _metrics_server(settings: Settings, *, host: str) -> Iterator[None]:
    """``/metrics`` on ``CALSYNC_METRICS_PORT`` from a thread of this process, with
    services of its own, until the block ends."""
    from calsync.bootstrap import bootstrap
    from calsync.threaded_server import ThreadedServer
    from calsync.web.app import create_metrics_app

    assert settings.metrics_port is not None
    services = bootstrap(settings)
    try:
        app = create_metrics_app(services)
        with ThreadedServer(app, host, settings.metrics_port, name="calsync-metrics"):
            yield
    finally:
        services.close()


def _worker(args: argparse.Namespace) -> int:
    """Dramatiq's CLI. On SIGTERM each worker process stops taking messages, hands back
    (requeues) the prefetched ones and lets the running jobs finish for up to
    ``--shutdown-timeout``; a job cut off then (or by SIGKILL) is not acknowledged, so the
    broker redelivers it once the process's heartbeat is gone, and its sync lease expires
    (``CALSYNC_SYNC_LEASE_SECONDS``)."""
    import os

    from dramatiq.cli import main as dramatiq_main

    from calsync.runtime import prepare_metrics_dir
    from workers.metrics_server import PORT_VARIABLE

    settings = Settings.from_env()
    # Dramatiq's main process would log its own lines (booting, process exits) as plain
    # text into the stream its worker processes write JSON to: calsync's JSON handler
    # instead, and each worker process sets its own up (workers/worker.py).
    configure_logging(settings.log_level)
    metrics_dir = prepare_metrics_dir()
    argv = [
        "--skip-logging",
        "workers.worker",
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
        "--worker-shutdown-timeout",
        str(round(args.shutdown_timeout * 1000)),
    ]
    if args.queues:
        argv += ["--queues", *args.queues]
    if metrics_dir is not None and args.metrics_port:
        os.environ[PORT_VARIABLE] = str(args.metrics_port)
        argv += ["--fork-function", "workers.metrics_server:serve"]
    sys.argv = ["dramatiq", *argv]
    return int(dramatiq_main() or 0)  # type: ignore[no-untyped-call]


def _ready(_args: argparse.Namespace) -> int:
    """The checks of ``/readyz`` from the command line (the worker pods' readiness probe)."""
    import json

    from calsync.bootstrap import bootstrap
    from calsync.web.health import readiness_checks

    services = bootstrap(Settings.from_env())
    try:
        checks = readiness_checks(services)
    finally:
        services.close()
    print(json.dumps(checks))
    return 0 if all(check == "ok" for check in checks.values()) else 1


def _budget(_args: argparse.Namespace) -> int:
    """Today's Google budget (`calsync.sync.polling.budget_report`) as JSON."""
    import json

    from calsync.bootstrap import bootstrap
    from calsync.sync.polling import budget_report

    services = bootstrap(Settings.from_env())
    try:
        print(json.dumps(budget_report(services), indent=2))
    finally:
        services.close()
    return 0


def _scheduler(_args: argparse.Namespace) -> int:
    from workers.scheduler import main as scheduler_main

    scheduler_main()
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from calsync.store.db import make_engine
    from calsync.store.migrate import upgrade

    engine = make_engine(database_url_from_env())  # needs no other setting
    with _migration_progress():
        upgrade(engine, args.revision)
    engine.dispose()
    print(f"calsync: database migrated to {args.revision}")
    return 0


@contextmanager
def _migration_progress() -> Iterator[None]:
    """Each revision as Alembic starts it, as ``calsync: migrate: Running upgrade a -> b``
    on stderr: a migration that rewrites a large table can take a while."""
    import logging

    class Steps(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return record.getMessage().startswith(("Running upgrade", "Running downgrade"))

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("calsync: migrate: %(message)s"))
    handler.addFilter(Steps())
    logger = logging.getLogger("alembic.runtime.migration")
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def _emulator(args: argparse.Namespace) -> int:
    from calsync.emulator.server import run

    run(args.host, args.port)
    return 0


def _token(args: argparse.Namespace) -> int:
    from calsync.bootstrap import bootstrap
    from calsync.domain.accounts import Role
    from calsync.store.users import ensure_user
    from calsync.web.auth.tokens import issue_token

    services = bootstrap(Settings.from_env())
    try:
        if services.settings.is_embedded:
            from calsync.store.migrate import upgrade

            upgrade(services.engine)
        with services.sessions.begin() as session:
            role = Role(args.role) if args.role else None
            user = ensure_user(session, args.email, role=role)
        print(
            issue_token(services.jwt, subject=str(user.id), email=user.email, role=user.role.value)
        )
    finally:
        services.close()
    return 0


def _rotate_keys(_args: argparse.Namespace) -> int:
    from calsync.bootstrap import bootstrap
    from calsync.store import audit
    from calsync.store.rotation import rotate_stored_secrets

    services = bootstrap(Settings.from_env())
    try:
        count = rotate_stored_secrets(
            services.sessions, services.secrets, progress=_progress("rows checked")
        )
        with services.sessions.begin() as session:
            audit.record(
                session,
                audit.AuditAction.KEYS_ROTATED,
                details={"rotated": count, "keys": len(services.settings.encryption_keys)},
            )
    finally:
        services.close()
    print(f"calsync: re-encrypted {count} stored secret(s) under the newest key")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
