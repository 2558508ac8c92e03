"""A generated start of a series -> its instance: Google's instance id (`instance_id`)
and the `Event` a start stands for (`instance_of`, a copy of the master moved there).

Instance ids are Google's: ``<masterId>_<YYYYMMDDTHHMMSSZ>`` (UTC) or ``<masterId>_<YYYYMMDD>``.
"""

from __future__ import annotations

from datetime import timedelta

from calsync.domain.models import Event, EventTime

__all__ = ["instance_id", "instance_of"]


def instance_id(master_id: str, original_start: EventTime) -> str:
    """Google's id for an instance of series `master_id` that starts at `original_start`:
    ``<master_id>_<YYYYMMDD>`` for a day, ``<master_id>_<YYYYMMDDTHHMMSSZ>`` of the
    instant's own fields (its UTC time, as instants are held) otherwise; what
    ``strftime`` writes for ``%Y%m%d`` and ``%Y%m%dT%H%M%SZ``."""
    day = original_start.day
    if day is not None:
        if day.year < 1000:  # strftime's %Y does not pad years before 1000 everywhere
            return f"{master_id}_{day:%Y%m%d}"
        # %-formatting: less than half the time of strftime, called for every instance
        return "%s_%04d%02d%02d" % (master_id, day.year, day.month, day.day)  # noqa: UP031
    at = original_start.instant
    assert at is not None
    if at.year < 1000:
        return f"{master_id}_{at:%Y%m%dT%H%M%SZ}"
    return "%s_%04d%02d%02dT%02d%02d%02dZ" % (  # noqa: UP031
        master_id,
        at.year,
        at.month,
        at.day,
        at.hour,
        at.minute,
        at.second,
    )


def instance_of(master: Event, series_id: str, start: EventTime) -> Event:
    """The generated instance of series `master` (named `series_id`) that starts at `start`:
    a copy of the master with the instance's start and end, as `expand` returns it."""
    return _instance(master, series_id, start, master.duration)


def _instance(master: Event, series_id: str, start: EventTime, duration: timedelta) -> Event:
    # Unchecked construction (`trusted`): the master is a valid event, `start` one of its
    # generated starts (in its zone), and the end the same span later in the end's zone.
    if start.day is not None:
        end = EventTime.trusted(start.day + duration, None, None)
    else:
        assert start.instant is not None
        assert master.end.timezone is not None
        end = EventTime.trusted(None, start.instant + duration, master.end.timezone)
    return Event.trusted(
        **{
            **vars(master),
            "start": start,
            "end": end,
            "recurrence": (),
            "recurring_event_id": series_id,
            "original_start": start,
            "provider_event_id": instance_id(series_id, start),
            "calsync_id": None,
        }
    )
