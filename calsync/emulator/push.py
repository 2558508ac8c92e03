"""Push delivery: a background thread that POSTs queued channel messages.

Requests only queue messages (``EmulatorState.outbox``); :class:`PushDispatcher` sends
them in order on its own thread with a short timeout, so no API request ever waits for a
receiver. Each message is tried once: the outcome (``delivered`` with the status,
``failed`` with the status or error, ``expired`` when the channel expired or was
stopped before sending) is recorded in ``state.deliveries`` (``GET /emulator/deliveries``),
never retried, as Google does not retry a failed notification indefinitely either.
The body is empty, as Google's is; everything is in the ``X-Goog-*`` headers.
"""

from __future__ import annotations

import logging
import queue
import threading

import httpx2 as httpx

from calsync.emulator.channels import PushMessage
from calsync.emulator.state import EmulatorState

logger = logging.getLogger(__name__)


class PushDispatcher:
    """Owns one daemon thread; ``start()``/``stop()`` are idempotent."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="emulator-push", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        with httpx.Client(timeout=self.state.config.push_timeout_seconds) as client:
            while not self._stopping.is_set():
                try:
                    message = self.state.outbox.get(timeout=0.1)
                except queue.Empty:
                    continue
                self._deliver(client, message)

    def _deliver(self, client: httpx.Client, message: PushMessage) -> None:
        state = self.state
        with state.lock:
            if message.generation != state.generation:
                return  # queued before a reset
            channel = state.channels.get(message.channel_id)
            live = channel is not None and channel.active_at(state.clock.now())
        if not live:
            state.record_delivery(message, outcome="expired")
            return
        headers = dict(message.headers) | {"Content-Type": "application/json; charset=UTF-8"}
        try:
            response = client.post(message.address, headers=headers, content=b"")
        except httpx.HTTPError as err:
            logger.info("push to %s failed: %s", message.address, err)
            state.record_delivery(message, outcome="failed", detail=type(err).__name__)
            return
        outcome = "delivered" if response.is_success else "failed"
        state.record_delivery(message, outcome=outcome, status=response.status_code)
