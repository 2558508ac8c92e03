"""Splitting a recurring series at one instance ("this and following"), as Google's guide says.

Google's recurring-events guide ("Modifying all following instances",
https://developers.google.com/calendar/api/guides/recurringevents#modifying_all_following_instances)
splits a series in two writes: the original is trimmed with an UNTIL before the target
instance (events.update), and a new series with the changes and the start of the target
instance is inserted. `split_series` computes the two `recurrence` lists; the caller
(`calsync.events.splits`) stores them and queues the two writes in that order.

Contract, for a valid series `master`, a start `at` of one of its instances after the
first, and `new_start` (where the body puts the instance; `at` when the times do not
change): the old series (master's start, `before`) has exactly master's instances that
start before `at`; the new series (`new_start`, `after`) has exactly the others, each moved
by the wall-clock difference `new_start - at` (whole days for all-day series), in
`new_start`'s zone. RDATE and EXDATE values go to the half they fall in and move with
it; a COUNT is reduced by the instances the old series keeps; an UNTIL moves with the
instances. Where the new start is not a time the rule itself generates (an added date,
an instance in a DST gap, which starts an hour late), the rule's implicit parts
(weekday, month day, hour...) are written out from the old start, the new start is also
given as an RDATE, and a COUNT becomes the UNTIL of its last instance, so that RFC 5545's
"undefined" case (a DTSTART its rule does not generate) never arises (decisions S25).

Rule parts the user wrote (BYDAY=MO, BYHOUR=9) are kept as written: a time change that
should also change them needs the new series' recurrence in the body. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from calsync.domain.errors import ValidationError
from calsync.domain.models import Event, EventTime
from calsync.domain.recurrence import rule_walls
from calsync.domain.rfc5545 import WEEKDAYS, DateValue, RecurrenceRule, parse_recurrence
from calsync.domain.timezones import zone

__all__ = ["SeriesSplit", "split_series"]

_CHECKED: Final = 64
"""Instances of an endless rule compared when the new rule is anchored off its rule."""
_MAX_LISTED: Final = 500
"""The most instances of a finite rule written out as RDATEs where no rule can carry them
(an added date between the periods of a rule with an INTERVAL)."""
_PER_DAY: Final = 24 * 60 + 1
"""Instances a rule has in a day at most (MINUTELY; BYSECOND is not moved day by day)."""
_SLACK: Final = timedelta(days=2)
"""Wall times this far before the split instance's are looked at: a nominal time in a
DST gap starts later than its wall time."""


@dataclass(frozen=True, slots=True)
class SeriesSplit:
    """The recurrence lines of the old series (`before`) and of the new one (`after`)."""

    before: tuple[str, ...]
    after: tuple[str, ...]


class _Frame:
    """Wall-clock times of one series (naive, in its zone; midnights for all-day series)."""

    def __init__(self, start: EventTime, fallback: str) -> None:
        self.all_day = start.is_all_day
        self.zone_name = start.timezone
        self.tz = zone(start.timezone or fallback)
        self.fallback = fallback
        self.start = self.wall_of(start)

    def wall_of(self, value: EventTime) -> datetime:
        if value.day is not None:
            return datetime.combine(value.day, time())
        return value.local().replace(tzinfo=None)

    def wall(self, value: DateValue) -> datetime:
        """A recurrence value as a wall time of this series (`_Series.naive`'s meaning)."""
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return value
            return value.astimezone(self.tz).replace(tzinfo=None)
        return datetime.combine(value, self.start.time())

    def event_time(self, wall: datetime) -> EventTime:
        if self.all_day:
            return EventTime.on(wall.date())
        assert self.zone_name is not None
        return EventTime.at(wall, self.zone_name)

    def instant(self, wall: datetime) -> datetime:
        return self.event_time(wall).start_in(self.fallback)


@dataclass(frozen=True, slots=True)
class _Cut:
    """Where the split falls and how the new half moves."""

    old: _Frame
    new: _Frame
    at: datetime  # the split instance's start (aware)
    at_wall: datetime
    delta: timedelta  # wall-clock move of the new half
    days: timedelta  # whole days the new half's dates move
    gone_at: frozenset[datetime]  # instants the EXDATEs remove (timed series)
    gone_days: frozenset[date]  # days they remove whole
    master: Event

    def excluded(self, wall: datetime) -> bool:
        """Whether the original's EXDATEs remove an instance at `wall`."""
        if wall.date() in self.gone_days:
            return True
        return not self.old.all_day and self.old.instant(wall) in self.gone_at

    def moved(self, wall: datetime) -> datetime:
        return wall + (self.days if self.old.all_day else self.delta)


def split_series(
    master: Event, at: EventTime, *, new_start: EventTime | None = None
) -> SeriesSplit:
    """The recurrence lines of the part of `master` before `at` and of the part from `at`
    on, starting at `new_start` (default `at`); see the module docstring.

    `at` must be an instance start of `master` after its first one, and `new_start` of
    the same kind (a day or an instant). Raises `ValidationError("recurrence", ...)` where
    the rest of the series cannot be written from `new_start` (an added date off an
    endless rule's INTERVAL), and `ValidationError("start_time", ...)` where `new_start`
    is a day and `at` an instant or the other way round."""
    fallback = master.timezone or "UTC"
    old = _Frame(master.start, fallback)
    target = new_start or at
    if target.is_all_day != at.is_all_day:
        raise ValidationError(
            "start_time",
            "the following instances cannot change between timed and all-day; "
            "change the whole series, or give the new series its own recurrence",
        )
    new = _Frame(target, fallback) if not target.is_all_day else old
    at_wall = old.wall_of(at)
    new_wall = new.wall_of(target)
    cut = _Cut(
        old,
        new,
        at.start_in(fallback),
        at_wall,
        new_wall - at_wall,
        timedelta(days=(new_wall.date() - at_wall.date()).days),
        *_exclusions(master, old),
        master,
    )
    before: list[str] = []
    after: list[str] = []
    listed: list[datetime] = []
    matched = False
    for line in master.recurrence:
        name = line.split(":", 1)[0].split(";", 1)[0].upper()
        if name == "RRULE":
            early, late, generated, extra = _split_rule(line, master, cut, target)
            before += [early] if early else []
            after += [late] if late else []
            matched = matched or generated
            listed += extra
        elif name in ("RDATE", "EXDATE"):
            early_values, late_values = _split_dates(line, cut, exclusion=name == "EXDATE")
            before += early_values
            after += late_values
        else:  # EXRULE: Google refuses it; kept on both halves as it was
            before.append(line)
            after.append(line)
    if not matched:
        # the new start is no time of its rule: state it, whatever a reader makes of
        # a DTSTART its rule does not generate
        listed.insert(0, new.wall_of(target))
    if listed:
        after.append(_date_line("RDATE", [new.event_time(w) for w in listed], new))
    return SeriesSplit(tuple(before), tuple(after))


def _exclusions(master: Event, old: _Frame) -> tuple[frozenset[datetime], frozenset[date]]:
    lines = [line for line in master.recurrence if line.upper().startswith("EXDATE")]
    values = parse_recurrence(lines).exdates
    walls = [old.wall(v) for v in values if isinstance(v, datetime) or old.all_day]
    if old.all_day:
        return frozenset(), frozenset(w.date() for w in walls)
    days = frozenset(v for v in values if not isinstance(v, datetime))
    return frozenset(old.instant(w) for w in walls), days


def _parts(line: str) -> tuple[str, list[str]]:
    head, _, value = line.partition(":")
    return head, [p for p in value.split(";") if p]


def _key(part: str) -> str:
    return part.split("=", 1)[0].upper()


def _split_rule(
    line: str, master: Event, cut: _Cut, new_start: EventTime
) -> tuple[str | None, str | None, bool, list[datetime]]:
    """The rule's line for each half, whether the new start is one of its times, and the
    new half's instances to list as RDATEs (where no rule from the new start has them)."""
    head, parts = _parts(line)
    rule = parse_recurrence([line]).rrules[0]
    old = cut.old
    limit = rule.count if rule.count is not None else _CHECKED + 1
    nominal = rule_walls(
        line, master.start, low=cut.at_wall - _SLACK, limit=limit, fallback_zone=old.fallback
    )
    rest = [w for w in nominal if not _before(w, cut)]
    if not rest:  # the rule ended before the split (an added date after it)
        return line, None, False, []
    first = rule_walls(line, master.start, low=old.start, limit=1, fallback_zone=old.fallback)
    early = None
    if first and _before(first[0], cut):
        early = f"{head}:{';'.join([*_without_end(parts), _until_before(cut)])}"
    generated = rest[0] == cut.at_wall and _same(rest[0], cut)
    if generated:
        if rule.count is not None:
            end = [f"COUNT={len(rest)}"]
        else:
            end = [_moved_until(rule, cut)] if rule.until is not None else []
        return early, f"{head}:{';'.join([*_without_end(parts), *end])}", True, []
    later = [w for w in rest if not _same(w, cut)]  # the split instance is the new start
    if not later:
        return early, None, False, []
    if rule.count is not None:
        end = [_until_at(cut.moved(later[-1]), cut.new)]
    else:
        end = [_moved_until(rule, cut)] if rule.until is not None else []
    pins = _pins(rule, cut.moved(old.start), cut.new.wall_of(new_start), all_day=old.all_day)
    late = f"{head}:{';'.join([*_without_end(parts), *pins, *end])}"
    wanted = [cut.moved(w) for w in later]  # all of them, or (no COUNT) the first ones
    start_wall = cut.new.wall_of(new_start)
    got = rule_walls(
        late, new_start, low=start_wall, limit=len(wanted) + 2, fallback_zone=old.fallback
    )
    got = tuple(w for w in got if w != start_wall)
    if list(got if rule.count is not None else got[: len(wanted)]) == wanted:
        return early, late, False, []
    if rule.until is not None:  # finite too: all of its instances
        nominal = rule_walls(
            line,
            master.start,
            low=cut.at_wall - _SLACK,
            limit=_MAX_LISTED + 2,
            fallback_zone=old.fallback,
        )
        wanted = [cut.moved(w) for w in nominal if not _before(w, cut) and not _same(w, cut)]
    if (rule.count is not None or rule.until is not None) and len(wanted) <= _MAX_LISTED:
        return early, None, False, wanted
    raise ValidationError(
        "recurrence",
        "this instance is an added date (RDATE) between the rule's periods, so no rule "
        "starting there repeats the rest; split at one of the rule's own instances, or "
        "give the new series' recurrence",
    )


def _before(wall: datetime, cut: _Cut) -> bool:
    if cut.old.all_day:
        return wall < cut.at_wall
    return cut.old.instant(wall) < cut.at


def _same(wall: datetime, cut: _Cut) -> bool:
    if cut.old.all_day:
        return wall == cut.at_wall
    return cut.old.instant(wall) == cut.at


def _without_end(parts: list[str]) -> list[str]:
    return [p for p in parts if _key(p) not in ("COUNT", "UNTIL")]


def _until_before(cut: _Cut) -> str:
    if cut.old.all_day:
        return f"UNTIL={(cut.at_wall.date() - timedelta(days=1)):%Y%m%d}"
    return f"UNTIL={(cut.at - timedelta(seconds=1)).astimezone(UTC):%Y%m%dT%H%M%SZ}"


def _until_at(wall: datetime, frame: _Frame) -> str:
    if frame.all_day:
        return f"UNTIL={wall:%Y%m%d}"
    return f"UNTIL={frame.instant(wall).astimezone(UTC):%Y%m%dT%H%M%SZ}"


def _moved_until(rule: RecurrenceRule, cut: _Cut) -> str:
    """The rule's UNTIL moved as the instances move, in the form it was written."""
    until = rule.until
    assert until is not None
    if not isinstance(until, datetime):
        return f"UNTIL={(until + cut.days):%Y%m%d}"
    if until.tzinfo is None:
        return f"UNTIL={cut.moved(until):%Y%m%dT%H%M%S}"
    if cut.old.all_day:
        return f"UNTIL={(until + cut.days).astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return _until_at(cut.moved(cut.old.wall(until)), cut.new)


def _pins(rule: RecurrenceRule, anchor: datetime, start: datetime, *, all_day: bool) -> list[str]:
    """The parts a rule takes from its start (RFC 5545 3.3.10, as dateutil reads them),
    written out from `anchor` where `start` would give other values."""
    pins: list[str] = []
    if not (rule.byweekno or rule.byyearday or rule.bymonthday or rule.byday):
        if rule.freq == "YEARLY" and (anchor.month, anchor.day) != (start.month, start.day):
            pins += [] if rule.bymonth else [f"BYMONTH={anchor.month}"]
            pins.append(f"BYMONTHDAY={anchor.day}")
        elif rule.freq == "MONTHLY" and anchor.day != start.day:
            pins.append(f"BYMONTHDAY={anchor.day}")
        elif rule.freq == "WEEKLY" and anchor.weekday() != start.weekday():
            pins.append(f"BYDAY={WEEKDAYS[anchor.weekday()]}")
    if all_day:
        return pins
    coarse = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY")
    if not rule.byhour and rule.freq in coarse and anchor.hour != start.hour:
        pins.append(f"BYHOUR={anchor.hour}")
    if not rule.byminute and rule.freq in (*coarse, "HOURLY") and anchor.minute != start.minute:
        pins.append(f"BYMINUTE={anchor.minute}")
    if not rule.bysecond and rule.freq != "SECONDLY" and anchor.second != start.second:
        pins.append(f"BYSECOND={anchor.second}")
    return pins


def _split_dates(line: str, cut: _Cut, *, exclusion: bool) -> tuple[list[str], list[str]]:
    """An RDATE/EXDATE line's values for each half: the new half's moved with it, the
    split instance itself left out (it is the new start). A whole day excluded from a
    timed series on the split's day goes to both halves; moved, it becomes the date-times
    of the instances it removed."""
    head, _, value = line.partition(":")
    name = head.split(";", 1)[0].upper()
    early: list[str] = []
    late: list[str] = []
    moved: list[EventTime] = []
    for text in value.split(","):
        parsed = parse_recurrence([f"{head}:{text}"])
        found = (parsed.exdates if exclusion else parsed.rdates)[0]
        wall = cut.old.wall(found)
        day_only = not isinstance(found, datetime) and not cut.old.all_day
        if day_only:
            goes_early = found <= cut.at_wall.date()
            goes_late = found >= cut.at_wall.date()
        else:
            goes_early = _before(wall, cut)
            # an added date the original excludes is no instance: once moved, an
            # excluded day might no longer cover it
            goes_late = not goes_early and (
                exclusion or not (_same(wall, cut) or cut.excluded(wall))
            )
        if goes_early:
            early.append(text)
        if goes_late:
            late.append(text)
            if day_only:
                moved += [cut.new.event_time(cut.moved(w)) for w in _walls_on(found, cut)]
            else:
                moved.append(cut.new.event_time(cut.moved(wall)))
    unmoved = cut.delta == timedelta(0) and cut.new.zone_name == cut.old.zone_name
    late_lines = (
        ([f"{head}:{','.join(late)}"] if late else [])
        if unmoved
        else [_date_line(name, group, cut.new) for group in _by_kind(moved)]
    )
    return ([f"{head}:{','.join(early)}"] if early else []), late_lines


def _walls_on(day: date, cut: _Cut) -> list[datetime]:
    """The wall times of the original's instances on `day` (of a timed series): what a
    whole day excluded removes, to be moved one by one (after a time change the day's
    instances need not share a day any more)."""
    low = datetime.combine(day, time())
    high = low + timedelta(days=1)
    walls: set[datetime] = set()
    for line in cut.master.recurrence:
        if line.upper().startswith("RRULE"):
            walls.update(
                rule_walls(
                    line,
                    cut.master.start,
                    low=low,
                    high=high,
                    limit=_PER_DAY,
                    fallback_zone=cut.old.fallback,
                )
            )
    rdates = [line for line in cut.master.recurrence if line.upper().startswith("RDATE")]
    walls.update(w for w in map(cut.old.wall, parse_recurrence(rdates).rdates) if low <= w < high)
    if low <= cut.old.start < high:
        walls.add(cut.old.start)
    return sorted(w for w in walls if not _before(w, cut))


def _by_kind(values: list[EventTime]) -> list[list[EventTime]]:
    groups = [[v for v in values if v.day is not None], [v for v in values if v.day is None]]
    return [g for g in groups if g]


def _date_line(name: str, values: Iterable[EventTime], frame: _Frame) -> str:
    """One RDATE/EXDATE line of values of one kind, in the new series' zone."""
    values = list(values)
    if values[0].day is not None:
        days: list[date] = [v.day for v in values if v.day is not None]
        return f"{name};VALUE=DATE:{','.join(f'{d:%Y%m%d}' for d in days)}"
    walls = [frame.wall_of(v) for v in values]
    return f"{name};TZID={frame.zone_name}:{','.join(f'{w:%Y%m%dT%H%M%S}' for w in walls)}"
