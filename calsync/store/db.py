"""Engines and sessions for PostgreSQL (psycopg 3) and SQLite, built from settings.

Nothing connects until first use. ``make_engine`` normalises ``postgresql://`` URLs to the
psycopg 3 driver and gives SQLite what concurrent worker threads need (WAL, a busy timeout,
foreign keys on).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from calsync import tracing
from calsync.store.instances import WRITTEN_KEY


def normalise_url(url: str) -> str:
    """Return ``url`` with the psycopg 3 driver named for PostgreSQL URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(database_url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    """Create (but do not connect) the engine for ``database_url``; its statements get
    client spans when tracing is on (:mod:`calsync.tracing`)."""
    url = normalise_url(database_url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, echo=echo, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = _postgres_engine(url, pool_size=pool_size, echo=echo)
    tracing.instrument_engine(engine)
    return engine


def _postgres_engine(url: str, *, pool_size: int, echo: bool) -> Engine:
    return sa.create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit (repositories return detached data),
    and that keep the read model of lists (`calsync.events.read_model`) in step with the
    ``events`` rows they write, before they commit (decisions V2)."""
    factory = sessionmaker(engine, expire_on_commit=False)
    event.listen(factory, "do_orm_execute", _note_writes)
    event.listen(factory, "after_flush", _note_flush)
    event.listen(factory, "before_commit", _refresh_read_model)
    return factory


def _note_writes(state: ORMExecuteState) -> None:
    """Flag a session that ran an INSERT, UPDATE or DELETE: only those can have left
    changes for `_refresh_read_model` (the ``COPY`` of `insert_events` flags itself)."""
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[WRITTEN_KEY] = True


def _note_flush(session: Session, _context: Any) -> None:
    """Flag a session whose unit of work flushed rows (ORM objects, not statements)."""
    session.info[WRITTEN_KEY] = True


def _refresh_read_model(session: Session) -> None:
    from calsync.events.read_model import refresh_written

    refresh_written(session)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with factory.begin() as session:
        yield session
