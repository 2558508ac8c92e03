"""The subcommands that serve HTTP until stopped: ``dev`` (everything in one process),
``serve`` (the API and webhook receiver under uvicorn), ``serve-webhooks`` (the intake
alone) and ``emulator`` (the Google Calendar API emulator)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from calsync.config import Settings
from calsync.logs import configure_logging

#: Seconds an idle keep-alive connection stays open: longer than any client or proxy
#: that reuses connections keeps one idle (decision U3), so that it is always the client
#: that closes and never the server just as a request arrives.
KEEP_ALIVE_SECONDS = 75


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``dev``, ``serve``, ``serve-webhooks`` and ``emulator`` to `commands`."""
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
    _server_arguments(serve, port=8000)
    serve.set_defaults(run=_serve)

    hooks = commands.add_parser(
        "serve-webhooks",
        help="serve only Google's push notifications (POST /webhooks/google), apart from the API",
    )
    _server_arguments(hooks, port=8001)
    hooks.set_defaults(run=_serve_webhooks)

    emulator = commands.add_parser("emulator", help="run the Google Calendar API emulator")
    emulator.add_argument("--host", default="127.0.0.1", help="address to listen on")
    emulator.add_argument("--port", type=int, default=8765, help="port to listen on")
    emulator.set_defaults(run=_emulator)


def _server_arguments(parser: argparse.ArgumentParser, *, port: int) -> None:
    """The options ``serve`` and ``serve-webhooks`` share: uvicorn's."""
    parser.add_argument(
        "--host",
        default="0.0.0.0",  # noqa: S104 - a server binds all interfaces
        help="address to listen on",
    )
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


def _emulator(args: argparse.Namespace) -> int:
    from calsync.emulator.server import run

    run(args.host, args.port)
    return 0
