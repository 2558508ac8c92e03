"""The event model: frozen values, provider-neutral, no I/O.

An `Event` is what calsync stores and syncs: a single event, the master of a recurring
series (it has `recurrence` lines), or an exception of a series (it has
`recurring_event_id` and `original_start`). Its times are `EventTime` values: either a
whole day (`EventTime.on(date)`, all-day events, end exclusive like Google's) or an
instant with the IANA zone it was written in (`EventTime.at(datetime, zone)`).

Construction checks only the structure (start and end of the same kind, aware instants,
known zones, reminders that are either default or overrides) and canonicalises
collections (attendees sorted by email, metadata frozen), so two events that mean the
same compare equal. Business rules for user input (end after start, limits, valid
recurrence) live in `calsync.domain.validation`, because events read from Google must be
storable even when they break calsync's own rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final

from calsync.domain.errors import ValidationError
from calsync.domain.event_props import Conference, Transparency, Visibility
from calsync.domain.event_types import EventType, TypeProperties
from calsync.domain.syncable import SYNCABLE_FIELDS
from calsync.domain.timezones import zone

__all__ = [
    "SYNCABLE_FIELDS",
    "Attendee",
    "Event",
    "EventStatus",
    "EventTime",
    "Metadata",
    "Reminder",
    "ReminderMethod",
    "Reminders",
    "ResponseStatus",
]


@dataclass(frozen=True, slots=True)
class EventTime:
    """A start or end: a whole day, or an instant with the zone it was written in.

    Exactly one of `day` and `instant` is set. `instant` is always stored in UTC, so
    equality means "same instant and same zone" (never the wall-clock comparison Python
    does for two datetimes that share a tzinfo). `timezone` is the IANA name for timed
    values and `None` for days. Use `EventTime.at` and `EventTime.on` to build one.
    """

    day: date | None = None
    instant: datetime | None = None
    timezone: str | None = None

    def __post_init__(self) -> None:
        if (self.day is None) == (self.instant is None):
            raise ValidationError("start", "a time is either a date or a date-time")
        if self.day is not None:
            if isinstance(self.day, datetime):
                raise ValidationError("start", "an all-day time takes a date, not a date-time")
            if self.timezone is not None:
                raise ValidationError("timezone", "an all-day time carries no time zone")
            return
        assert self.instant is not None
        if self.instant.tzinfo is None or self.instant.utcoffset() is None:
            raise ValidationError("start", "a date-time needs a time zone or an offset")
        if self.timezone is None:
            raise ValidationError("timezone", "a timed event needs an IANA time zone")
        zone(self.timezone)
        try:
            instant = self.instant.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00+14:00: before year 1 in UTC
            raise ValidationError("start", "is outside the dates calsync supports") from None
        object.__setattr__(self, "instant", instant)

    @classmethod
    def at(cls, when: datetime, timezone: str) -> EventTime:
        """A timed value in `timezone`.

        A naive `when` is a wall-clock time in `timezone` (in a DST gap it moves forward,
        in a repeated hour it takes the first one, as RFC 5545 says); an aware `when`
        keeps its instant. Raises `ValidationError` for an unknown zone.
        """
        if when.tzinfo is None:
            when = when.replace(tzinfo=zone(timezone), fold=0)
        return cls(instant=when, timezone=timezone)

    @classmethod
    def on(cls, day: date) -> EventTime:
        """An all-day value. Raises `ValidationError` if given a datetime."""
        return cls(day=day)

    @classmethod
    def trusted(cls, day: date | None, instant: datetime | None, timezone: str | None) -> EventTime:
        """The value whose fields are exactly these, without the checks: only for fields
        a valid `EventTime` had (as calsync stored them: `instant` in UTC, a known zone)."""
        value = object.__new__(cls)
        object.__setattr__(value, "day", day)
        object.__setattr__(value, "instant", instant)
        object.__setattr__(value, "timezone", timezone)
        return value

    @property
    def is_all_day(self) -> bool:
        return self.day is not None

    def local(self) -> datetime:
        """The aware wall-clock time in the value's own zone. Raises on all-day values."""
        if self.instant is None or self.timezone is None:
            raise ValueError("an all-day time has no wall-clock time")
        return self.instant.astimezone(zone(self.timezone))

    def start_in(self, fallback_zone: str) -> datetime:
        """The aware instant this value begins at; days begin at midnight in `fallback_zone`."""
        if self.instant is not None:
            return self.instant
        assert self.day is not None
        return datetime.combine(self.day, time(), tzinfo=zone(fallback_zone))

    def shifted(self, delta: timedelta) -> EventTime:
        """This value moved by `delta` (whole days for all-day values), in the same zone."""
        if self.day is not None:
            return EventTime.on(self.day + timedelta(days=delta.days))
        assert self.instant is not None
        assert self.timezone is not None
        return EventTime(instant=self.instant + delta, timezone=self.timezone)

    def __str__(self) -> str:
        if self.day is not None:
            return self.day.isoformat()
        return f"{self.local().isoformat()}[{self.timezone}]"


class ResponseStatus(StrEnum):
    """An attendee's answer, spelled as Google spells it."""

    NEEDS_ACTION = "needsAction"
    DECLINED = "declined"
    TENTATIVE = "tentative"
    ACCEPTED = "accepted"


class ReminderMethod(StrEnum):
    POPUP = "popup"
    EMAIL = "email"


class EventStatus(StrEnum):
    CONFIRMED = "confirmed"
    TENTATIVE = "tentative"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class Attendee:
    """A person invited to an event. The email is stored lower-cased and stripped; an empty
    display name is stored as `None`."""

    email: str
    display_name: str | None = None
    response_status: ResponseStatus = ResponseStatus.NEEDS_ACTION
    optional: bool = False
    organizer: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "email", self.email.strip().lower())
        object.__setattr__(self, "display_name", self.display_name or None)
        object.__setattr__(self, "response_status", ResponseStatus(self.response_status))


@dataclass(frozen=True, slots=True, order=True)
class Reminder:
    """One reminder override: `minutes` before the start, by `method`."""

    minutes: int
    method: ReminderMethod = ReminderMethod.POPUP


@dataclass(frozen=True, slots=True)
class Reminders:
    """The calendar's default reminders, or explicit overrides (never both, as in Google).

    Overrides are kept sorted and without duplicates.
    """

    use_default: bool = True
    overrides: tuple[Reminder, ...] = ()

    def __post_init__(self) -> None:
        overrides = tuple(sorted(set(self.overrides)))
        if self.use_default and overrides:
            raise ValidationError("reminders", "use the default reminders or overrides, not both")
        object.__setattr__(self, "overrides", overrides)

    @classmethod
    def minutes(cls, *minutes: int, method: ReminderMethod = ReminderMethod.POPUP) -> Reminders:
        """Overrides at the given minutes before the start."""
        return cls(use_default=False, overrides=tuple(Reminder(m, method) for m in minutes))


class Metadata(Mapping[str, str]):
    """An immutable, hashable str -> str mapping (the host application's own keys)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items: dict[str, str] = dict(sorted((items or {}).items()))
        for key, value in self._items.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ValidationError("metadata", "metadata keys and values must be strings")

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._items == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"Metadata({self._items!r})"


EMPTY_METADATA: Final = Metadata()


def attendee_order(people: Iterable[Attendee]) -> tuple[Attendee, ...]:
    """`people` in the order an `Event` holds its attendees: by email, then display name
    (for code that builds events with `Event.trusted`)."""
    return tuple(sorted(people, key=lambda a: (a.email, a.display_name or "")))


@dataclass(frozen=True, kw_only=True)
class Event:
    """A calendar event as calsync knows it.

    `timezone` is the event's IANA zone: for timed events it is always the start's zone
    (given or not); for all-day events it says in which zone the days are meant and may
    be `None`. `recurrence` holds RFC 5545 RRULE/EXRULE/RDATE/EXDATE lines (never
    DTSTART: the start is the series' first instance). The `provider_*`, `etag`,
    `sequence` and `updated` fields describe the provider's copy and are never merged.
    """

    start: EventTime
    end: EventTime
    title: str = ""
    description: str = ""
    location: str = ""
    timezone: str | None = None
    category: str | None = None
    recurrence: tuple[str, ...] = ()
    attendees: tuple[Attendee, ...] = ()
    reminders: Reminders = field(default_factory=Reminders)
    metadata: Mapping[str, str] = EMPTY_METADATA
    status: EventStatus = EventStatus.CONFIRMED
    transparency: Transparency = Transparency.OPAQUE
    visibility: Visibility = Visibility.DEFAULT
    color_id: str | None = None
    conference: Conference | None = None
    organizer_email: str | None = None
    recurring_event_id: str | None = None
    original_start: EventTime | None = None
    calsync_id: str | None = None
    provider_event_id: str | None = None
    etag: str | None = None
    sequence: int = 0
    updated: datetime | None = None
    #: Google's ``eventType`` (`calsync.domain.event_types`), fixed at creation; a type
    #: calsync does not know is kept as Google spells it.
    event_type: str = EventType.DEFAULT
    #: That type's properties as Google spells them (``outOfOfficeProperties``, ...),
    #: `None` for types without any.
    type_properties: TypeProperties | None = None

    def __post_init__(self) -> None:
        if self.start.is_all_day != self.end.is_all_day:
            raise ValidationError("end", "start and end must both be dates or both date-times")
        if not self.start.is_all_day:
            if self.timezone is not None and self.timezone != self.start.timezone:
                raise ValidationError("timezone", "must be the start's time zone")
            object.__setattr__(self, "timezone", self.start.timezone)
        elif self.timezone is not None:
            zone(self.timezone)
        if self.updated is not None and self.updated.tzinfo is None:
            raise ValidationError("updated", "must be an aware datetime")
        object.__setattr__(self, "status", EventStatus(self.status))
        object.__setattr__(self, "transparency", Transparency(self.transparency))
        object.__setattr__(self, "visibility", Visibility(self.visibility))
        object.__setattr__(self, "recurrence", tuple(line.strip() for line in self.recurrence))
        object.__setattr__(self, "attendees", attendee_order(self.attendees))
        if not isinstance(self.metadata, Metadata):
            object.__setattr__(self, "metadata", Metadata(self.metadata))
        if self.organizer_email is not None:
            object.__setattr__(self, "organizer_email", self.organizer_email.strip().lower())
        if self.type_properties is not None and not isinstance(
            self.type_properties, TypeProperties
        ):
            object.__setattr__(self, "type_properties", TypeProperties(self.type_properties))

    @classmethod
    def trusted(cls, **values: Any) -> Event:
        """The event whose fields are exactly these, without `__post_init__`'s checks and
        normalisation: only for values a valid `Event` had, as calsync stored them (reading
        rows is the hot path of lists and pulls). Every field must be given; the store's
        round-trip tests check that it equals the validated construction."""
        if values.keys() != _EVENT_FIELDS:
            raise TypeError(f"Event.trusted needs exactly the fields {sorted(_EVENT_FIELDS)}")
        event = object.__new__(cls)
        event.__dict__.update(values)
        return event

    @property
    def all_day(self) -> bool:
        return self.start.is_all_day

    @property
    def is_recurring(self) -> bool:
        """Whether this is the master of a series."""
        return bool(self.recurrence)

    @property
    def is_exception(self) -> bool:
        """Whether this is a changed or cancelled instance of a series."""
        return self.recurring_event_id is not None

    @property
    def duration(self) -> timedelta:
        """End minus start: exact time for timed events, whole days for all-day ones."""
        if self.start.day is not None and self.end.day is not None:
            return self.end.day - self.start.day
        assert self.start.instant is not None
        assert self.end.instant is not None
        return self.end.instant - self.start.instant


_EVENT_FIELDS: Final = frozenset(f.name for f in fields(Event))
