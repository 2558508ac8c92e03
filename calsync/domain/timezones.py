"""IANA time zone names, checked against the zoneinfo database.

The one place that turns a zone name into a `ZoneInfo`. It accepts only IANA zone names
(`Europe/Berlin`, `UTC`): the names `zoneinfo.available_timezones()` lists, read once
and cached, except the files a zoneinfo directory holds that name no zone of the IANA
database: `localtime` (the server's own zone), `posixrules`, `Factory`, and the
`posix/` and `right/` copies. Never a fixed offset such as `+01:00`, never a path:
Google expands recurring events in named zones, and so does calsync.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from calsync.domain.errors import ValidationError

_MAX_NAME_LENGTH: Final = 64
_NOT_IANA: Final = frozenset({"localtime", "posixrules", "Factory"})
_NOT_IANA_PREFIXES: Final = ("posix/", "right/")


def zone(name: str, *, field: str = "timezone") -> ZoneInfo:
    """Return the `ZoneInfo` for an IANA zone name.

    Raises `ValidationError(field, ...)` if the name is empty, too long, or not one of
    `iana_zone_names()`.
    """
    if not isinstance(name, str) or not name:
        raise ValidationError(field, "a time zone name is required")
    if len(name) > _MAX_NAME_LENGTH or name not in iana_zone_names():
        raise ValidationError(field, f"{name!r} is not an IANA time zone name")
    return _cached_zone(name, field)


@lru_cache(maxsize=1)
def iana_zone_names() -> frozenset[str]:
    """The IANA zone names this machine's zoneinfo database knows (read on first use)."""
    return frozenset(
        name
        for name in available_timezones()
        if name not in _NOT_IANA and not name.startswith(_NOT_IANA_PREFIXES)
    )


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
