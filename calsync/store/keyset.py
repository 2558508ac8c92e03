"""Keyset positions for newest-first or oldest-first lists: ``(instant, id)`` (or a unique
name) and the opaque text that API cursors carry.

The text is URL-safe base64 of a JSON list: the instant in UTC (ISO 8601 with ``+00:00``)
and the key (an id, printable ASCII), or the name alone (`encode_name`), followed by the
list's tag: a digest of the `scope` the cursor was made for (the list, whose rows it
reads and with which filters). Clients never look inside it.

`decode` accepts exactly what `encode` makes for the same scope, so a tampered cursor, a
cursor of another list, user or query (a *foreign* one) and a cursor of an older format
(a *stale* one) are a `ValueError` for the route to turn into a 4xx, never a 500 and
never a silently wrong page: nested JSON, an instant with an offset (which may have no
UTC equivalent at years 1 and 9999) or a key with characters no id has are refused like
junk. The tag is not a signature: a client that forges one only reaches a position in a
list it may read anyway.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Final

__all__ = ["MAX_CURSOR_LENGTH", "decode", "decode_name", "encode", "encode_name"]

#: Far longer than any cursor `encode` makes (about 120 characters); a longer text is
#: refused before it is decoded.
MAX_CURSOR_LENGTH: Final = 1024
#: The longest name `encode_name` takes (an email's limit).
MAX_NAME_LENGTH: Final = 320
_NOT_OURS: Final = "not a cursor this API gave out"
_FOREIGN: Final = "a cursor of another list or query"


def encode(at: datetime, key: str, *, scope: str = "") -> str:
    """The cursor text of the position (`at`, `key`) in the list `scope`; `at` must be
    aware, `key` printable ASCII (ids are)."""
    return _text([at.astimezone(UTC).isoformat(), key, _tag(scope)])


def decode(text: str, *, scope: str = "") -> tuple[datetime, str]:
    """The position `encode` made `text` from for `scope`, its instant in UTC.

    Raises:
        ValueError: for anything else, including a cursor `encode` made for another scope.
    """
    at_text, key = _parts(text, scope, size=3)
    try:
        at = datetime.fromisoformat(at_text)
    except ValueError as err:
        raise ValueError(_NOT_OURS) from err
    if at.utcoffset() != timedelta(0) or not (key and key.isascii() and key.isprintable()):
        raise ValueError(_NOT_OURS)
    return at.replace(tzinfo=UTC), key


def encode_name(name: str, *, scope: str = "") -> str:
    """The cursor text of the position `name` (a unique, printable sort key such as an
    email) in the list `scope`."""
    return _text([name, _tag(scope)])


def decode_name(text: str, *, scope: str = "") -> str:
    """The name `encode_name` made `text` from for `scope`. Raises `ValueError` otherwise."""
    (name,) = _parts(text, scope, size=2)
    if not (name and len(name) <= MAX_NAME_LENGTH and name.isprintable()):
        raise ValueError(_NOT_OURS)
    return name


def _tag(scope: str) -> str:
    return hashlib.blake2b(scope.encode(), digest_size=9).hexdigest()


def _text(position: list[str]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parts(text: str, scope: str, *, size: int) -> list[str]:
    """The position's strings, without the tag, once the tag is `scope`'s."""
    if len(text) > MAX_CURSOR_LENGTH:
        raise ValueError(_NOT_OURS)
    try:
        position: Any = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, RecursionError) as err:
        # ValueError: not base64 (binascii.Error), not UTF-8, not JSON; RecursionError:
        # JSON nested deeper than the decoder's stack
        raise ValueError(_NOT_OURS) from err
    if not (
        isinstance(position, list)
        and len(position) == size
        and all(isinstance(part, str) for part in position)
    ):
        raise ValueError(_NOT_OURS)
    if position[-1] != _tag(scope):
        raise ValueError(_FOREIGN)
    parts: list[str] = position[:-1]
    return parts
