"""Splitting a recurring series at one instance ("this and following"), as Google clients do.

The old series is cut just before the instance (its RRULE gets an UNTIL one second, or
for all-day series one day, before it); a new series starts at the instance with the
same rule (a COUNT is reduced by the instances the old series keeps). RDATE values go to
the half they fall in; EXDATE lines are copied to both halves (an exclusion outside a
series' span changes nothing). Pure functions; no I/O.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

from calsync.domain.models import Event, EventTime
from calsync.domain.recurrence import MAX_INSTANCES_LIMIT, expand
from calsync.domain.rfc5545 import parse_recurrence
from calsync.domain.timezones import zone

__all__ = ["split_series"]


def split_series(
    master: Event, at: EventTime, *, series_id: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The recurrence lines of the part before `at` and of the part from `at` on.

    `at` must be an instance start of `master` after its first one.
    """
    # Only a COUNT needs the instances before `at` counted (and a COUNT rule's are within
    # the work its validation allowed; a long series without COUNT may not be).
    counted = any(
        line.upper().startswith("RRULE") and "COUNT=" in line.upper() for line in master.recurrence
    )
    kept = _instances_before(master, at, series_id) if counted else 0
    before: list[str] = []
    after: list[str] = []
    for line in master.recurrence:
        name = line.split(":", 1)[0].split(";", 1)[0].upper()
        if name == "RRULE":
            before.append(_with_until(line, at))
            after.append(_reduced_count(line, kept))
        elif name == "RDATE":
            early, late = _split_dates(line, at, master)
            before += [early] if early else []
            after += [late] if late else []
        else:
            before.append(line)
            after.append(line)
    return tuple(before), tuple(after)


def _parts(line: str) -> tuple[str, list[str]]:
    head, _, value = line.partition(":")
    return head, [p for p in value.split(";") if p]


def _with_until(line: str, at: EventTime) -> str:
    head, parts = _parts(line)
    parts = [p for p in parts if p.split("=", 1)[0].upper() not in ("COUNT", "UNTIL")]
    if at.day is not None:
        until = (at.day - timedelta(days=1)).strftime("%Y%m%d")
    else:
        assert at.instant is not None
        until = (at.instant - timedelta(seconds=1)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{head}:{';'.join([*parts, f'UNTIL={until}'])}"


def _reduced_count(line: str, kept: int) -> str:
    head, parts = _parts(line)
    changed = []
    for part in parts:
        key, _, value = part.partition("=")
        if key.upper() == "COUNT":
            part = f"COUNT={max(1, int(value) - kept)}"
        changed.append(part)
    return f"{head}:{';'.join(changed)}"


def _instances_before(master: Event, at: EventTime, series_id: str) -> int:
    rules_only = dataclasses.replace(
        master, recurrence=tuple(r for r in master.recurrence if r.upper().startswith("RRULE"))
    )
    fallback = master.timezone or "UTC"
    begin = master.start.start_in(fallback) - timedelta(seconds=1)
    end = at.start_in(fallback)
    if end <= begin:
        return 0
    return len(
        expand(rules_only, begin, end, master_id=series_id, max_instances=MAX_INSTANCES_LIMIT)
    )


def _split_dates(line: str, at: EventTime, master: Event) -> tuple[str | None, str | None]:
    head, _, value = line.partition(":")
    early: list[str] = []
    late: list[str] = []
    for text in value.split(","):
        parsed = parse_recurrence([f"{head}:{text}"]).rdates[0]
        (late if _at_or_after(parsed, at, master) else early).append(text)
    return (
        f"{head}:{','.join(early)}" if early else None,
        f"{head}:{','.join(late)}" if late else None,
    )


def _at_or_after(value: date | datetime, at: EventTime, master: Event) -> bool:
    fallback = master.timezone or "UTC"
    if not isinstance(value, datetime):
        local_day = at.day if at.day is not None else at.local().date()
        return value >= local_day
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(fallback))
    return value >= at.start_in(fallback)
