"""Identifiers the way Google shapes them.

Event ids are base32hex (``a-v`` and ``0-9``), 5 to 1024 characters; ids the server
generates are 26 characters. Instance ids of recurring events are
``<masterId>_<originalStart>`` where the suffix is ``YYYYMMDDTHHMMSSZ`` (UTC) for timed
series and ``YYYYMMDD`` for all-day ones.
"""

from __future__ import annotations

import re
import secrets

_BASE32HEX = "0123456789abcdefghijklmnopqrstuv"
EVENT_ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")
INSTANCE_SUFFIX_RE = re.compile(r"^(\d{8})(T\d{6}Z)?$")


def is_valid_event_id(value: str) -> bool:
    """True when ``value`` is an id a client may choose for a new event."""
    return EVENT_ID_RE.fullmatch(value) is not None


def new_event_id() -> str:
    """A fresh server-generated event id (26 base32hex characters)."""
    return "".join(secrets.choice(_BASE32HEX) for _ in range(26))


def new_secret(prefix: str, nbytes: int = 24) -> str:
    """An unguessable token string such as ``ya29.<...>`` for access tokens."""
    return prefix + secrets.token_urlsafe(nbytes)


def new_calendar_id() -> str:
    """A secondary calendar id like Google's ``<hash>@group.calendar.google.com``."""
    return secrets.token_hex(26) + "@group.calendar.google.com"


def split_instance_id(event_id: str) -> tuple[str, str] | None:
    """``(master_id, suffix)`` when ``event_id`` names an instance, else None."""
    master, sep, suffix = event_id.rpartition("_")
    if not sep or not master or INSTANCE_SUFFIX_RE.fullmatch(suffix) is None:
        return None
    return master, suffix
