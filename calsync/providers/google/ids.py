"""Google event ids that calsync chooses itself.

Google lets a client pick an event's id on insert: 5 to 1024 characters from base32hex
(`a`-`v` and `0`-`9`, RFC 4648 section 7, lower case). calsync uses the base32hex of its
own event UUID (16 bytes -> 26 characters, no padding), so a retried insert hits the same
id and gets 409 instead of creating a duplicate, and the local id can be read back from
the Google id. See https://developers.google.com/calendar/api/v3/reference/events#id.
The rule itself is the domain's (`calsync.domain.event_ids`, decision HE3), which the
write use cases call without importing provider code; this module is Google's view of it.
"""

from __future__ import annotations

import base64
import re
import uuid
from typing import Final

from calsync.domain.event_ids import client_event_id

__all__ = ["google_event_id", "is_valid_client_event_id", "local_id_from_google_event_id"]

_CLIENT_ID: Final = re.compile(r"[a-v0-9]{5,1024}")
_OUR_ID_LENGTH: Final = 26


def google_event_id(local_id: uuid.UUID) -> str:
    """The Google event id for the local event `local_id`: 26 characters of base32hex
    (`client_event_id`, the id the write use cases stored on the event)."""
    return client_event_id(local_id)


def local_id_from_google_event_id(event_id: str) -> uuid.UUID:
    """The local UUID a calsync-made Google id encodes.

    Raises `ValueError` if `event_id` is not exactly what `google_event_id` produces for
    some UUID (wrong length, characters outside a-v0-9, non-canonical trailing bits), as
    for events created by other clients.
    """
    if len(event_id) != _OUR_ID_LENGTH or not _CLIENT_ID.fullmatch(event_id):
        raise ValueError(f"{event_id!r} is not a calsync event id")
    raw = base64.b32hexdecode(event_id.upper() + "=" * 6)
    local_id = uuid.UUID(bytes=raw)
    if google_event_id(local_id) != event_id:
        raise ValueError(f"{event_id!r} is not a calsync event id")
    return local_id


def is_valid_client_event_id(event_id: str) -> bool:
    """Whether Google accepts `event_id` as a client-chosen id (a-v0-9, 5 to 1024 chars)."""
    return bool(_CLIENT_ID.fullmatch(event_id))
