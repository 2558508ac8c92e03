"""Recurring series seen as instances: virtual instances, exceptions and windows.

An *instance* that nobody edited is virtual: it is derived from the master on demand
(id ``<masterId>_<suffix>``, ``recurringEventId``, ``originalStartTime``, the master's
fields and etag). An edited or deleted instance is a stored *exception* with the same
id, and takes the virtual instance's place. Every expansion's work is bounded (see
``recurrence``): a costly rule lists the starts found within the work limit.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache

from calsync.emulator import errors, recurrence
from calsync.emulator.event_log import EventLog, StoredEvent
from calsync.emulator.event_model import JSON, Timing, ordered


@lru_cache(maxsize=4096)
def _series(etag: str, lines: tuple[str, ...], start: datetime, all_day: bool) -> recurrence.Series:
    del etag  # part of the cache key only: a new master version gets a new entry
    return recurrence.build_series(lines, start=start, all_day=all_day)


def series_of(master: StoredEvent) -> recurrence.Series:
    """The master's parsed series (cached per master version)."""
    lines: Sequence[str] = master.resource.get("recurrence") or ()
    return _series(master.etag, tuple(lines), master.timing.start.local, master.timing.all_day)


def validate_series(lines: Sequence[str], timing: Timing) -> None:
    """400 ``invalid`` when the recurrence lines do not parse against this start; 500
    ``backendError`` for a rule repeating more often than daily, the server error
    Google is reported to answer for one (`recurrence.sub_daily_rule`)."""
    recurrence.build_series(lines, start=timing.start.local, all_day=timing.all_day)
    if recurrence.sub_daily_rule(lines) is not None:
        raise errors.GoogleApiError(500, "backendError")


def instance_timing(master: StoredEvent, original: datetime) -> Timing:
    """The instance's start and end: as long as the master, exactly (in UTC) for a timed
    series, so an instance that crosses a daylight-saving change, or starts in a gap,
    keeps its length (RFC 5545 §3.8.5.3); whole days for an all-day one."""
    start = master.timing.start.shifted(original)
    if master.timing.all_day:
        end_local = original + master.timing.duration
    else:
        end_instant = original.astimezone(UTC) + master.timing.duration
        end_local = end_instant.astimezone(master.timing.end.zone)
    return Timing(start, master.timing.end.shifted(end_local))


def virtual_instance(master: StoredEvent, original: datetime) -> StoredEvent:
    """The unedited instance of ``master`` starting at ``original`` (series frame)."""
    suffix = recurrence.instance_suffix(original, all_day=master.timing.all_day)
    timing = instance_timing(master, original)
    resource: JSON = copy.deepcopy(dict(master.resource))
    resource.pop("recurrence", None)
    resource["id"] = f"{master.id}_{suffix}"
    resource["recurringEventId"] = master.id
    resource["start"] = timing.start.to_resource()
    resource["end"] = timing.end.to_resource()
    resource["originalStartTime"] = timing.start.to_resource()
    return StoredEvent(
        resource=ordered(resource),
        timing=timing,
        updated=master.updated,
        seq=master.seq,
        master_id=master.id,
        suffix=suffix,
    )


def _frame(master: StoredEvent, moment: datetime) -> datetime:
    local = moment.astimezone(master.timing.start.zone)
    return local.replace(tzinfo=None) if master.timing.all_day else local


def original_of(master: StoredEvent, suffix: str) -> datetime | None:
    """The original start (series frame, as `expand` lists it) an instance suffix names,
    if it is one of the series' starts (see `recurrence.occurrence_at`)."""
    original = recurrence.original_from_suffix(
        suffix, all_day=master.timing.all_day, tz=master.timing.start.zone
    )
    if original is None:
        return None
    return recurrence.occurrence_at(series_of(master), original)


def expand(
    log: EventLog,
    master: StoredEvent,
    *,
    after: datetime | None,
    before: datetime | None,
    show_deleted: bool,
    limit: int | None = None,
    end_inclusive: bool = False,
) -> list[StoredEvent]:
    """The instances of a series overlapping [after, before), exceptions in place; with
    `end_inclusive` an instance ending at `after` too (events.instances' ``timeMin``).

    Cancelled exceptions appear only with ``show_deleted``. At most ``limit`` original
    starts are considered; without ``limit``, all of them in a window with ``before``
    and `recurrence.UNBOUNDED_INSTANCE_LIMIT` without one, as Google does (see
    docs/decisions.md G3).
    """
    series = series_of(master)
    low = _frame(master, after) - master.timing.duration if after is not None else None
    high = _frame(master, before) if before is not None else None
    exceptions = log.exceptions_of(master.id)
    found: list[StoredEvent] = []
    for original in recurrence.occurrences(series, after=low, before=high, limit=limit):
        suffix = recurrence.instance_suffix(original, all_day=master.timing.all_day)
        instance = exceptions.pop(suffix, None) or virtual_instance(master, original)
        if instance.cancelled and not show_deleted:
            continue
        if instance.timing.overlaps(after, before, end_inclusive=end_inclusive):
            found.append(instance)
    for moved in exceptions.values():  # exceptions moved into the window from outside it
        if (moved.cancelled and not show_deleted) or not moved.timing.overlaps(
            after, before, end_inclusive=end_inclusive
        ):
            continue
        if moved.suffix is not None and original_of(master, moved.suffix) is not None:
            found.append(moved)
    return found


def series_overlaps(
    log: EventLog, master: StoredEvent, after: datetime | None, before: datetime | None
) -> bool:
    """Whether any instance of the series falls in the window (for non-expanded lists)."""
    if after is None and before is None:
        return True
    return bool(expand(log, master, after=after, before=before, show_deleted=True, limit=50))
