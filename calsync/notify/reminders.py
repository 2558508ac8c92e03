"""Reminders: the due-time table (``notification_deliveries`` rows of kind ``reminder``).

For every event, every occurrence of a recurring series included, at each lead time and
through each of the owner's channels, there is one row whose ``dedupe_key`` is
``reminder|<event id>|<occurrence start, UTC>|<lead minutes>|<channel>`` (unique), due at
the occurrence's start minus the lead time. Rows are planned only for a rolling horizon
(48 hours by default): :func:`reschedule_reminders` replans one event when it changes and
:func:`refresh_reminders` (periodic) extends the horizon for every event.

Replanning keeps what is still right and never resends: a pending row whose occurrence,
lead time or channel no longer exists (the event moved, was cancelled, the user changed
their preferences) is deleted; a new one is inserted with ``ON CONFLICT DO NOTHING``, so a
key that was already sent is never sent again. Sent, failed and skipped rows are history
and stay. Rows are planned for occurrences that have not started yet; a pending row of an
occurrence that already started is kept and sent late if the event has not ended (see
:mod:`calsync.notify.deliveries`).

Reminders go to the owner of the event's row (whose calendar holds it). Attendees who use
calsync have their own copy of the event in their own calendar, with its own reminders.
All-day events begin at midnight in the event's zone (the calendar's), else the owner's.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.errors import ValidationError
from calsync.domain.models import Event, EventStatus
from calsync.domain.recurrence import expand
from calsync.notify.payloads import event_summary, instant_of, time_document
from calsync.notify.preferences import (
    DEFAULT_PREFERENCES,
    MAX_LEAD_MINUTES,
    Preferences,
    _from_row,
    load_preferences,
)
from calsync.store.events import any_of, to_event
from calsync.store.tables import Event as EventRow
from calsync.store.tables import NotificationDelivery, NotificationPreference, User, utcnow

__all__ = [
    "DEFAULT_HORIZON",
    "PlannedReminder",
    "exceptions_of",
    "plan_reminders",
    "refresh_reminders",
    "reminder_key",
    "reminder_row",
    "replan_many",
    "reschedule_reminders",
    "reschedule_user",
]

log = logging.getLogger(__name__)

DEFAULT_HORIZON: Final = timedelta(hours=48)
_MAX_INSTANCES: Final = 2000


@dataclass(frozen=True, slots=True)
class PlannedReminder:
    """One reminder row as it should be. ``creatable`` is False for an occurrence that has
    already started: an existing row for it stays, a missing one is not created."""

    dedupe_key: str
    channel: str
    lead_minutes: int
    occurrence_start: datetime
    occurrence_end: datetime
    due_at: datetime
    creatable: bool
    payload: dict[str, Any]


def reminder_key(event_id: uuid.UUID, occurrence_start: datetime, lead: int, channel: str) -> str:
    """The dedupe key of one reminder: exactly one send per key, ever."""
    moment = occurrence_start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"reminder|{event_id}|{moment}|{lead}|{channel}"


def plan_reminders(
    master: Event,
    exceptions: Sequence[Event] = (),
    *,
    event_id: uuid.UUID,
    leads: Sequence[int],
    channels: Sequence[str],
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
    day_zone: str = "UTC",
) -> list[PlannedReminder]:
    """The reminders of ``master`` (a single event or a series with its ``exceptions``)
    that are due by ``now + horizon`` for occurrences that have not ended.

    Pure. A recurrence calsync cannot expand yields no reminders (logged), never an error.
    """
    if master.status == EventStatus.CANCELLED or not leads or not channels:
        return []
    series_id = master.provider_event_id or str(event_id)
    uid = series_id
    window_end = now + horizon + timedelta(minutes=max(leads)) + timedelta(days=2)
    try:
        occurrences = expand(
            master,
            now - timedelta(days=2),
            window_end,
            exceptions,
            master_id=series_id,
            max_instances=_MAX_INSTANCES,
        )
    except (ValidationError, ValueError) as err:
        log.warning("no reminders for event %s: its recurrence cannot be expanded: %s", uid, err)
        return []
    zone_name = master.timezone or day_zone
    planned = []
    for occurrence in occurrences:
        start = instant_of(occurrence.start, zone_name)
        end = instant_of(occurrence.end, zone_name)
        if end <= now:
            continue
        summary = event_summary(occurrence, uid=uid)
        recurrence_id = occurrence.original_start if master.recurrence else None
        for lead in sorted(set(leads)):
            due = start - timedelta(minutes=lead)
            if due > now + horizon:
                continue
            payload = {
                "event": summary,
                "occurrence_start": start.isoformat(),
                "occurrence_end": end.isoformat(),
                "lead_minutes": lead,
                "recurrence_id": time_document(recurrence_id) if recurrence_id else None,
            }
            for channel in channels:
                planned.append(
                    PlannedReminder(
                        dedupe_key=reminder_key(event_id, start, lead, channel),
                        channel=channel,
                        lead_minutes=lead,
                        occurrence_start=start,
                        occurrence_end=end,
                        due_at=due,
                        creatable=start > now,
                        payload=payload,
                    )
                )
    return planned


def reschedule_reminders(
    session: Session,
    event_id: uuid.UUID,
    *,
    now: datetime | None = None,
    horizon: timedelta = DEFAULT_HORIZON,
) -> None:
    """Replan the reminders of the event ``event_id`` (or of its series, for an exception)
    within the caller's transaction. Safe to call for a deleted or unknown id (its pending
    reminders are removed) and as often as wanted. Does not commit."""
    now = now or utcnow()
    row = session.get(EventRow, event_id)
    if row is not None and row.recurring_event_id is not None:
        row = _master_of(session, row) or row
    if row is None:
        _apply(session, event_id, None, [], now, gone=True)
        return
    _reschedule_row(session, row, now=now, horizon=horizon, cache={})


def reschedule_user(
    session: Session,
    user_id: uuid.UUID,
    *,
    now: datetime | None = None,
    horizon: timedelta = DEFAULT_HORIZON,
) -> int:
    """Replan every upcoming event of ``user_id`` (after a change of preferences).
    Returns how many events were replanned. Does not commit."""
    now = now or utcnow()
    rows = session.scalars(_upcoming(now, horizon).where(EventRow.user_id == user_id)).all()
    cache: dict[uuid.UUID, tuple[Preferences, str]] = {}
    for row in rows:
        _reschedule_row(session, row, now=now, horizon=horizon, cache=cache)
    return len(rows)


def refresh_reminders(
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
    batch_size: int = 500,
) -> int:
    """Extend the planned reminders of every upcoming event to ``now + horizon``, with the
    same outcome as :func:`reschedule_reminders` for each of them.

    Set-based: events are taken in chunks of ``batch_size`` in id order (keyset, so each
    chunk is an index range scan whatever the table's size), and each chunk costs a few
    queries whatever its size (rows with owners' zones and preferences, series exceptions,
    pending reminders), then one delete, one batched update and one
    ``INSERT ... ON CONFLICT DO NOTHING`` of the missing rows; planning itself is pure
    Python. One transaction per chunk: a crash loses at most one chunk's work (the next
    run redoes it), and locks are held briefly. Safe to run on several schedulers at
    once: the unique dedupe key stays the guard against a second row for a reminder,
    rows being sent are skipped, and new rows are inserted in key order (two runs never
    wait on each other in opposite orders). Returns how many events were replanned.
    """
    done = 0
    after: uuid.UUID | None = None
    while True:
        with sessions.begin() as session:
            query = _UPCOMING_ROWS.where(_upcoming_condition(now, horizon))
            if after is not None:
                query = query.where(EventRow.id > after)
            rows = session.execute(query.order_by(EventRow.id).limit(batch_size)).all()
            cache: dict[uuid.UUID, tuple[Preferences, str]] = {}
            for row in rows:
                if row.user_id not in cache:
                    stored = row.NotificationPreference
                    prefs = _from_row(stored) if stored is not None else DEFAULT_PREFERENCES
                    cache[row.user_id] = (prefs, row.user_timezone or "UTC")
            replan_many(session, rows, cache, now=now, horizon=horizon)
        done += len(rows)
        if len(rows) < batch_size:
            return done
        after = rows[-1].id


def replan_many(
    session: Session,
    rows: Sequence[Any],
    owners: Mapping[uuid.UUID, tuple[Preferences, str]],
    *,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
    pending: Collection[uuid.UUID] | None = None,
) -> int:
    """:func:`reschedule_reminders` for each of ``rows`` (event rows, or result rows with
    the columns :func:`to_event` reads, of single events and series masters that are
    neither deleted nor cancelled), their owners' preferences and zones in ``owners``, in
    one read of the series' exceptions, one of the pending reminders, one delete, one
    batched update and one insert. ``pending``, when the caller knows it, names the only
    events that may have pending reminders (the read is then limited to them). Returns
    how many reminder rows it inserted (an insert that met an existing key counts too).
    Does not commit."""
    exceptions = exceptions_of(session, [row for row in rows if row.is_recurring])
    latest = now + horizon
    planned: dict[uuid.UUID, tuple[uuid.UUID, list[PlannedReminder]]] = {}
    for row in rows:
        prefs, user_zone = owners[row.user_id]
        leads = prefs.lead_times(row.reminders)
        if not row.is_recurring and (
            not leads or row.start_time - timedelta(minutes=max(leads), days=1) > latest
        ):
            # Nothing due within the horizon (a day's margin for all-day events, which
            # begin at midnight in any zone): no need to build the event to know it.
            planned[row.id] = (row.user_id, [])
            continue
        series = (row.calendar_id, row.google_event_id or str(row.id))
        planned[row.id] = (
            row.user_id,
            plan_reminders(
                to_event(row),
                exceptions.get(series, []) if row.is_recurring else [],
                event_id=row.id,
                leads=leads,
                channels=prefs.channels,
                now=now,
                horizon=horizon,
                day_zone=user_zone,
            ),
        )
    existing: dict[uuid.UUID, list[Any]] = {}
    replaced = list(planned) if pending is None else [i for i in planned if i in pending]
    for match in any_of(session, NotificationDelivery.event_id, replaced):
        for found in session.execute(_PENDING_ROWS.where(match)):
            existing.setdefault(found.event_id, []).append(found)
    stale: list[uuid.UUID] = []
    moved: list[dict[str, Any]] = []
    new: list[dict[str, Any]] = []
    for event_id, (user_id, plan) in planned.items():
        wanted = {p.dedupe_key: p for p in plan}
        pending = existing.get(event_id, [])
        stale.extend(
            r.id for r in pending if r.dedupe_key not in wanted and not _ended(r.payload, now)
        )
        for r in pending:
            p = wanted.get(r.dedupe_key)
            if p is not None and (r.payload != p.payload or r.due_at != p.due_at):
                moved.append({"_id": r.id, "payload": p.payload, "due_at": p.due_at})
        kept = {r.dedupe_key for r in pending}
        new.extend(
            reminder_row(event_id, user_id, p, now)
            for p in plan
            if p.creatable and p.dedupe_key not in kept
        )
    for match in any_of(session, NotificationDelivery.id, stale):
        session.execute(
            sa.delete(NotificationDelivery).where(
                NotificationDelivery.id.in_(
                    sa.select(NotificationDelivery.id)
                    .where(match, NotificationDelivery.status == "pending")
                    .with_for_update(skip_locked=True)
                )
            ),
            execution_options={"synchronize_session": False},
        )
    if moved:  # one executemany (a single round trip on PostgreSQL's pipeline)
        session.connection().execute(_MOVE_PENDING.values(updated_at=now), moved)
    if new:
        new.sort(key=lambda r: str(r["dedupe_key"]))  # one lock order for concurrent runs
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            insert(NotificationDelivery).on_conflict_do_nothing(index_elements=["dedupe_key"]),
            new,
        )
    return len(new)


def exceptions_of(
    session: Session, masters: Sequence[Any]
) -> dict[tuple[uuid.UUID, str], list[Event]]:
    """The exceptions of the series ``masters`` (rows), by calendar and series id, in one
    query per thousand series; deleted ones as cancelled (as :func:`_exceptions`)."""
    by_series = {(m.calendar_id, m.google_event_id or str(m.id)) for m in masters}
    found: dict[tuple[uuid.UUID, str], list[Event]] = {}
    series_ids = sorted({series_id for _, series_id in by_series})
    calendars = sorted({calendar_id for calendar_id, _ in by_series})
    for match in any_of(session, EventRow.recurring_event_id, series_ids):
        in_calendars = sa.or_(*any_of(session, EventRow.calendar_id, calendars))
        row: Any
        for row in session.execute(sa.select(*_EVENT_COLUMNS).where(match, in_calendars)):
            key = (row.calendar_id, row.recurring_event_id)
            if key not in by_series:
                continue
            event = to_event(row)
            if row.deleted_at is not None:
                event = dataclasses.replace(event, status=EventStatus.CANCELLED)
            found.setdefault(key, []).append(event)
    return found


def reminder_row(
    event_id: uuid.UUID, user_id: uuid.UUID, plan: PlannedReminder, now: datetime
) -> dict[str, Any]:
    """The ``notification_deliveries`` values of a new pending reminder."""
    return {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "event_id": event_id,
        "kind": "reminder",
        "channel": plan.channel,
        "occurrence_start": plan.occurrence_start,
        "lead_minutes": plan.lead_minutes,
        "dedupe_key": plan.dedupe_key,
        "status": "pending",
        "due_at": plan.due_at,
        "attempts": 0,
        "payload": plan.payload,
        "created_at": now,
        "updated_at": now,
    }


#: The columns of an event row that :func:`to_event` and the planner read (not the
#: base version and conflict documents, which can be large).
_EVENT_COLUMNS: Final = tuple(
    getattr(EventRow, attribute.key)
    for attribute in sa.inspect(EventRow).column_attrs
    if attribute.key not in ("base_version", "conflict")
)
#: Event rows with their owner's zone and stored preferences (conditions added per use).
_UPCOMING_ROWS: Final = (
    sa.select(*_EVENT_COLUMNS, User.timezone.label("user_timezone"), NotificationPreference)
    .join(User, User.id == EventRow.user_id)
    .outerjoin(NotificationPreference, NotificationPreference.user_id == EventRow.user_id)
)
#: The pending reminders (of the events the caller's condition picks).
_PENDING_ROWS: Final = sa.select(
    NotificationDelivery.id,
    NotificationDelivery.event_id,
    NotificationDelivery.dedupe_key,
    NotificationDelivery.due_at,
    NotificationDelivery.payload,
).where(NotificationDelivery.kind == "reminder", NotificationDelivery.status == "pending")
_deliveries = cast(sa.Table, NotificationDelivery.__table__)
_events = cast(sa.Table, EventRow.__table__)
#: A pending reminder's new payload and due time, unless a sender holds it right now
#: (locked: being sent; it was due, and the sender finishes it).
_MOVE_PENDING: Final = sa.update(_deliveries).where(
    _deliveries.c.id.in_(
        sa.select(_deliveries.c.id)
        .where(_deliveries.c.id == sa.bindparam("_id"), _deliveries.c.status == "pending")
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
)


def _upcoming_condition(now: datetime, horizon: timedelta) -> sa.ColumnElement[bool]:
    condition = _upcoming(now, horizon).whereclause
    assert condition is not None
    return condition


def _upcoming(now: datetime, horizon: timedelta) -> sa.Select[EventRow]:
    """Single events and series masters that may have a reminder due by the horizon."""
    return sa.select(EventRow).where(upcoming_where(now, _latest_start(now, horizon)))


def upcoming_params(now: datetime, horizon: timedelta) -> dict[str, datetime]:
    """The values of the parameters of `UPCOMING` (see there)."""
    return {"upcoming_now": now, "upcoming_latest_start": _latest_start(now, horizon)}


def _latest_start(now: datetime, horizon: timedelta) -> datetime:
    return now + horizon + timedelta(minutes=MAX_LEAD_MINUTES) + timedelta(days=1)


def upcoming_where(
    now: datetime | sa.BindParameter[datetime], latest_start: datetime | sa.BindParameter[datetime]
) -> sa.ColumnElement[bool]:
    """The condition of `_upcoming`, for the instant `now` and the latest start it covers
    (values, or parameters for a statement built once)."""
    events = _events  # its columns: usable in Core and ORM statements alike
    return sa.and_(
        events.c.deleted_at.is_(None),
        events.c.status != EventStatus.CANCELLED.value,
        events.c.recurring_event_id.is_(None),
        events.c.start_time < latest_start,
        sa.or_(
            sa.and_(events.c.is_recurring.is_(False), events.c.end_time > now),
            sa.and_(
                events.c.is_recurring.is_(True),
                sa.or_(events.c.recurrence_end.is_(None), events.c.recurrence_end > now),
            ),
        ),
    )


#: `_upcoming`'s condition with the parameters ``upcoming_now`` and
#: ``upcoming_latest_start`` (`upcoming_params`), for statements built once.
UPCOMING: Final = upcoming_where(
    sa.bindparam("upcoming_now", type_=_events.c.end_time.type),
    sa.bindparam("upcoming_latest_start", type_=_events.c.start_time.type),
)


def _master_of(session: Session, exception: EventRow) -> EventRow | None:
    return session.scalar(
        sa.select(EventRow).where(
            EventRow.calendar_id == exception.calendar_id,
            EventRow.google_event_id == exception.recurring_event_id,
        )
    )


def _reschedule_row(
    session: Session,
    row: EventRow,
    *,
    now: datetime,
    horizon: timedelta,
    cache: dict[uuid.UUID, tuple[Preferences, str]],
) -> None:
    if row.deleted_at is not None or row.status == EventStatus.CANCELLED.value:
        _apply(session, row.id, row.user_id, [], now, gone=True)
        return
    if row.user_id not in cache:
        user_zone = session.scalar(sa.select(User.timezone).where(User.id == row.user_id))
        cache[row.user_id] = (load_preferences(session, row.user_id), user_zone or "UTC")
    prefs, user_zone = cache[row.user_id]
    master = to_event(row)
    exceptions = _exceptions(session, row) if row.is_recurring else []
    planned = plan_reminders(
        master,
        exceptions,
        event_id=row.id,
        leads=prefs.lead_times(row.reminders),
        channels=prefs.channels,
        now=now,
        horizon=horizon,
        day_zone=user_zone,
    )
    _apply(session, row.id, row.user_id, planned, now)


def _exceptions(session: Session, master: EventRow) -> list[Event]:
    series_id = master.google_event_id or str(master.id)
    rows = session.scalars(
        sa.select(EventRow).where(
            EventRow.calendar_id == master.calendar_id,
            EventRow.recurring_event_id == series_id,
        )
    )
    found = []
    for row in rows:
        event = to_event(row)
        if row.deleted_at is not None:
            event = dataclasses.replace(event, status=EventStatus.CANCELLED)
        found.append(event)
    return found


def _apply(
    session: Session,
    event_id: uuid.UUID,
    user_id: uuid.UUID | None,
    planned: Sequence[PlannedReminder],
    now: datetime,
    *,
    gone: bool = False,
) -> None:
    """Make the pending reminder rows of ``event_id`` match ``planned``.

    Pending rows of occurrences that have ended are left to the sender, which records
    them as skipped, unless the event is ``gone`` (deleted or cancelled). Rows a sender
    holds locked right now (being sent) are skipped, not waited for: they were due, and
    the sender finishes them.
    """
    wanted = {p.dedupe_key: p for p in planned}
    pending = session.execute(
        sa.select(
            NotificationDelivery.id,
            NotificationDelivery.dedupe_key,
            NotificationDelivery.due_at,
            NotificationDelivery.payload,
        ).where(
            NotificationDelivery.event_id == event_id,
            NotificationDelivery.kind == "reminder",
            NotificationDelivery.status == "pending",
        )
    ).all()
    stale = [
        row.id
        for row in pending
        if row.dedupe_key not in wanted and (gone or not _ended(row.payload, now))
    ]
    if stale:
        session.execute(
            sa.delete(NotificationDelivery).where(
                NotificationDelivery.id.in_(_unlocked_pending(stale))
            ),
            execution_options={"synchronize_session": False},
        )
    for row in pending:
        plan = wanted.get(row.dedupe_key)
        if plan is not None and (row.payload != plan.payload or row.due_at != plan.due_at):
            session.execute(
                sa.update(NotificationDelivery)
                .where(NotificationDelivery.id.in_(_unlocked_pending([row.id])))
                .values(payload=plan.payload, due_at=plan.due_at, updated_at=now),
                execution_options={"synchronize_session": False},
            )
    existing = {row.dedupe_key for row in pending}
    new = [p for p in planned if p.creatable and p.dedupe_key not in existing]
    if new and user_id is not None:
        _insert_new(session, event_id, user_id, new, now)


def _ended(payload: dict[str, Any] | None, now: datetime) -> bool:
    end = (payload or {}).get("occurrence_end")
    return isinstance(end, str) and datetime.fromisoformat(end) <= now


def _unlocked_pending(ids: list[uuid.UUID]) -> sa.Select[uuid.UUID]:
    return (
        sa.select(NotificationDelivery.id)
        .where(NotificationDelivery.id.in_(ids), NotificationDelivery.status == "pending")
        .with_for_update(skip_locked=True)
    )


def _insert_new(
    session: Session,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    planned: Sequence[PlannedReminder],
    now: datetime,
) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = [
        {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "event_id": event_id,
            "kind": "reminder",
            "channel": p.channel,
            "occurrence_start": p.occurrence_start,
            "lead_minutes": p.lead_minutes,
            "dedupe_key": p.dedupe_key,
            "status": "pending",
            "due_at": p.due_at,
            "attempts": 0,
            "payload": p.payload,
            "created_at": now,
            "updated_at": now,
        }
        for p in planned
    ]
    statement = insert(NotificationDelivery).on_conflict_do_nothing(index_elements=["dedupe_key"])
    session.execute(statement, values)
