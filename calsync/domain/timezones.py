"""IANA time zone names, checked against the zoneinfo database.

The one place that turns a zone name into a `ZoneInfo`. It accepts only names the
database knows (`Europe/Berlin`, `UTC`), never fixed offsets such as `+01:00`, and never
a path: Google expands recurring events in named zones, and so does calsync.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calsync.domain.errors import ValidationError

_MAX_NAME_LENGTH = 64


def zone(name: str, *, field: str = "timezone") -> ZoneInfo:
    """Return the `ZoneInfo` for an IANA zone name.

    Raises `ValidationError(field, ...)` if the name is empty, too long, looks like a
    path, or is not in the zoneinfo database.
    """
    if not isinstance(name, str) or not name:
        raise ValidationError(field, "a time zone name is required")
    if len(name) > _MAX_NAME_LENGTH or name.startswith("/") or ".." in name or "\\" in name:
        raise ValidationError(field, f"{name!r} is not an IANA time zone name")
    return _cached_zone(name, field)


@lru_cache(maxsize=512)
def _cached_zone(name: str, field: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as err:
        raise ValidationError(field, f"{name!r} is not an IANA time zone name") from err


def is_valid_zone(name: str) -> bool:
    """Return whether `name` is an IANA zone name the zoneinfo database knows."""
    try:
        zone(name)
    except ValidationError:
        return False
    return True
