"""Where an event falls in a listing window: one rule for singles and series instances.

A window is half-open instants ``[start, end)`` for timed events and half-open dates
``[first, end)`` (`DayRange`) for all-day events. All-day dates float: an all-day event
dated D occupies the calendar day D wherever it is viewed, so it is compared date to
date with the days the window covers *as the viewer sees them* (the days of the viewer's
zone that the window's instants touch, or exactly the dates asked for), never as
midnight-to-midnight in UTC or in the zone of its series. `all_day_in_window` is that
rule; `days_touched` turns instants into the viewer's days. Both are pure: a read model
can apply them to its own rows.

This is Google's model too: an all-day event has dates and no zone ("the timezone field
has no significance for all-day events"), and events.list compares ``timeMin`` and
``timeMax`` with it placed on its dates in the zone of the listing (the calendar's, as
the emulator does); calsync lists several calendars for one viewer, so it uses the
viewer's zone, the one ``start_date`` and ``end_date`` are read in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from calsync.domain.timezones import zone

__all__ = ["DayRange", "all_day_in_window", "days_touched", "timed_in_window"]

_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DayRange:
    """The whole days ``[first, end)`` of a window (`end` exclusive, after `first`)."""

    first: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.first:
            raise ValueError(f"an empty range of days: {self.first} to {self.end}")


def days_touched(start: datetime, end: datetime, zone_name: str) -> DayRange:
    """The days of zone `zone_name` that the instants ``[start, end)`` touch: from the
    local date of `start` to that of `end`, the latter included unless `end` is the very
    instant its day begins. A day begins at local midnight, or where a DST gap at midnight
    moves it (the instant ``datetime.combine(day, time(), tz)`` names, as the API reads a
    ``YYYY-MM-DD`` bound), so a window given as the days' own bounds touches exactly them.
    `start` must precede `end`."""
    tz = zone(zone_name)
    last = end.astimezone(tz).date()
    begins_last = datetime.combine(last, time(), tzinfo=tz)
    return DayRange(start.astimezone(tz).date(), last if begins_last == end else last + _DAY)


def all_day_in_window(first_day: date, end_day: date, days: DayRange) -> bool:
    """The rule: whether an all-day event dated ``[first_day, end_day)`` (end exclusive, as
    stored and as the API shows it) falls in a window of `days`: its dates overlap them."""
    return first_day < days.end and end_day > days.first


def timed_in_window(
    start: datetime, end: datetime, window_start: datetime, window_end: datetime
) -> bool:
    """Whether a timed event ``[start, end)`` falls in ``[window_start, window_end)``: it
    overlaps the window, or, lasting no time at all, lies in it."""
    if end <= start:
        return window_start <= start < window_end
    return start < window_end and end > window_start
