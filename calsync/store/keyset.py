"""Keyset positions for newest-first or oldest-first lists: ``(instant, id)`` and the opaque
text that API cursors carry.

The text is URL-safe base64 of a two-item JSON list; clients never look inside it.
`decode` accepts exactly what `encode` makes, so a tampered or foreign cursor is a
`ValueError` for the route to turn into a 4xx, never a 500.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

__all__ = ["decode", "encode"]


def encode(at: datetime, key: str) -> str:
    """The cursor text of the position (`at`, `key`); `at` must be aware."""
    raw = json.dumps([at.astimezone(UTC).isoformat(), key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(text: str) -> tuple[datetime, str]:
    """The position `encode` made `text` from. Raises `ValueError` for anything else."""
    try:
        at_text, key = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        at = datetime.fromisoformat(at_text)
    except (TypeError, ValueError) as err:  # binascii and JSON errors are ValueErrors
        raise ValueError("not a cursor this API gave out") from err
    if at.tzinfo is None or not isinstance(key, str):
        raise ValueError("not a cursor this API gave out")
    return at, key
