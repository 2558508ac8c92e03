"""What the hostile-input suites share: the state a refused request must leave as it was,
and the check that it did.

`snapshot` reads every table's row count, the dirty calendars and what waits in the
queue (Redis's keys in production mode, the in-process broker's queues in embedded
mode); `refused` sends a request and checks a 4xx with calsync's error shape, bounded
memory and an unchanged snapshot.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any, Final

import httpx2 as httpx
import redis
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker

from calsync.store.tables import Base
from tests.integration.events.conftest import EventsApp

#: Peak memory (bytes) one hostile request may trace, app and client together: generous,
#: but far below what an unbounded expansion or a copy per nesting level would take.
MEMORY_BOUND: Final = 64 * 1024 * 1024
GOOD: Final = {
    "title": "x",
    "start_time": "2031-03-04T10:00:00Z",
    "end_time": "2031-03-04T11:00:00Z",
}


def snapshot(app: EventsApp) -> dict[str, Any]:
    """Every table's row count, the dirty calendars, and what is queued: Redis's keys
    (queued jobs, dirty marks, channel caches) or the in-process broker's queues."""
    counts: dict[str, Any] = {}
    with app.services.sessions() as session:
        for table in Base.metadata.sorted_tables:
            counts[table.name] = session.scalar(sa.select(sa.func.count()).select_from(table))
        counts["dirty calendars"] = session.scalar(
            sa.text(
                "SELECT count(*) FROM calendars WHERE dirty = true OR sync_queued_at IS NOT NULL"
            )
        )
    broker = app.services.broker
    if isinstance(broker, StubBroker):
        counts["queued"] = {name: queue.qsize() for name, queue in broker.queues.items()}
        return counts
    client = redis.Redis.from_url(app.services.settings.redis_url or "")
    try:
        # every key but the caller's rate-limit bucket (a refused request still counts)
        counts["redis keys"] = sorted(
            key.decode() for key in client.scan_iter() if not key.startswith(b"calsync:ratelimit:")
        )
    finally:
        client.close()
    return counts


def bounded(send: Callable[[], httpx.Response]) -> tuple[httpx.Response, int]:
    """`send()`'s answer and the peak memory traced while it ran."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        response = send()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return response, peak


def refused(
    app: EventsApp,
    send: Callable[[], httpx.Response],
    status: int | tuple[int, ...],
    *,
    audited: bool = False,
) -> dict[str, Any]:
    """Send, and check: the expected 4xx with calsync's error shape, memory bounded,
    nothing stored (but, when `audited`, the one audit row of a refused sign-in).
    Returns the error object."""
    before = snapshot(app)
    if audited:
        before["audit_events"] += 1
    response, peak = bounded(send)
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, response.text[:500]
    error: dict[str, Any] = response.json()["error"]
    assert error["code"]
    assert error["message"]
    assert peak < MEMORY_BOUND, f"peak {peak / 1e6:.1f} MB"
    assert snapshot(app) == before
    return error
