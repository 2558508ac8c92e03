"""What an API process does once, before it serves: the reads every listing makes,
made once for nobody (decision HZ1).

A process's first month of pages paid ~20-25 ms of API CPU and ~5-8 ms of PostgreSQL's
more than after this, wherever the client's data lay: the zone names read from disk, the
page's two statements built and compiled (the first page's and the one after a cursor),
the account read compiled, the pool's first connection opened and its backend's catalog
caches filled. `prepare_reads` does that work before uvicorn accepts a connection. It
keeps nothing that data decides (no row, no page, no account): every answer is read as
before. `prepare_within` bounds how long a starting process waits for it (decision RX1).
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Final

from anyio import to_thread

from calsync.bootstrap import Services
from calsync.domain.timezones import iana_zone_names
from calsync.events import listing
from calsync.store import users
from calsync.store.db import RequestConnection, unprepared_pages

__all__ = ["PREPARE_WAIT", "prepare_pipeline", "prepare_reads", "prepare_within"]

log = logging.getLogger(__name__)

#: How long a starting API process waits for `prepare_reads`, in seconds (decision RX1):
#: it takes ~0.1 s on a database that answers; Kubernetes' startup probe gives 60 s.
PREPARE_WAIT: Final = 5.0


def prepare_within(services: Services, seconds: float = PREPARE_WAIT) -> bool:
    """`prepare_reads` in a thread of its own, waited for `seconds` at most; whether it
    finished. A database that accepts connections and never answers (a hung server, a
    proxy without its backend) kept the process from serving: psycopg connects without
    a timeout, so uvicorn never bound its port and ``/healthz``, which reads no database,
    never answered (decision RX1). The process then serves without waiting; the thread
    ends when the database answers or drops the connection (a warm-up is logged, never
    raised), and each request meanwhile does the work itself, as before HZ1."""
    worker = threading.Thread(
        target=prepare_reads, args=(services,), name="calsync-prepare-reads", daemon=True
    )
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        log.warning("the listing was not prepared within %.0f s; serving without it", seconds)
        return False
    return True


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
        with unprepared_pages():  # nobody's plans must not teach the plan cache (II2)
            listing.prepare(services.sessions, now or datetime.now(UTC))
    except Exception:  # a warm-up: serving without it is correct, only slower
        log.warning("could not prepare the listing before serving", exc_info=True)


async def prepare_pipeline() -> None:
    """What every request's pipeline uses, made once on the serving loop before it
    serves (decision IY1): the thread pool's first worker thread (anyio starts one when
    the first route hops to it; the first page paid for it on the loop).

    The rate limit's Redis connection is not opened here (IY1 did, and CI took it back,
    SB8): the limiter's client is one object per app, and a connection opened on the
    lifespan's loop was handed to requests on other loops wherever one app is served
    from several (TestClient's portals, a second server of the same app)."""
    await to_thread.run_sync(_nothing)


def _nothing() -> None:
    """The thread pool's first call (it starts the worker thread)."""
