"""The "now" that token and state checks run at: injected in tests, aware UTC always."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_moment(now: datetime | None) -> datetime:
    """``now`` in UTC, or the current time when None.

    Raises:
        ValueError: ``now`` is naive; a naive time cannot be placed on the timeline.
    """
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)
