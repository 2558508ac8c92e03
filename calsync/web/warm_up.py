"""What an API process does once, before it serves: the reads every listing makes,
made once for nobody (decision HZ1).

A process's first month of pages paid ~20-25 ms of API CPU and ~5-8 ms of PostgreSQL's
more than after this, wherever the client's data lay: the zone names read from disk, the
page's two statements built and compiled (the first page's and the one after a cursor),
the account read compiled, the pool's first connection opened and its backend's catalog
caches filled. `prepare_reads` does that work before uvicorn accepts a connection. It
keeps nothing that data decides (no row, no page, no account): every answer is read as
before.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from calsync.bootstrap import Services
from calsync.domain.timezones import iana_zone_names
from calsync.events import listing
from calsync.store import users
from calsync.store.db import RequestConnection

__all__ = ["prepare_reads"]

log = logging.getLogger(__name__)


def prepare_reads(services: Services, now: datetime | None = None) -> None:
    """Make this process's listing ready: the zone names, the account read of a request
    (for the nil UUID, which names no account) and an empty month's pages
    (`calsync.events.listing.prepare`). A failure (the database down at start) is logged
    and the process serves all the same: each request then does this work itself, as
    before."""
    try:
        iana_zone_names()
        held = RequestConnection(services.engine)
        try:
            held.first_statement(lambda c: users.account_by_id(c, uuid.UUID(int=0)))
        finally:
            held.close()
        listing.prepare(services.sessions, now or datetime.now(UTC))
    except Exception:  # a warm-up: serving without it is correct, only slower
        log.warning("could not prepare the listing before serving", exc_info=True)
