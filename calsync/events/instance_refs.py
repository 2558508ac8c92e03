"""What an API id names: a stored event (`uuid`) or one instance of a series
(``<seriesId>_<YYYYMMDDTHHMMSSZ>`` or ``<seriesId>_<YYYYMMDD>``), generated or replaced
by an exception.

`resolve` answers `None` for nothing, a deleted event or a cancelled instance, and does
not check who may see it: `calsync.events.targets` does (`NotFound`, `Forbidden`). It
moved here from ``web/event_reads.py`` with the list use case (decision HK1).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from calsync.domain.errors import ValidationError
from calsync.domain.models import Event, EventStatus, EventTime
from calsync.domain.recurrence import expand, instance_id
from calsync.events.instance_rows import series_id_of, sort_instant
from calsync.events.views import EventView
from calsync.store.event_queries import find_exception
from calsync.store.events import StoredEvent, load_stored

__all__ = ["InstanceRef", "instance_api_id", "resolve", "sort_instant"]


def instance_api_id(master: StoredEvent, original_start: EventTime) -> str:
    """The API id of the instance of `master` that (originally) starts at `original_start`."""
    return instance_id(str(master.id), original_start)


@dataclass(frozen=True, slots=True)
class InstanceRef:
    """One instance of a series: `exception` when one replaces it, and what it shows."""

    api_id: str
    master: StoredEvent
    original_start: EventTime
    exception: StoredEvent | None
    event: Event

    @property
    def view(self) -> EventView:
        stored = self.exception if self.exception is not None else self.master
        return EventView(self.api_id, self.event, stored, series=self.master)


def resolve(session: Session, api_id: str) -> StoredEvent | InstanceRef | None:
    """What `api_id` names, deleted events and cancelled instances excluded; `None` if
    nothing. Does not check who may see it."""
    head, sep, suffix = api_id.partition("_")
    try:
        local_id = uuid.UUID(head)
    except ValueError:
        return None
    stored = load_stored(session, local_id)
    if stored is None or stored.deleted_at is not None:
        return None
    if not sep:
        return stored
    if not stored.event.is_recurring:
        return None
    original = _original_start(suffix, stored.event)
    if original is None or instance_api_id(stored, original) != api_id:
        return None
    return _instance(session, stored, original, api_id)


def _original_start(suffix: str, master: Event) -> EventTime | None:
    try:
        if master.all_day:
            return EventTime.on(datetime.strptime(suffix, "%Y%m%d").date())
        moment = datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    assert master.timezone is not None
    return EventTime(instant=moment, timezone=master.timezone)


def _instance(
    session: Session, master: StoredEvent, original: EventTime, api_id: str
) -> InstanceRef | None:
    exception = find_exception(
        session,
        calendar_id=master.calendar_id,
        series_id=series_id_of(master),
        original_start=sort_instant(original),
    )
    if exception is not None:
        if exception.event.status == EventStatus.CANCELLED:
            return None
        return InstanceRef(api_id, master, original, exception, exception.event)
    begin = sort_instant(original) - timedelta(days=1)
    try:
        found = expand(
            master.event,
            begin,
            sort_instant(original) + timedelta(days=1) + master.event.duration,
            master_id=series_id_of(master),
            max_instances=10_000,
        )
    except ValidationError:
        return None  # a rule calsync does not expand (from Google) has no instances here
    for instance in found:
        if instance.original_start == original:
            return InstanceRef(api_id, master, original, None, instance)
    return None
