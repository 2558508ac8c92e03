"""Keeping the emulator's world in a file, so that a restart changes nothing.

``calsync dev`` runs the emulator in its own process: without this, each start began with
an empty Google, and the first pull of the kept database deleted every local event.

:class:`StateFile` writes the whole :mod:`~calsync.emulator.snapshot` atomically (a
temporary file in the same folder, fsynced, then renamed over the old one, then the
folder fsynced), so a crash or ``kill -9`` leaves either the previous or the new
document, never a torn one. :class:`Persisting` saves after every request that may
change the world and *before* its answer leaves, as Google's answer to a write means the
write is durable: a client that heard "done" finds it after a restart. Cost per write:
one copy of the world's small records, the encoding of the event versions written since
the last save (the others' texts are kept), and one file write (see docs/benchmarks.md);
a write that changed nothing (the same document) skips the disk.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calsync.emulator import snapshot
from calsync.emulator.state import EmulatorState

log = logging.getLogger(__name__)

#: Reads that change nothing durable. ``GET /o/oauth2/auth`` is not one: it consents,
#: creating the user and an authorization code.
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CHANGING_READS = ("/o/oauth2/auth", "/o/oauth2/v2/auth")


class StateFileError(Exception):
    """The state file exists but cannot be used; the message names it and says why."""


class StateFile:
    """One emulator's state, kept in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # one writer at a time, in the order of the dumps
        self._last: bytes | None = None
        self._texts = snapshot.EventTexts()

    def load_into(self, state: EmulatorState) -> bool:
        """Fill a fresh ``state`` from the file; False when there is no file yet.

        Raises:
            StateFileError: the file cannot be read or is not an emulator state. Starting
                empty instead would make calsync delete every local event on its next pull.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return False
        except OSError as err:
            raise StateFileError(f"cannot read the emulator state {self.path}: {err}") from None
        try:
            snapshot.restore(state, json.loads(raw))
        except (ValueError, snapshot.SnapshotError) as err:
            raise StateFileError(
                f"the emulator state {self.path} cannot be used ({err}); "
                "move it away to start with an empty Google"
            ) from None
        self._last = raw
        return True

    def save(self, state: EmulatorState) -> None:
        """Write ``state`` atomically unless it is what the file already holds."""
        with self._lock:
            encoded = snapshot.encode(state, self._texts)
            if encoded == self._last:
                return
            _write_atomically(self.path, encoded)
            self._last = encoded


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a power cut
    finally:
        os.close(folder)


class Persisting:
    """ASGI wrapper: after a request that may change the world, save it before the
    answer starts (or when the request ends without one, as a reset connection does)."""

    def __init__(self, app: ASGIApp, state: EmulatorState, file: StateFile) -> None:
        self.app = app
        self.state = state
        self.file = file

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _may_change(scope):
            await self.app(scope, receive, send)
            return
        saved = False

        async def saving_send(message: Message) -> None:
            nonlocal saved
            if message["type"] == "http.response.start" and not saved:
                saved = True
                await self._save()
            await send(message)

        try:
            await self.app(scope, receive, saving_send)
        finally:
            if not saved:
                await self._save()

    async def _save(self) -> None:
        await anyio.to_thread.run_sync(self.file.save, self.state)


def _may_change(scope: Scope) -> bool:
    return scope["method"] not in _READ_METHODS or scope["path"] in _CHANGING_READS
