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
from datetime import datetime, timedelta
from typing import Any, Final

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
from calsync.notify.reminder_keys import reminder_key, series_shared_starts
from calsync.store import deliveries, upcoming
from calsync.store.events import to_event
from calsync.store.tables import Event as EventRow
from calsync.store.tables import utcnow

__all__ = [
    "DEFAULT_HORIZON",
    "PlannedReminder",
    "exceptions_of",
    "latest_start",
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
    window_start = now - timedelta(days=2)
    window_end = now + horizon + timedelta(minutes=max(leads)) + timedelta(days=2)
    try:
        occurrences = expand(
            master,
            window_start,
            window_end,
            exceptions,
            master_id=series_id,
            max_instances=_MAX_INSTANCES,
        )
    except (ValidationError, ValueError) as err:
        log.warning(
            "no reminders for event %s: its recurrence cannot be expanded: %s", series_id, err
        )
        return []
    zone_name = master.timezone or day_zone
    starts = [instant_of(occurrence.start, zone_name) for occurrence in occurrences]
    shared = series_shared_starts(
        master, exceptions, (occurrences, starts), series_id, zone_name, window_start
    )
    planned: list[PlannedReminder] = []
    for index, (occurrence, start) in enumerate(zip(occurrences, starts, strict=True)):
        end = instant_of(occurrence.end, zone_name)
        if end <= now:
            continue
        recurrence_id = occurrence.original_start if master.recurrence else None
        planned += _occurrence_reminders(
            _Occurrence(
                event_id, start, end, event_summary(occurrence, uid=series_id), shared.get(index)
            ),
            time_document(recurrence_id) if recurrence_id else None,
            leads=leads,
            channels=channels,
            now=now,
            horizon=horizon,
        )
    return planned


@dataclass(frozen=True, slots=True)
class _Occurrence:
    """What a reminder says of its occurrence: the event, its instants, its summary, and
    for one of several occurrences that begin at the same instant, its original start
    (`shared_starts`)."""

    event_id: uuid.UUID
    start: datetime
    end: datetime
    summary: dict[str, Any]
    original: datetime | None = None


def _occurrence_reminders(
    occurrence: _Occurrence,
    recurrence_id: dict[str, str] | None,
    *,
    leads: Sequence[int],
    channels: Sequence[str],
    now: datetime,
    horizon: timedelta,
) -> list[PlannedReminder]:
    """One occurrence's reminders due by ``now + horizon``: one per lead time (shortest
    first) and channel; creatable only while the occurrence has not started."""
    planned: list[PlannedReminder] = []
    start = occurrence.start
    for lead in sorted(set(leads)):
        due = start - timedelta(minutes=lead)
        if due > now + horizon:
            continue
        payload = {
            "event": occurrence.summary,
            "occurrence_start": start.isoformat(),
            "occurrence_end": occurrence.end.isoformat(),
            "lead_minutes": lead,
            "recurrence_id": recurrence_id,
        }
        planned.extend(
            PlannedReminder(
                dedupe_key=reminder_key(
                    occurrence.event_id, start, lead, channel, original=occurrence.original
                ),
                channel=channel,
                lead_minutes=lead,
                occurrence_start=start,
                occurrence_end=occurrence.end,
                due_at=due,
                creatable=start > now,
                payload=payload,
            )
            for channel in channels
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
    row = upcoming.event(session, event_id)
    if row is not None and row.recurring_event_id is not None:
        row = upcoming.master_of(session, row) or row
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
    rows = upcoming.upcoming_of_user(session, user_id, now, latest_start(now, horizon))
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
    rows being sent are waited for, and rows are locked in id order and new rows
    inserted in key order (two runs never wait on each other in opposite orders).
    Returns how many events were replanned.
    """
    done = 0
    after: uuid.UUID | None = None
    while True:
        with sessions.begin() as session:
            latest = latest_start(now, horizon)
            rows = upcoming.page(session, now, latest, after=after, limit=batch_size)
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
    planned = _plan_rows(session, rows, owners, now=now, horizon=horizon)
    existing: dict[uuid.UUID, list[Any]] = {}
    replaced = list(planned) if pending is None else [i for i in planned if i in pending]
    for found in deliveries.pending_reminders(session, replaced):
        existing.setdefault(found.event_id, []).append(found)
    stale: list[uuid.UUID] = []
    moved: list[dict[str, Any]] = []
    new: list[dict[str, Any]] = []
    for event_id, (user_id, plan) in planned.items():
        wanted = {p.dedupe_key: p for p in plan}
        rows_now = existing.get(event_id, [])
        stale.extend(
            r.id for r in rows_now if r.dedupe_key not in wanted and not _ended(r.payload, now)
        )
        for r in rows_now:
            p = wanted.get(r.dedupe_key)
            if p is not None and (r.payload != p.payload or r.due_at != p.due_at):
                moved.append({"_id": r.id, "payload": p.payload, "due_at": p.due_at})
        kept = {r.dedupe_key for r in rows_now}
        new.extend(
            reminder_row(event_id, user_id, p, now)
            for p in plan
            if p.creatable and p.dedupe_key not in kept
        )
    deliveries.lock_pending(session, [*stale, *(m["_id"] for m in moved)])
    deliveries.delete_pending(session, stale)
    deliveries.move_pending(session, moved, now=now)
    new.sort(key=lambda r: str(r["dedupe_key"]))  # one lock order for concurrent runs
    deliveries.add_pending(session, new)
    return len(new)


def _plan_rows(
    session: Session,
    rows: Sequence[Any],
    owners: Mapping[uuid.UUID, tuple[Preferences, str]],
    *,
    now: datetime,
    horizon: timedelta,
) -> dict[uuid.UUID, tuple[uuid.UUID, list[PlannedReminder]]]:
    """`plan_reminders` for each of `rows` (as `replan_many` takes them): ``{event id:
    (owner, planned reminders)}``, in `rows`' order, with one read of the exceptions."""
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
    return planned


def exceptions_of(
    session: Session, masters: Sequence[Any]
) -> dict[tuple[uuid.UUID, str], list[Event]]:
    """The exceptions of the series ``masters`` (rows), by calendar and series id, in one
    query per thousand series; deleted ones as cancelled (as :func:`_exceptions`)."""
    by_series = {(m.calendar_id, m.google_event_id or str(m.id)) for m in masters}
    found: dict[tuple[uuid.UUID, str], list[Event]] = {}
    series_ids = sorted({series_id for _, series_id in by_series})
    calendars = sorted({calendar_id for calendar_id, _ in by_series})
    row: Any
    for row in upcoming.exceptions_of_series(session, series_ids, calendars):
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


def latest_start(now: datetime, horizon: timedelta) -> datetime:
    """The latest start of an event that may have a reminder due by ``now + horizon``
    (the longest lead time, and a day for all-day events in any zone): what
    `calsync.store.upcoming` reads as upcoming."""
    return now + horizon + timedelta(minutes=MAX_LEAD_MINUTES) + timedelta(days=1)


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
        user_zone = upcoming.user_timezone(session, row.user_id)
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
    found = []
    for row in upcoming.exception_rows(session, master):
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
    holds locked right now (being sent) are waited for, not skipped: its transaction may
    end with the row still pending (decision JP1).
    """
    wanted = {p.dedupe_key: p for p in planned}
    pending = list(deliveries.pending_reminders(session, [event_id]))
    stale = [
        row.id
        for row in pending
        if row.dedupe_key not in wanted and (gone or not _ended(row.payload, now))
    ]
    moved = []
    for row in pending:
        plan = wanted.get(row.dedupe_key)
        if plan is not None and (row.payload != plan.payload or row.due_at != plan.due_at):
            moved.append({"_id": row.id, "payload": plan.payload, "due_at": plan.due_at})
    deliveries.lock_pending(session, [*stale, *(m["_id"] for m in moved)])
    deliveries.delete_pending(session, stale)
    deliveries.move_pending(session, moved, now=now)
    existing = {row.dedupe_key for row in pending}
    new = [p for p in planned if p.creatable and p.dedupe_key not in existing]
    if new and user_id is not None:
        deliveries.add_pending(session, [reminder_row(event_id, user_id, p, now) for p in new])


def _ended(payload: dict[str, Any] | None, now: datetime) -> bool:
    end = (payload or {}).get("occurrence_end")
    return isinstance(end, str) and datetime.fromisoformat(end) <= now
