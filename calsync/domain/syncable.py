"""The fields of an event that both sides can change (pure; no imports).

Kept apart from `calsync.domain.models` so that `calsync.domain.event_types`, which
`models` imports, can use the same set (decisions N6).
"""

from __future__ import annotations

from typing import Final

__all__ = ["SYNCABLE_FIELDS", "SYNCABLE_ORDER"]

#: `SYNCABLE_FIELDS` in the order of the API's fields (problems are reported in it).
SYNCABLE_ORDER: Final[tuple[str, ...]] = (
    "title",
    "description",
    "location",
    "start",
    "end",
    "timezone",
    "category",
    "recurrence",
    "attendees",
    "reminders",
    "metadata",
    "status",
    "type_properties",
    "transparency",
    "visibility",
    "color_id",
    "conference",
)
SYNCABLE_FIELDS: Final[frozenset[str]] = frozenset(SYNCABLE_ORDER)
"""The fields that both sides can change and that the three-way merge reconciles.

Not in it: identity and provider bookkeeping (`calsync_id`, `provider_event_id`, `etag`,
`sequence`, `updated`), and what Google alone decides (`organizer_email`,
`recurring_event_id`, `original_start`, `event_type`).
"""
