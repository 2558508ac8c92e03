"""Exceptions whose series no longer has their instance (decision JH1).

Google keeps an exception when its series' rule changes: a series cut short by a
this-and-following split (its RRULE given an UNTIL) keeps the exceptions of instances
past its new end, and the sync listing still lists them, live. Google no longer shows
them among the series' instances: an exception is listed only in the place of one of
its series' starts (`calsync.emulator.expansion.expand`). Calsync lists every live
exception of a series whatever its original start, so the pull stores such a *stray*
exception as Google shows it: cancelled, an exception that takes no instance's place
(a cancelled exception is stored, not deleted, and removes nothing the rule makes).

Two ways one arrives, both judged against the series as the listing leaves it:
- a listed live exception whose master (its listed version, else its stored row) has no
  start at its original start (`stray_cancelled`): a split made before calsync pulled
  another client's change of a later instance (decision JD5) - the split dropped the
  exceptions it knew of, the changed one comes in afterwards;
- a listed master whose rule or start changed (another client cut the series short):
  its synced live exceptions stored here, which the listing does not name, that the
  series no longer has (`with_stray_rows`, one read, only for such a master).
An exception with unpushed local edits is left to the push and the merge.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any, Final

from sqlalchemy import Row
from sqlalchemy.orm import Session

from calsync.domain.errors import ValidationError
from calsync.domain.models import Event, EventStatus, EventTime
from calsync.domain.recurrence import occurrences
from calsync.store.events import to_event
from calsync.store.listed_events import live_exception_rows
from calsync.sync.reconcile_plan import LOCAL_EDIT_STATES, Action, Plan, Step

__all__ = [
    "masters_wanted",
    "reshaped_masters",
    "sort_instant",
    "stray_cancelled",
    "stray_stored",
    "with_stray_rows",
]

#: How far around an original start the series' starts are generated to find it: wide
#: enough that an all-day start (sorted at midnight UTC) is found in any zone.
_AROUND: Final = timedelta(days=2)
#: The starts looked at around one original start; a rule that makes more there (a
#: minutely or secondly one) is not judged, and its exception is kept as listed.
_MAX_STARTS: Final = 10_000


def _live_exceptions(latest: Mapping[str, Event]) -> Iterable[tuple[str, Event]]:
    for google_id, event in latest.items():
        if (
            event.recurring_event_id is not None
            and event.original_start is not None
            and event.status != EventStatus.CANCELLED
        ):
            yield google_id, event


def masters_wanted(latest: Mapping[str, Event]) -> list[str]:
    """The Google ids of the masters of the listing's live exceptions that the listing
    itself does not hold (their stored rows are read to judge the exceptions)."""
    return sorted(
        {
            event.recurring_event_id
            for _, event in _live_exceptions(latest)
            if event.recurring_event_id is not None and event.recurring_event_id not in latest
        }
    )


def stray_cancelled(latest: dict[str, Event], stored_masters: Mapping[str, Event]) -> int:
    """Replace in `latest` (one version per Google id) each live exception whose series
    (its master as listed, else in `stored_masters`, by Google id) has no start at the
    exception's original start by a cancelled version of it. Returns how many.

    An exception whose master is unknown, cancelled or not recurring, or whose rule
    calsync does not expand, is left as listed."""
    replaced = 0
    for google_id, event in list(_live_exceptions(latest)):
        assert event.recurring_event_id is not None
        assert event.original_start is not None
        master = latest.get(event.recurring_event_id) or stored_masters.get(
            event.recurring_event_id
        )
        if master is None or not master.recurrence or master.status == EventStatus.CANCELLED:
            continue
        if _has_start(master, event.recurring_event_id, event):
            continue
        latest[google_id] = dataclasses.replace(event, status=EventStatus.CANCELLED)
        replaced += 1
    return replaced


def sort_instant(value: EventTime) -> datetime:
    """The instant a start sorts by: itself, midnight UTC for a day."""
    if value.day is not None:
        return datetime.combine(value.day, time(), tzinfo=UTC)
    assert value.instant is not None
    return value.instant


def _has_start(master: Event, series_id: str, exception: Event) -> bool:
    """Whether the master's rule makes a start at the exception's original start (True
    when that cannot be told within the bounds)."""
    assert exception.original_start is not None
    at = sort_instant(exception.original_start)
    try:
        found = occurrences(
            tuple(master.recurrence),
            master.start,
            master.end,
            at - _AROUND,
            at + _AROUND,
            series_id=series_id,
            timezone=master.timezone,
            max_instances=_MAX_STARTS,
        )
    except ValidationError:
        return True
    if any(sort_instant(start) == at for start in found.starts):
        return True
    return not found.complete


def reshaped_masters(latest: Mapping[str, Event], stored: Mapping[str, Event]) -> dict[str, Event]:
    """The listed live masters (by Google id) whose rule or start differ from their
    `stored` version: their series may no longer have instances stored exceptions take."""
    return {
        google_id: event
        for google_id, event in latest.items()
        if event.recurrence
        and event.status != EventStatus.CANCELLED
        and google_id in stored
        and (stored[google_id].recurrence, stored[google_id].start)
        != (event.recurrence, event.start)
    }


def stray_stored(exceptions: Iterable[Event], masters: Mapping[str, Event]) -> list[Event]:
    """Of the stored live `exceptions` (of the `masters`, by Google id), the cancelled
    versions of those whose master has no start at their original start."""
    stray: list[Event] = []
    for event in exceptions:
        master = masters.get(event.recurring_event_id or "")
        if master is None or event.original_start is None:
            continue
        if not _has_start(master, master.provider_event_id or "", event):
            stray.append(dataclasses.replace(event, status=EventStatus.CANCELLED))
    return stray


def with_stray_rows(
    session: Session,
    calendar_id: uuid.UUID,
    decided: Plan,
    latest: Mapping[str, Event],
    rows: dict[str, Row[Any]],
) -> Plan:
    """`decided` and, when the listing changes a series' rule or start, the synced live
    exceptions stored of it (not listed) that the series no longer has, overwritten by
    their cancelled versions, as Google shows them (decision JH1); their rows are added
    to `rows`. A reshaped series is rare: otherwise nothing is read."""
    listed_masters = [
        g for g, e in latest.items() if e.recurrence and g in rows and rows[g].etag != e.etag
    ]
    if not listed_masters:
        return decided
    reshaped = reshaped_masters(latest, {g: to_event(rows[g]) for g in listed_masters})
    if not reshaped:
        return decided
    found = {
        row.google_event_id: row
        for row in live_exception_rows(session, calendar_id, list(reshaped))
        if row.google_event_id is not None
        and row.google_event_id not in latest
        and row.sync_state not in LOCAL_EDIT_STATES
    }
    stray = stray_stored([to_event(row) for row in found.values()], reshaped)
    steps = [Step(Action.OVERWRITE, e.provider_event_id or "", e) for e in stray]
    rows.update({step.google_id: found[step.google_id] for step in steps})
    return Plan((*decided.steps, *steps), decided.unchanged)
