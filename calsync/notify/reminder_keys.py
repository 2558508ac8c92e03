"""The dedupe keys of reminders: ``reminder|<event id>|<occurrence start, UTC>|<lead
minutes>|<channel>``, and for an occurrence that begins when another one of its series
does (an instance moved onto another's start) and does not keep that key, the same with
``|<its original start, UTC>`` appended (IE2): one reminder per occurrence, as Google
notifies each instance of a series, and a key once sent is never sent again.

An occurrence's key depends on the series alone, never on the window a planner expands
(IJ2): an occurrence that began before the window and is still running keeps its key
when another one of the same start ends and falls out of the window, so its pending
reminder, sent late while the occurrence lasts, is neither replaced nor lost.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from calsync.domain.errors import ValidationError
from calsync.domain.models import Event
from calsync.domain.recurrence import MAX_INSTANCES_LIMIT, expand
from calsync.notify.payloads import instant_of

__all__ = ["reminder_key", "series_shared_starts", "shared_starts"]

log = logging.getLogger(__name__)


def reminder_key(
    event_id: uuid.UUID,
    occurrence_start: datetime,
    lead: int,
    channel: str,
    *,
    original: datetime | None = None,
) -> str:
    """The dedupe key of one reminder: exactly one send per key, ever. `original`: the
    original start of an occurrence that `shared_starts` names (appended to the key)."""
    key = f"reminder|{event_id}|{_moment(occurrence_start)}|{lead}|{channel}"
    return key if original is None else f"{key}|{_moment(original)}"


def series_shared_starts(
    master: Event,
    exceptions: Sequence[Event],
    expanded: tuple[Sequence[Event], Sequence[datetime]],
    series_id: str,
    zone_name: str,
    window_start: datetime,
) -> dict[int, datetime]:
    """`shared_starts` of the occurrences a planner `expanded` from `window_start` (with
    their instants) of `master` with its `exceptions` ({} unless `master` is a series,
    `series_id`), as if it had expanded the whole series: an occurrence that began
    before `window_start` is there because it has not ended, but one that began with it
    may have ended and be left out; those are found (one expansion over those starts,
    only then) and take part in the ranking (ranked within the window, as before IJ2,
    if that expansion is over the work allowed for a series: logged). Without them a long
    occurrence's key would change once the other one of its start ended two days ago,
    and its pending reminder would be lost (IJ2)."""
    occurrences, starts = expanded
    if not master.recurrence:
        return {}
    early = sorted({start for start in starts if start < window_start})
    if not early:
        return shared_starts(occurrences, starts, zone_name)
    seen = {_identity(occurrence) for occurrence in occurrences}
    every, instants = list(occurrences), list(starts)
    # One expansion over all those starts, not one per start: a series of long
    # occurrences (hourly, each a month long) has hundreds of them, and each start's
    # window overlaps hundreds of occurrences (review RY3: seconds per plan).
    wanted = set(early)
    try:
        others = expand(
            master,
            early[0],
            early[-1] + timedelta(seconds=1),
            exceptions,
            master_id=series_id,
            max_instances=MAX_INSTANCES_LIMIT,
        )
    except (ValidationError, ValueError) as err:  # over the work allowed for a series
        log.warning("series %s ranked within the planner's window: %s", series_id, err)
        return shared_starts(occurrences, starts, zone_name)
    for other in others:
        at = instant_of(other.start, zone_name)
        if at in wanted and _identity(other) not in seen:
            seen.add(_identity(other))
            every.append(other)
            instants.append(at)
    found = shared_starts(every, instants, zone_name)
    return {index: at for index, at in found.items() if index < len(occurrences)}


def _identity(occurrence: Event) -> tuple[str, datetime | None]:
    """One occurrence of a series, whichever window it was expanded in."""
    original = occurrence.original_start
    return (
        occurrence.provider_event_id or "",
        instant_of(original, "UTC") if original is not None else None,
    )


def shared_starts(
    occurrences: Sequence[Event], starts: Sequence[datetime], zone_name: str
) -> dict[int, datetime]:
    """Of a series' `occurrences` (instances and exceptions, as `expand` gives them) and
    their `starts` (instants), those (by index) that begin when another one does and do
    not keep the plain key: ``{index: original start}``. Of such a group the instance
    that was not moved keeps the plain key (it had it before anything landed on it),
    else the one with the earliest original start. Depends only on the series (never on
    which path plans it), so the per-event and the batched planners agree."""
    groups: dict[datetime, list[int]] = {}
    for index, start in enumerate(starts):
        groups.setdefault(start, []).append(index)
    shared: dict[int, datetime] = {}
    for start, members in groups.items():
        if len(members) < 2:
            continue
        ranked = []
        for index in members:
            occurrence = occurrences[index]
            original = occurrence.original_start
            instant = instant_of(original, zone_name) if original is not None else start
            ranked.append((instant != start, instant, occurrence.provider_event_id or "", index))
        ranked.sort()
        shared.update((index, instant) for _, instant, _, index in ranked[1:])
    return shared


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
