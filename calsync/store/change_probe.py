"""The intake's asynchronous probe: which calendars of a batch a change must still write.

One statement (`calsync.store.pull_queue.BEHIND_SQL`) on a psycopg connection of its own,
asynchronous and in autocommit, read on the server's event loop: in a storm every
calendar is already dirty with a pull queued, and the group commit of
`calsync.sync.notification_checks.DirtyMarks` answers without a transaction or a thread.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Collection
from typing import Any

import psycopg
import sqlalchemy as sa

from calsync.store.pull_queue import BEHIND_SQL, uuid_array_literal

__all__ = ["ChangeProbe"]

log = logging.getLogger(__name__)


class ChangeProbe:
    """Reads on the event loop which calendars of a batch still need a write.

    In a storm the calendar is already dirty with a pull queued, and recording one more
    change writes nothing (`calsync.sync.kicks.note_changes`). That check is one
    statement on a connection of its own (psycopg, asynchronous, autocommit), so the
    common case costs one round trip and no thread. Only for PostgreSQL; any failure
    answers None ("unknown") and the caller takes the transactional path, which is the
    authority.
    """

    TIMEOUT_SECONDS = 5.0

    def __init__(self) -> None:
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def behind(
        self, engine: sa.Engine, calendar_ids: Collection[uuid.UUID]
    ) -> list[uuid.UUID] | None:
        """Those of `calendar_ids` that a change must still write (not dirty, or without a
        queued pull); None when that cannot be told here (SQLite, or any failure)."""
        if engine.dialect.name != "postgresql":
            return None
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a connection serves the loop that opened it
            self.close()
            self._loop = loop
        try:
            async with asyncio.timeout(self.TIMEOUT_SECONDS):
                if self._connection is None or self._connection.closed:
                    self._connection = await psycopg.AsyncConnection.connect(
                        _conninfo(engine), autocommit=True
                    )
                cursor = await self._connection.execute(
                    BEHIND_SQL, (uuid_array_literal(calendar_ids),)
                )
                return [row[0] for row in await cursor.fetchall()]
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.info("change probe unavailable, using the transactional path: %r", exc)
            self.close()
            return None

    def close(self) -> None:
        """Drop the connection at once (usable from any thread or loop)."""
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            connection.pgconn.finish()

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            if self._loop is asyncio.get_running_loop():
                await connection.close()
            else:
                connection.pgconn.finish()


def _conninfo(engine: sa.Engine) -> str:
    """The libpq connection string of `engine` (without the driver name)."""
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)
