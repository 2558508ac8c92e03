"""Test databases migrated to head without running every migration for every test.

A test on SQLite gets a new database file; migrating it from nothing runs all of
calsync's migrations (about 0.1 s of CPU and a synced commit each time, for some 700
tests a run). `upgrade` here starts such a file as a copy of one migrated once per test
process, then runs Alembic's upgrade on it as before (which finds it at head): the same
schema, triggers and revision as migrating it in place. The migrations themselves are
tested from nothing in tests/integration/foundation/test_migrations.py, which uses
`calsync.store.migrate` directly.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import sqlalchemy as sa

from calsync.store import migrate
from calsync.store.db import make_engine


@functools.cache
def sqlite_template() -> Path:
    """A SQLite database file migrated to head, made once per process, removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="calsync-migrated-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "calsync.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()  # the last connection checkpoints the WAL into the file
    return path


def upgrade(engine: sa.Engine) -> None:
    """Migrate the database behind `engine` to head, as `calsync.store.migrate.upgrade`;
    a SQLite file that does not exist yet is first copied from `sqlite_template`."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        if not path.exists():
            shutil.copyfile(sqlite_template(), path)
    migrate.upgrade(engine)
