"""The id calsync gives on the provider to an event it creates (decision HE3).

A provider that lets its client choose an event's id on insert gets a deterministic one,
so a retried insert hits the same id (a conflict, which the push reads as "already
there") instead of creating a duplicate, and the local id can be read back from it. The
rule is the base32hex (RFC 4648 section 7, lower case, no padding) of the local UUID:
26 characters from ``a``-``v`` and ``0``-``9``, which Google Calendar accepts as a
client-chosen id (`calsync.providers.google.ids` holds Google's side: its id rule and
the way back). The write use cases store it on the event when they create it, so the
API answers it at once and the series' exceptions are named by it before any push; the
web layer and the use cases need no provider code for it.
"""

from __future__ import annotations

import base64
import uuid

__all__ = ["client_event_id"]


def client_event_id(local_id: uuid.UUID) -> str:
    """The provider event id of the local event `local_id`: 26 characters of base32hex."""
    encoded = base64.b32hexencode(local_id.bytes).decode("ascii")
    return encoded.rstrip("=").lower()
