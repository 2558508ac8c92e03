"""Which series may have a reminder to plan: most live series of a big calendar have no
occurrence near the horizon (a weekly meeting is in the next two days two weeks in seven),
and finding that out from the master alone saves reading and building their exceptions
and expanding them again with them (decision ID2).

A series can have a planned reminder only for an occurrence that has not ended and whose
reminder is due by ``now + horizon`` (it starts by ``now + horizon + the longest lead``):
either one of its generated instances, which the master alone expanded over that span
yields (exceptions only take instances away or move them), or one of its live exceptions,
whose own stored instants the store compares. All-day instances begin at midnight in the
series' zone or, for a series without one, in the owner's (`plan_reminders`), at most
14 hours from the midnight in UTC the expansion and the store use: a day's margin covers
them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.orm import Session

from calsync.domain.errors import ValidationError
from calsync.domain.models import Event, EventStatus
from calsync.domain.recurrence import occurrences
from calsync.store import upcoming

__all__ = ["series_near"]

_DAY_MARGIN: Final = timedelta(days=1)
#: A timed instance that starts exactly at the latest due start still counts.
_TIMED_MARGIN: Final = timedelta(minutes=1)


def series_near(
    session: Session,
    masters: Sequence[tuple[Any, Event, Sequence[int]]],
    *,
    now: datetime,
    horizon: timedelta,
    latest_start: datetime,
) -> set[uuid.UUID]:
    """The row ids of those of `masters` (a series' row, its master as `to_event` builds
    it, its lead times) for which `plan_reminders` may plan anything: those with a live
    stored exception that ends after ``now`` and starts before `latest_start` (the latest
    upcoming start), and those whose master alone yields an instance in the span its
    reminders can be due for. For every other one `plan_reminders` plans nothing,
    whatever its exceptions. A series whose recurrence cannot be expanded is kept (the
    planner logs it). One query for the exceptions."""
    keys = {(row.calendar_id, row.google_event_id or str(row.id)) for row, _, _ in masters}
    live = upcoming.live_exceptions_between(
        session,
        sorted({series_id for _, series_id in keys}),
        sorted({calendar_id for calendar_id, _ in keys}),
        now - _DAY_MARGIN,
        latest_start,
    )
    near: set[uuid.UUID] = set()
    for row, master, leads in masters:
        series_id = row.google_event_id or str(row.id)
        if (row.calendar_id, series_id) in live or (
            leads and _generated_near(master, series_id, max(leads), now, horizon)
        ):
            near.add(row.id)
    return near


def _generated_near(
    master: Event, series_id: str, longest_lead: int, now: datetime, horizon: timedelta
) -> bool:
    """Whether the series `master` alone has an instance that ends after ``now`` and
    starts by ``now + horizon + longest_lead`` minutes (all-day ones with a day's margin
    either side)."""
    margin = _DAY_MARGIN if master.all_day else _TIMED_MARGIN
    try:
        found = occurrences(
            master.recurrence,
            master.start,
            master.end,
            now - margin,
            now + horizon + timedelta(minutes=longest_lead) + margin,
            series_id=series_id,
            timezone=master.timezone,
            max_instances=1,
        )
    except (ValidationError, ValueError):
        return True  # `plan_reminders` says why it plans nothing
    # `expand`'s instances without building them (a cancelled master is not planned)
    return bool(found.starts) and master.status != EventStatus.CANCELLED
