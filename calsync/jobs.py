"""Dramatiq actors: thin adapters from a message to a use case.

A message carries ids and timestamps, never objects; the actor reloads state, so a stale or
repeated message is harmless (Dramatiq delivers at least once). Actors are declared on the
broker of a :class:`~calsync.bootstrap.Services` by :func:`declare_jobs`, not at import
time, so that tests and processes each get their own broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import dramatiq

from calsync.queue import Queue
from calsync.store.tables import QueueHeartbeat
from calsync.store.upsert import upsert

if TYPE_CHECKING:
    from calsync.bootstrap import Services


@dataclass(frozen=True)
class Jobs:
    """The actors of one broker; call ``.send(...)`` on them to enqueue."""

    heartbeat: dramatiq.Actor[..., None]


def declare_jobs(services: Services) -> Jobs:
    """Declare calsync's actors on ``services.broker`` and return them."""

    def heartbeat(sent_at: str) -> None:
        """Record that a heartbeat sent at ``sent_at`` went all the way through a worker."""
        with services.sessions.begin() as session:
            upsert(
                session,
                QueueHeartbeat.__table__,  # type: ignore[arg-type]
                {
                    "name": "queue",
                    "sent_at": datetime.fromisoformat(sent_at),
                    "processed_at": services.clock(),
                    "processed_by": services.process_name,
                },
                key=["name"],
            )

    return Jobs(
        heartbeat=_actor(services, heartbeat, queue=Queue.MAINTENANCE, max_retries=0),
    )


def _actor(
    services: Services, fn: Any, *, queue: Queue, priority: int = 0, **options: Any
) -> dramatiq.Actor[..., Any]:
    return dramatiq.Actor(
        fn,
        broker=services.broker,
        actor_name=fn.__name__,
        queue_name=queue.value,
        priority=priority,
        options=options,
    )
