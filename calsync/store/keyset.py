"""Keyset positions for newest-first or oldest-first lists: ``(instant, id)`` and the opaque
text that API cursors carry.

The text is URL-safe base64 of a two-item JSON list: the instant in UTC (ISO 8601 with
``+00:00``) and the key (an id, printable ASCII); clients never look inside it.
`decode` accepts exactly what `encode` makes, so a tampered or foreign cursor is a
`ValueError` for the route to turn into a 4xx, never a 500: nested JSON, an instant
with an offset (which may have no UTC equivalent at years 1 and 9999) or a key with
characters no id has are refused like junk.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = ["MAX_CURSOR_LENGTH", "decode", "encode"]

#: Far longer than any cursor `encode` makes (about 100 characters); a longer text is
#: refused before it is decoded.
MAX_CURSOR_LENGTH: Final = 1024
_NOT_OURS: Final = "not a cursor this API gave out"


def encode(at: datetime, key: str) -> str:
    """The cursor text of the position (`at`, `key`); `at` must be aware, `key` printable
    ASCII (ids are)."""
    raw = json.dumps([at.astimezone(UTC).isoformat(), key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(text: str) -> tuple[datetime, str]:
    """The position `encode` made `text` from, its instant in UTC. Raises `ValueError`
    for anything else."""
    if len(text) > MAX_CURSOR_LENGTH:
        raise ValueError(_NOT_OURS)
    try:
        position = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, RecursionError) as err:
        # ValueError: not base64 (binascii.Error), not UTF-8, not JSON; RecursionError:
        # JSON nested deeper than the decoder's stack
        raise ValueError(_NOT_OURS) from err
    if not (
        isinstance(position, list)
        and len(position) == 2
        and all(isinstance(part, str) for part in position)
    ):
        raise ValueError(_NOT_OURS)
    at_text, key = position
    try:
        at = datetime.fromisoformat(at_text)
    except ValueError as err:
        raise ValueError(_NOT_OURS) from err
    if at.utcoffset() != timedelta(0) or not (key and key.isascii() and key.isprintable()):
        raise ValueError(_NOT_OURS)
    return at.replace(tzinfo=UTC), key
