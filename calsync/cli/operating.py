"""The one-shot subcommands an operator runs: ``ready`` (the readiness checks),
``budget`` (today's Google budget), ``migrate`` (the schema), ``token`` (a user's JWT)
and ``rotate-keys`` (stored secrets under the newest key). Each returns its exit status
and closes the services it built."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from calsync.cli.errors import progress
from calsync.config import Settings, database_url_from_env


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``ready``, ``budget``, ``migrate``, ``token`` and ``rotate-keys`` to `commands`."""
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
            services.sessions, services.secrets, progress=progress("rows checked")
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
