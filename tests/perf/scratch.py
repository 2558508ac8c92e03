"""A benchmark's scratch database: a SQLite file in the run's state folder, or a
PostgreSQL database made for the run and dropped after it (even when the run fails)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from calsync.store.db import make_engine

PG = os.environ.get("CALSYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


@contextmanager
def scratch_database(kind: str, state: Path) -> Iterator[str]:
    """The URL of an empty database of `kind` (``"postgresql"``, else SQLite in `state`)
    for the ``with`` block; a PostgreSQL one is dropped when the block ends."""
    if kind != "postgresql":
        yield f"sqlite:///{state / 'bench.db'}"
        return
    name = f"calsync_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(f"{PG}/postgres").execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
