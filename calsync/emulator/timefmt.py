"""RFC 3339 parsing and the timestamp formats Google writes.

``updated``/``created`` are UTC with milliseconds (``2026-11-21T10:00:00.000Z``); event
``dateTime`` values carry the offset of the zone they are shown in
(``2026-11-21T10:00:00+01:00``); channel expirations are Unix milliseconds.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from email.utils import format_datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calsync.emulator import errors


def parse_rfc3339(value: str, *, location: str, require_offset: bool = True) -> datetime:
    """Parse an RFC 3339 timestamp; 400 ``invalid`` when malformed.

    Without an offset the value is rejected when ``require_offset`` is set, else returned
    naive (the caller applies a ``timeZone``).
    """
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise errors.invalid(f"Invalid value for: {location}", location) from None
    if "T" not in value.upper():
        raise errors.invalid(f"Invalid value for: {location}", location)
    if parsed.tzinfo is None and require_offset:
        raise errors.invalid(f"Invalid {location}: a time zone offset is required.", location)
    return parsed


def parse_date(value: str, *, location: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise errors.invalid(f"Invalid value for: {location}", location) from None


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone(name: str, *, location: str) -> tzinfo:
    """The IANA zone ``name``; 400 ``timeZone`` invalid when unknown."""
    if name == "UTC":
        return UTC
    found = _zone(name)
    if found is None:
        raise errors.invalid(f"Invalid time zone definition for {location}.", location)
    return found


def utc_millis(moment: datetime) -> str:
    """``2026-11-21T10:00:00.000Z``: Google's ``created``/``updated`` format."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def local_iso(moment: datetime, tz: tzinfo) -> str:
    """``2026-11-21T10:00:00+01:00``: an instant shown in ``tz``, whole seconds.

    Through UTC: ``astimezone`` to a datetime's own zone returns it unchanged, so a wall
    time in a spring-forward gap (02:30 New York on 2024-03-10) would be shown as it is
    (``02:30-05:00``) instead of as the wall time of its instant (``03:30-04:00``)."""
    shown = moment.astimezone(UTC).astimezone(tz).replace(microsecond=0).isoformat()
    return shown.replace("+00:00", "Z") if tz is UTC else shown


def unix_millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def http_date(moment: datetime) -> str:
    """``Tue, 19 Nov 2013 01:13:52 GMT`` for ``X-Goog-Channel-Expiration``."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)
