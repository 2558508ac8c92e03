"""Pausing Python's cyclic garbage collector while the jobs that ask for it run: Dramatiq
worker middleware, switched on per actor (``pause_collector=True``) and per process.

A full listing of a calendar allocates hundreds of thousands of short-lived, acyclic
containers (the JSON of the listing, the events, the row values), freed by reference
counting; with the collector on, they trigger repeated collections that walk the
worker's growing heap, about a third of a 10,000-event pull's CPU (decisions S13). The
collector is paused while any job of the process that asked for it runs (worker threads
share the collector) and resumes with the last one, if it was running before; cycles
made meanwhile are collected then.

The collector belongs to the process, so only a process that does nothing but jobs may
pause it: every broker carries the middleware (so that actors may declare the option),
switched off; the worker process entry point switches it on (`activate`). A process that
also serves the API (``calsync dev``, whose worker threads share the API's process)
keeps it off, so the API's collector is never paused (decisions N4).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from dramatiq import Broker, Middleware

__all__ = ["OPTION", "CollectorPause", "activate", "collector_paused", "install"]

#: The actor option that asks for the pause.
OPTION: Final = "pause_collector"


class _Pause:
    """The process's one pause: held by any number of holders at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holders = 0
        self.resume = False

    def acquire(self) -> None:
        with self.lock:
            self.holders += 1
            if self.holders == 1:
                self.resume = gc.isenabled()
                gc.disable()

    def release(self) -> None:
        with self.lock:
            self.holders -= 1
            if self.holders == 0 and self.resume:
                gc.enable()


_pause = _Pause()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold the process's pause of the collector for the block (see the module
    docstring): the collector resumes when the last holder leaves, if it was on."""
    _pause.acquire()
    try:
        yield
    finally:
        _pause.release()


class CollectorPause(Middleware):
    """Holds the pause while a message of an actor with ``pause_collector=True`` is
    processed, when `active`."""

    def __init__(self, *, active: bool = False) -> None:
        self.active = active
        self._held: set[str] = set()
        self._lock = threading.Lock()

    @property
    def actor_options(self) -> set[str]:  # the options Dramatiq lets actors declare
        return {OPTION}

    def before_process_message(self, broker: Broker, message: Any) -> None:
        if not self.active:
            return
        actor = broker.get_actor(message.actor_name)
        if not actor.options.get(OPTION, False):
            return
        with self._lock:
            self._held.add(message.message_id)
        _pause.acquire()

    def after_process_message(
        self,
        broker: Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._release(message)

    def after_skip_message(self, broker: Broker, message: Any) -> None:
        self._release(message)

    def _release(self, message: Any) -> None:
        """Release what `before_process_message` took for this message, once."""
        with self._lock:
            if message.message_id not in self._held:
                return
            self._held.discard(message.message_id)
        _pause.release()


def install(broker: Broker) -> None:
    """Add a switched-off `CollectorPause` to `broker` (actors may then declare the
    option)."""
    broker.add_middleware(CollectorPause())


def activate(broker: Broker) -> None:
    """Switch on the broker's `CollectorPause`: for a process that only runs jobs.

    Raises:
        LookupError: the broker carries none (`install` was not called).
    """
    for middleware in broker.middleware:
        if isinstance(middleware, CollectorPause):
            middleware.active = True
            return
    raise LookupError("the broker has no CollectorPause middleware")
