"""events.list's page and sync tokens: opaque base64 of compressed JSON, bound to their
calendar (a token of another calendar is refused).

A sync token carries the calendar's change number and sync epoch and when it was issued:
it is 410 ``fullSyncRequired`` once the epoch moved on (the emulator's invalidation),
after its time to live, or from another calendar. A page token carries a `Cursor`; one
that does not parse, or names another calendar, is 400. Must run under
``EmulatorState.lock``.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from calsync.emulator import errors
from calsync.emulator.event_service import EventScope


def _encode(data: Mapping[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(zlib.compress(raw)).decode().rstrip("=")


def _decode(token: str) -> dict[str, Any] | None:
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        data = json.loads(raw)
    except (binascii.Error, zlib.error, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _calendar_key(scope: EventScope) -> int:
    return zlib.crc32(scope.calendar.id.encode())


def make_sync_token(scope: EventScope, seq: int) -> str:
    """The sync token of change number `seq` of the scope's calendar, issued now."""
    return _encode(
        {
            "c": _calendar_key(scope),
            "e": scope.calendar.sync_epoch,
            "s": seq,
            "t": int(scope.now.timestamp()),
        }
    )


def read_sync_token(scope: EventScope, token: str, *, ttl_seconds: int | None) -> int:
    """The change number a sync token stands for; 410 when it is no longer valid."""
    data = _decode(token)
    if (
        data is None
        or data.get("c") != _calendar_key(scope)
        or data.get("e") != scope.calendar.sync_epoch
        or not isinstance(data.get("s"), int)
        or data["s"] > scope.log.seq
    ):
        raise errors.full_sync_required()
    issued = datetime.fromtimestamp(int(data.get("t", 0)), tz=scope.now.tzinfo)
    if ttl_seconds is not None and scope.now - issued > timedelta(seconds=ttl_seconds):
        raise errors.full_sync_required()
    return int(data["s"])


@dataclass(frozen=True)
class Cursor:
    """Where the next page of a listing starts; a page token carries it."""

    mode: str  # "changes" | "inserted" | "computed"
    position: int  # a change number (changes) or an offset (the others)
    snapshot: int
    since: int = 0


def read_cursor(scope: EventScope, token: str) -> Cursor:
    """The cursor of a page token of this calendar; 400 for any other token."""
    data = _decode(token)
    if data is None or data.get("c") != _calendar_key(scope):
        raise errors.invalid("Invalid pageToken value.", "pageToken")
    try:
        return Cursor(str(data["m"]), int(data["p"]), int(data["S"]), int(data.get("T", 0)))
    except (KeyError, TypeError, ValueError):
        raise errors.invalid("Invalid pageToken value.", "pageToken") from None


def write_cursor(scope: EventScope, cursor: Cursor) -> str:
    """The page token of `cursor` in the scope's calendar."""
    return _encode(
        {
            "c": _calendar_key(scope),
            "m": cursor.mode,
            "p": cursor.position,
            "S": cursor.snapshot,
            "T": cursor.since,
        }
    )
