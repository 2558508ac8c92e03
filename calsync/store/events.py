"""The events repository: rows of ``events`` and ``event_attendees`` <-> domain `Event`s.

Rows never leave ``calsync.store``; callers get `StoredEvent` values (the domain `Event`
plus calsync's bookkeeping: local id, calendar, owner, sync state, version). Writes go
through `event_columns`, which is the one mapping from an `Event` to column values, so
that the API, the pull and the push store events the same way.

Column conventions: an all-day start/end is stored as midnight UTC of its date with
``all_day`` set; a timed one as its UTC instant with the zone in ``timezone``. An all-day
event without a zone stores ``timezone`` as the empty string. ``recurrence_end`` is an
upper bound of the series' last end (`calsync.domain.recurrence.series_end`), ``NULL``
for a series without end, so range queries can skip series that ended before a window.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import QueryableAttribute, Session

from calsync.domain.codec import (
    conference_from_document,
    props_to_document,
)
from calsync.domain.errors import ValidationError
from calsync.domain.event_props import Transparency, Visibility
from calsync.domain.event_types import TypeProperties
from calsync.domain.models import (
    EMPTY_METADATA,
    Attendee,
    Event,
    EventStatus,
    EventTime,
    Metadata,
    Reminder,
    ReminderMethod,
    Reminders,
    ResponseStatus,
    attendee_order,
)
from calsync.domain.recurrence import series_end
from calsync.store.bases import base_of
from calsync.store.chunks import chunks
from calsync.store.tables import Event as EventRow
from calsync.store.tables import EventAttendee, User

__all__ = [
    "EVENT_COLUMNS",
    "KEEP_UPDATED_AT",
    "STORED_COLUMNS",
    "UNRECORDED",
    "EventRecord",
    "StoredEvent",
    "any_of",
    "attendees_by_event",
    "event_columns",
    "insert_attendees",
    "load_stored",
    "reminders_document",
    "replace_attendees",
    "select_stored",
    "stored_event",
    "stored_table_columns",
    "take_attendees",
    "to_event",
]

_events = cast(sa.Table, EventRow.__table__)

WRITTEN_KEY: Final = "calsync.events_written"
"""The `Session.info` flag of a transaction that may have written ``events`` rows: the
read model's upkeep runs before it commits (`calsync.store.db.make_session_factory`)."""

UNRECORDED: Final = {"calsync_unrecorded": True}
"""Execution options of a write the read model's triggers cannot record: one to a table
they do not watch (only ``events`` and ``event_attendees`` have them), or to ``events``
columns they do not watch (a push lease). It leaves `WRITTEN_KEY` unset, so a transaction
of such writes alone reads no records before its commit (decision IB2)."""

#: For an UPDATE of event rows that records bookkeeping - a push lease, Google's answer,
#: a sync state - and not a change of the event: ``updated_at`` is when the event last
#: changed, which `last_updated_wins` compares with Google's update time, so such an
#: UPDATE keeps it (the column's update default would move it to the moment of the push).
KEEP_UPDATED_AT: Final = {"updated_at": _events.c.updated_at}


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredEvent:
    """One event as calsync holds it: the domain value plus local bookkeeping.

    `sync_state` is ``synced``, ``pending`` (local edits not yet on Google), ``conflict``
    (a manual-policy conflict awaits the user) or ``error`` (`sync_error` says why).
    `version` grows with every local change; the API's etag is derived from it.
    """

    id: uuid.UUID
    calendar_id: uuid.UUID
    user_id: uuid.UUID
    event: Event
    sync_state: str
    sync_error: str | None
    conflict: dict[str, Any] | None
    version: int
    base: Event | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    #: The row is its own base (`base` is `event`, `calsync.store.bases`).
    base_is_row: bool = False

    @property
    def etag(self) -> str:
        """The API's strong etag of this version of the event."""
        return f'"{self.id.hex[:12]}-{self.version}"'


def _day_instant(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _time(instant: datetime, zone_name: str | None, all_day: bool) -> EventTime:
    """The value stored as `instant` (UTC, as `UTCDateTime` reads it) in `zone_name`."""
    if all_day:
        return EventTime.trusted(instant.astimezone(UTC).date(), None, None)
    return EventTime.trusted(None, instant.astimezone(UTC), zone_name or "UTC")


def _instant(value: EventTime) -> datetime:
    if value.day is not None:
        return _day_instant(value.day)
    assert value.instant is not None
    return value.instant


EVENT_COLUMNS: Final = (
    "google_event_id",
    "title",
    "description",
    "location",
    "category",
    "start_time",
    "end_time",
    "timezone",
    "end_timezone",
    "all_day",
    "is_recurring",
    "recurrence_rule",
    "recurrence_end",
    "recurring_event_id",
    "original_start_time",
    "original_start_timezone",
    "status",
    "organizer_email",
    "etag",
    "sequence",
    "reminders",
    "metadata",
    "remote_updated_at",
    "event_type",
    "type_properties",
    "transparency",
    "visibility",
    "color_id",
    "conference",
)
"""The column names `event_columns` gives values for, in its order."""


def event_columns(event: Event) -> dict[str, Any]:
    """The ``events`` column values (by column name) that store `event`'s fields.

    Covers every field of the domain value except attendees (`replace_attendees`) and
    identity (``id``, ``calendar_id``, ``user_id``), which the caller sets. An invalid
    recurrence (Google may hold rules calsync would refuse) stores no ``recurrence_end``,
    which range queries read as "no end".
    """
    end_bound = None
    if event.recurrence:
        with contextlib.suppress(ValidationError):
            end_bound = series_end(event)
    original = event.original_start
    return {
        "google_event_id": event.provider_event_id,
        "title": event.title,
        "description": event.description,
        "location": event.location,
        "category": event.category,
        "start_time": _instant(event.start),
        "end_time": _instant(event.end),
        "timezone": event.timezone or "",
        "end_timezone": event.end.timezone if event.end.timezone != event.timezone else None,
        "all_day": event.all_day,
        "is_recurring": event.is_recurring,
        "recurrence_rule": "\n".join(event.recurrence) or None,
        "recurrence_end": end_bound,
        "recurring_event_id": event.recurring_event_id,
        "original_start_time": _instant(original) if original is not None else None,
        "original_start_timezone": original.timezone if original is not None else None,
        "status": event.status.value,
        "organizer_email": event.organizer_email,
        "etag": event.etag,
        "sequence": event.sequence,
        "reminders": reminders_document(event.reminders),
        "metadata": dict(event.metadata.items()) if event.metadata else {},
        "remote_updated_at": event.updated,
        **type_columns(event),
        **_props_columns(event),
    }


def type_columns(event: Event) -> dict[str, Any]:
    """The ``event_type`` and ``type_properties`` values that store `event`'s type."""
    properties = event.type_properties
    return {
        "event_type": str(event.event_type),
        "type_properties": properties.to_json() if properties is not None else None,
    }


def _props_columns(event: Event) -> dict[str, Any]:
    """The columns of transparency, visibility, colour and conference: their values as
    the event's JSON document holds them."""
    return props_to_document(event)


_TRANSPARENCIES: Final = {value.value: value for value in Transparency}
_VISIBILITIES: Final = {value.value: value for value in Visibility}


def _props(row: EventRecord) -> dict[str, Any]:
    """The fields `_props_columns` stores, as `to_event` gives them."""
    return {
        "transparency": _TRANSPARENCIES[row.transparency],
        "visibility": _VISIBILITIES[row.visibility],
        "color_id": row.color_id,
        "conference": conference_from_document(row.conference) if row.conference else None,
    }


def reminders_document(reminders: Reminders) -> dict[str, Any]:
    """What ``events.reminders`` stores for `reminders` (a new dict each time)."""
    return {
        "use_default": reminders.use_default,
        "overrides": [[r.minutes, r.method.value] for r in reminders.overrides]
        if reminders.overrides
        else [],
    }


def to_event(row: EventRecord, attendees: Iterable[EventAttendee] = ()) -> Event:
    """The domain value a row (and its attendee rows) stores.

    Built with `Event.trusted`: every row was written by `event_columns` from a valid
    `Event`, so the checks are skipped and only the normalisation a row does not already
    hold is done here (attendee order; tested against the validated construction)."""
    original: EventTime | None = None
    if row.original_start_time is not None:
        timed = row.original_start_timezone is not None
        original = _time(row.original_start_time, row.original_start_timezone, not timed)
    start = _time(row.start_time, row.timezone, row.all_day)
    people = attendee_order(
        Attendee(
            email=a.email,
            display_name=a.display_name,
            response_status=ResponseStatus(a.response_status),
            optional=a.optional,
            organizer=a.is_organizer,
        )
        for a in attendees
    )
    return Event.trusted(
        title=row.title,
        description=row.description or "",
        location=row.location or "",
        category=row.category,
        start=start,
        end=_time(row.end_time, row.end_timezone or row.timezone, row.all_day),
        timezone=(row.timezone or None) if row.all_day else start.timezone,
        recurrence=tuple(line.strip() for line in row.recurrence_rule.split("\n"))
        if row.recurrence_rule
        else (),
        attendees=people,
        reminders=_reminders(row.reminders or {}),
        metadata=Metadata(row.app_metadata) if row.app_metadata else EMPTY_METADATA,
        status=EventStatus(row.status),
        organizer_email=row.organizer_email,
        recurring_event_id=row.recurring_event_id,
        original_start=original,
        calsync_id=str(row.id),
        provider_event_id=row.google_event_id,
        etag=row.etag,
        sequence=row.sequence,
        updated=row.remote_updated_at,
        event_type=row.event_type,
        type_properties=TypeProperties(row.type_properties)
        if row.type_properties is not None
        else None,
        **_props(row),
    )


_DEFAULT_REMINDERS: Final = Reminders()


def _reminders(stored: Mapping[str, Any]) -> Reminders:
    """The reminders ``events.reminders`` stores (one shared value for the default)."""
    use_default = bool(stored.get("use_default", True))
    overrides = stored.get("overrides") or ()
    if use_default and not overrides:
        return _DEFAULT_REMINDERS
    return Reminders(
        use_default=use_default,
        overrides=tuple(Reminder(int(m), ReminderMethod(method)) for m, method in overrides),
    )


EventRecord = EventRow | sa.Row[Any]
"""An ``events`` row: the ORM instance, or a Core row of `STORED_COLUMNS` (whose fields
carry the same names), which reads several times faster and is all a reader needs."""

STORED_COLUMNS: Final = tuple(
    getattr(EventRow, attribute.key)
    for attribute in sa.inspect(EventRow).column_attrs
    if attribute.key not in ("ical_uid", "push_lease_until")
)
"""The columns `stored_event` reads, as ORM attributes (result rows name them so)."""


def stored_table_columns(*, without: Collection[str] = ()) -> tuple[sa.Label[Any], ...]:
    """`STORED_COLUMNS` but those whose names are in `without`, as the table's columns
    labelled with the ORM attribute names: for plain Core statements (no ORM
    compilation per execution) whose rows `to_event` and `stored_event` read."""
    return tuple(
        _events.c[column.expression.name].label(column.key)
        for column in STORED_COLUMNS
        if column.key not in without
    )


def select_stored() -> sa.Select[Any]:
    """``SELECT`` of `STORED_COLUMNS`, for `stored_event` to map each result row: no ORM
    instance is built (nor enters the session), so read-only paths should prefer it."""
    return sa.select(*STORED_COLUMNS)


def stored_event(
    row: EventRecord, attendees: Iterable[EventAttendee] = (), *, with_base: bool = True
) -> StoredEvent:
    """The `StoredEvent` of a row and its attendee rows; without its `base` (the last
    agreed version, which only sync reads) when `with_base` is false: the row need not
    hold ``base_version`` then. A row that is its own base gives its event as the base."""
    event = to_event(row, attendees)
    base, own = base_of(row.base_version if with_base else None, event)
    return StoredEvent(
        id=row.id,
        calendar_id=row.calendar_id,
        user_id=row.user_id,
        event=event,
        sync_state=row.sync_state,
        sync_error=row.sync_error,
        conflict=row.conflict,
        version=row.version,
        base=base,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
        base_is_row=own,
    )


def attendees_by_event(
    session: Session, event_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[EventAttendee]]:
    """The attendee rows of each of `event_ids` (events without any are absent)."""
    found: dict[uuid.UUID, list[EventAttendee]] = {}
    for condition in any_of(session, EventAttendee.event_id, event_ids):
        rows = session.scalars(
            sa.select(EventAttendee).where(condition).order_by(EventAttendee.email)
        )
        for row in rows:
            found.setdefault(row.event_id, []).append(row)
    return found


def load_stored(session: Session, event_id: uuid.UUID) -> StoredEvent | None:
    """The event with local id `event_id`, deleted or not, or `None`."""
    row = session.get(EventRow, event_id)
    if row is None:
        return None
    return stored_event(row, attendees_by_event(session, [row.id]).get(row.id, ()))


def replace_attendees(
    session: Session, event_ids_and_attendees: Sequence[tuple[uuid.UUID, Sequence[Attendee]]]
) -> None:
    """Make the attendee rows of each event exactly the given attendees.

    Attendees whose email belongs to a calsync user are linked to that user, so that the
    user sees the invitation. Works in bulk: one delete and one insert per call.
    """
    if not event_ids_and_attendees:
        return
    event_ids = [event_id for event_id, _ in event_ids_and_attendees]
    for condition in any_of(session, EventAttendee.event_id, event_ids):
        session.execute(sa.delete(EventAttendee).where(condition))
    insert_attendees(session, event_ids_and_attendees)


def take_attendees(session: Session, event_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    """Delete the attendee rows of `event_ids` and return them, by event and in email
    order (what `attendees_by_event` would have read), in one statement: for callers
    about to write the events' new attendees (`insert_attendees`). The rows returned
    have the attributes of `EventAttendee` that `to_event` reads."""
    found: dict[uuid.UUID, list[Any]] = {}
    if not event_ids:
        return found
    if session.get_bind().dialect.name == "postgresql":
        results = [session.execute(_PG_TAKE_ATTENDEES, {"event_ids": list(event_ids)})]
    else:
        results = [
            session.execute(sa.delete(_attendees).where(condition).returning(*_attendees.c))
            for condition in any_of(session, _attendees.c.event_id, event_ids)
        ]
    for result in results:
        for row in result:
            found.setdefault(row.event_id, []).append(row)
    for rows in found.values():
        rows.sort(key=lambda row: row.email)
    return found


_attendees = cast(sa.Table, EventAttendee.__table__)
#: `take_attendees` on PostgreSQL, built once (the ids are one array parameter).
_PG_TAKE_ATTENDEES: Final = (
    sa.delete(_attendees)
    .where(
        _attendees.c.event_id
        == sa.any_(sa.bindparam("event_ids", type_=postgresql.ARRAY(_attendees.c.event_id.type)))
    )
    .returning(*_attendees.c)
)


def insert_attendees(
    session: Session, event_ids_and_attendees: Sequence[tuple[uuid.UUID, Sequence[Attendee]]]
) -> None:
    """Add the attendee rows of events that have none yet (new events): what
    `replace_attendees` does without its delete."""
    emails = {a.email for _, attendees in event_ids_and_attendees for a in attendees}
    users: dict[str, uuid.UUID] = {}
    if emails:
        for email, user_id in session.execute(
            sa.select(User.email, User.id).where(User.email.in_(sorted(emails)))
        ):
            users[email] = user_id
    rows = [
        {
            "id": uuid.uuid4(),
            "event_id": event_id,
            "user_id": users.get(a.email),
            "email": a.email,
            "display_name": a.display_name,
            "response_status": a.response_status.value,
            "optional": a.optional,
            "is_organizer": a.organizer,
        }
        for event_id, attendees in event_ids_and_attendees
        for a in attendees
    ]
    if rows:
        session.execute(sa.insert(EventAttendee), rows)


def any_of(
    session: Session,
    column: sa.ColumnElement[Any] | QueryableAttribute[Any],
    values: Sequence[Any],
) -> list[sa.ColumnElement[bool]]:
    """Conditions that together select the rows whose `column` is one of `values` (none
    for no values): on PostgreSQL one ``column = ANY(array)`` with a single parameter,
    whose statement is the same whatever the number of values (no long ``IN`` lists to
    render and parse); elsewhere one ``IN`` per chunk of values."""
    if not values:
        return []
    if isinstance(column, QueryableAttribute):
        column = column.expression
    if session.get_bind().dialect.name == "postgresql":
        array = sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return [column == sa.any_(array)]
    return [column.in_(chunk) for chunk in chunks(values)]
