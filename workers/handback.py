"""Hand back what a stopping worker process could not finish (graceful shutdown).

On SIGTERM Dramatiq stops taking messages, requeues the prefetched ones and waits up to
``--worker-shutdown-timeout`` for the running jobs. A job still running then would stay
unacknowledged until the broker notices the dead process (its heartbeat times out, and the
requeue runs only on a random share of later fetches) and its sync lease would block the
calendar until it expires. :class:`HandBack` does both hand-backs at once instead: after
the worker stopped, it requeues the messages still running and releases the sync leases
of this process, so another worker pulls those calendars right away.

The cut-off thread may still be running its job when this happens, and dies with the
process a moment later; should it finish first, its pull sees the lease gone and drops its
result (``calsync.store.pull_leases.still_held``), and jobs are idempotent anyway.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.broker import Broker, MessageProxy

log = logging.getLogger("calsync.worker")


class HandBack(dramatiq.Middleware):
    """Tracks the messages being processed; requeues those still running after shutdown
    and calls `release_leases` (which returns how many it released)."""

    def __init__(self, release_leases: Callable[[], int]) -> None:
        self._release_leases = release_leases
        self._lock = threading.Lock()
        self._running: dict[str, MessageProxy] = {}

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        with self._lock:
            self._running[message.message_id] = message

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._done(message)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self._done(message)

    def _done(self, message: MessageProxy) -> None:
        with self._lock:
            self._running.pop(message.message_id, None)

    def running(self) -> list[MessageProxy]:
        """The messages being processed now."""
        with self._lock:
            return list(self._running.values())

    def after_worker_shutdown(self, broker: Broker, worker: dramatiq.Worker) -> None:
        with self._lock:
            cut_off, self._running = list(self._running.values()), {}
        if not cut_off:
            return
        by_queue: dict[str, list[MessageProxy]] = defaultdict(list)
        for message in cut_off:
            by_queue[message.queue_name].append(message)
        for queue_name, messages in by_queue.items():
            consumer = broker.consume(queue_name)
            try:
                consumer.requeue(messages)
            finally:
                consumer.close()
        released = self._release_leases()
        log.warning(
            "stopped with %d job(s) unfinished: requeued them and released %d sync lease(s)",
            len(cut_off),
            released,
        )
