"""Run the Alembic migrations from code (``calsync migrate``, ``calsync dev``, tests)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Final

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

#: Alembic's table of applied revisions (its default name; env.py keeps it).
VERSION_TABLE: Final = "alembic_version"


class MigrationRefused(RuntimeError):
    """A migration that must not run as asked, and changed nothing: a downgrade asked of
    ``upgrade``, or data a migration will not change on its own (its message says what
    the operator must correct). The CLI prints the message as one line."""


def migrations_dir() -> Path:
    """The Alembic scripts: installed with the package (``calsync/migrations``, the
    repository's top-level ``migrations/`` in a wheel), else beside the package in a
    checkout (an editable install maps that folder without copying it)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError(f"calsync's migrations were not found in or beside {package}")


def alembic_config() -> Config:
    """An Alembic configuration pointing at calsync's migrations, no ini file needed."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` up to ``revision``. Raises
    `MigrationRefused` if the database is already past ``revision`` (Alembic's upgrade
    to an older revision silently does nothing: a downgrade is `downgrade`'s)."""
    config = alembic_config()
    with engine.begin() as connection:
        _refuse_going_back(connection, revision)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _refuse_going_back(connection: Connection, revision: str) -> None:
    """Raise `MigrationRefused` if a revision the database is at descends from
    `revision` (an unknown `revision` is left to Alembic's own error)."""
    if revision == "head":
        return
    scripts = _scripts()
    _, known = _revisions()
    for current in sorted(_current_revisions(connection)):
        if current == revision or current not in known:
            continue
        below = {script.revision for script in scripts.iterate_revisions(current, "base")}
        if revision in below:
            raise MigrationRefused(
                f"the database is at revision {current}, past {revision}: migrate only"
                " upgrades; a downgrade is Alembic's `alembic downgrade` from a checkout"
                " (docs/operations.md). Nothing was changed."
            )


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Migrate the database behind ``engine`` down to ``revision``."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def is_at_head(engine: Engine) -> bool:
    """True when the database's revision is the newest migration this code knows."""
    return schema_state(engine) == "current"


def ping(engine: Engine) -> None:
    """Run ``SELECT 1`` on a connection of `engine`: the readiness probe's "the database
    answers". Raises `sqlalchemy.exc.SQLAlchemyError` when it does not."""
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))


def schema_state(engine: Engine) -> str:
    """Where the database stands against this code's migrations.

    ``current``: at this code's head. ``ahead``: at a revision this code does not know,
    which during a rolling upgrade means a newer release already migrated it (migrations
    only add, so the older code keeps working). ``behind``: older, or not migrated at all.
    """
    heads, known = _revisions()
    with engine.connect() as connection:
        current = _current_revisions(connection)
    if current == heads:
        return "current"
    if current and not current <= known:
        return "ahead"
    return "behind"


@functools.cache
def _scripts() -> ScriptDirectory:
    """calsync's migration scripts, read once per process (they do not change)."""
    return ScriptDirectory.from_config(alembic_config())


@functools.cache
def _revisions() -> tuple[frozenset[str], frozenset[str]]:
    """This code's head revisions and every revision it knows: read once per process
    (a readiness probe asks every few seconds, and the scripts do not change)."""
    scripts = _scripts()
    known = frozenset(revision.revision for revision in scripts.walk_revisions())
    return frozenset(scripts.get_heads()), known


def _current_revisions(connection: Connection) -> set[str]:
    """The database's revisions, read from Alembic's table directly: Alembic's
    ``MigrationContext`` logs two INFO lines each time it is made, which at one probe
    every few seconds drowned the logs."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return set()
    return set(connection.scalars(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")))  # noqa: S608 - a constant
