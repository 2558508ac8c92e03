"""The steps the write use cases (`calsync.events.writes`, `calsync.events.splits`) are
made of: insert or save an event row, add the outbox row the push acts on, record the
change notice and replan reminders, cancel an instance, delete a series.

Each step runs inside the caller's transaction and talks to nobody but the database.
A step that changes a row locks it first and checks the caller's ``If-Match`` again on
the row as locked (`check_etag`): a write of the same version that committed in between
turns this one into `Stale`, never an overwrite.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from calsync.domain.accounts import UserAccount
from calsync.domain.errors import FieldErrors, Forbidden, NotFound, Stale, ValidationError
from calsync.domain.event_ids import client_event_id
from calsync.domain.event_types import TypeProblem, update_problems
from calsync.domain.models import Event, EventStatus
from calsync.domain.recurrence import instance_id
from calsync.events.changes_applied import apply_changes
from calsync.events.changes_input import EventChanges
from calsync.events.read_model import series_id_of
from calsync.events.targets import InstanceRef
from calsync.events.views import EventView
from calsync.notify.on_event_change import (
    EventChange,
    events_changed,
    plan_new_single,
    reminder_candidates,
    reschedule_many,
    reschedule_reminders,
)
from calsync.store import event_changes, outbox
from calsync.store.calendar_views import CalendarView, calendar_of
from calsync.store.event_queries import exceptions_of
from calsync.store.events import StoredEvent

__all__ = [
    "Scope",
    "WriteResult",
    "cancel_exception",
    "check_etag",
    "delete_series",
    "insert_event",
    "insert_exception",
    "notify",
    "plan_new_reminders",
    "queue",
    "refuse",
    "save",
]


class Scope(StrEnum):
    """What a write on an instance id covers."""

    THIS = "this"
    FOLLOWING = "following"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The view to answer with (`None` for deletes) and the events to push."""

    view: EventView | None
    pushed: tuple[uuid.UUID, ...]


def insert_event(
    session: Session,
    account: UserAccount,
    calendar: CalendarView,
    event: Event,
    event_id: uuid.UUID,
    *,
    now: datetime,
    operation: str = "insert",
    provider_id: str | None = None,
    notice: tuple[Event | None, Event | None] | None = None,
    base: Event | None = None,
    owner: uuid.UUID | None = None,
) -> StoredEvent:
    """Store `event` as the new row `event_id` in `calendar`, queued for the push.

    A new event gets calsync's own provider id (`client_event_id`) unless `provider_id`
    names the one it has (an instance's); `notice` is the change notice's before and
    after (default: a new event), `base` the version Google already has, if any;
    `owner` the calendar's owner when the caller knows it (read otherwise)."""
    organizer = calendar.provider_calendar_id
    event = dataclasses.replace(
        event,
        calsync_id=str(event_id),
        provider_event_id=provider_id or client_event_id(event_id),
        organizer_email=organizer if "@" in organizer else account.email,
        etag=None,
        sequence=0,
        updated=None,
    )
    # a new event's Meet request carries the event's deterministic Google id (decisions P3)
    event = _conference_requested(event, event.provider_event_id or str(event_id))
    stored = event_changes.insert_local(
        session,
        event_id=event_id,
        user_id=owner or _calendar_owner(session, calendar),
        calendar_id=calendar.id,
        event=event,
        now=now,
        base=base,
    )
    queue(session, stored, operation, now=now)
    if notice is None:  # a new event: its reminders are planned from the values in hand
        notify(
            session,
            account,
            None,
            stored.event,
            event_id,
            now=now,
            owner=stored.user_id,
            new=stored,
        )
    else:
        notify(session, account, *notice, event_id, now=now, owner=stored.user_id)
    return stored


def plan_new_reminders(session: Session, stored: StoredEvent, *, now: datetime) -> None:
    """Plan the reminders of `stored`, a new event (not an exception) this transaction has
    just inserted with a fresh id: the outcome of `reschedule_reminders`, found from the
    values in hand (decision HT1). A new id has no pending reminder, so only an event
    `reminder_candidates` picks (one that may have a reminder due within the horizon) is
    planned, by `reschedule_many`; for any other nothing is read, or only the owner's
    preferences (an exception is always picked: its series is replanned). A timed
    single is planned by `plan_new_single` (decision IF1: its row and its owner's zone
    are not read, and the preferences once)."""
    event = stored.event
    single = not event.recurrence and event.recurring_event_id is None
    if single and event.start.instant is not None:
        plan_new_single(session, stored.id, event, user_id=stored.user_id, now=now)
        return
    picked = reminder_candidates(
        session, [(stored.id, stored.event)], user_id=stored.user_id, now=now
    )
    if picked:
        reschedule_many(session, (), new=picked, now=now)


def _calendar_owner(session: Session, calendar: CalendarView) -> uuid.UUID:
    found = calendar_of(session, calendar.id)
    assert found is not None
    return found[0]


def queue(session: Session, stored: StoredEvent, operation: str, *, now: datetime) -> None:
    """Add the outbox row that brings Google to `stored`'s state (`operation`)."""
    outbox.add(
        session,
        event_id=stored.id,
        user_id=stored.user_id,
        calendar_id=stored.calendar_id,
        operation=operation,
        now=now,
    )


def notify(
    session: Session,
    account: UserAccount,
    before: Event | None,
    after: Event | None,
    event_id: uuid.UUID,
    *,
    now: datetime,
    owner: uuid.UUID | None = None,
    new: StoredEvent | None = None,
) -> None:
    """Record the change notice of `account`'s change and replan the event's reminders;
    `owner`: the owner of the event's row when the caller knows it (read otherwise);
    `new`: the event's row when this transaction has just inserted it with a fresh id
    (`plan_new_reminders`, no read of it)."""
    events_changed(
        session,
        [EventChange(event_id, before, after, owner_id=owner)],
        actor_user_id=account.id,
        source="api",
        now=now,
        actor_email=account.email,
    )
    if new is not None:
        plan_new_reminders(session, new, now=now)
    else:
        reschedule_reminders(session, event_id, now=now)


def refuse(problems: list[TypeProblem]) -> None:
    """Raise what Google would refuse of an event's type (decisions K2, K3): `Forbidden`
    when Google lets nobody make the change, else `FieldErrors`; every problem of that
    kind is named."""
    if not problems:
        return
    if any(p.status == 403 for p in problems):
        refused = [
            ValidationError(p.field, p.message, issue="forbidden")
            for p in problems
            if p.status == 403
        ]
        names = ", ".join(dict.fromkeys(p.field for p in refused))
        raise Forbidden(f"Google does not allow this change: {names}", refused)
    raise FieldErrors([ValidationError(p.field, p.message) for p in problems if p.status == 422])


def check_etag(etag: str, if_match: str | None) -> None:
    """`Stale` unless `if_match` (the request's ``If-Match``) names `etag` or is ``*``.

    Checked first on the row as the request read it (refusing early), and again on the
    row as locked for the write (`save`, `cancel_exception`, `delete_series`): a write of
    the same version that committed in between must turn this one into `Stale`, not be
    overwritten."""
    if if_match is not None and if_match.strip() not in (etag, "*"):
        raise Stale("the event changed since you read it; GET it again")


def locked_live(session: Session, event_id: uuid.UUID, if_match: str | None) -> StoredEvent:
    """The stored event `event_id`, row-locked for a write: `NotFound` when it is gone
    (deleted meanwhile), `Stale` when ``If-Match`` no longer names its version."""
    locked = event_changes.lock_stored(session, event_id)
    if locked is None or locked.deleted_at is not None:
        raise NotFound("no such event")
    check_etag(locked.etag, if_match)
    return locked


def save(
    session: Session,
    account: UserAccount,
    current: StoredEvent,
    changes: EventChanges,
    calendar: CalendarView,
    *,
    now: datetime,
    if_match: str | None = None,
) -> StoredEvent:
    """Apply `changes` to the stored event `current` (locked, ``If-Match`` checked again)."""
    locked = locked_live(session, current.id, if_match)
    event = apply_changes(locked.event, changes, default_zone=calendar.timezone)
    refuse(update_problems(locked.event, event))
    google_id = locked.event.provider_event_id or client_event_id(locked.id)
    event = _conference_requested(event, f"{google_id}-{locked.version + 1}")
    stored = event_changes.save_local(session, locked, event, now=now)
    queue(session, stored, "update", now=now)
    notify(session, account, locked.event, stored.event, stored.id, now=now)
    return stored


def _conference_requested(event: Event, request_id: str) -> Event:
    """`event` with `request_id` on the Meet request this write made, if it made one: the
    event's Google id for a new event, that id and the new version for a later request
    (Google ignores a request id it has seen before)."""
    conference = event.conference
    if conference is None or not conference.awaits_request_id:
        return event
    return dataclasses.replace(event, conference=conference.with_request_id(request_id))


def insert_exception(
    session: Session,
    account: UserAccount,
    ref: InstanceRef,
    event: Event,
    calendar: CalendarView,
    *,
    now: datetime,
) -> StoredEvent:
    """Store a new exception replacing the instance `ref` (cancelled: a cancellation)."""
    series_id = series_id_of(ref.master)
    cancelled = event.status == EventStatus.CANCELLED
    exception = dataclasses.replace(
        event,
        recurrence=(),
        recurring_event_id=series_id,
        original_start=ref.original_start,
    )
    return insert_event(
        session,
        account,
        calendar,
        exception,
        uuid.uuid4(),
        now=now,
        operation="delete" if cancelled else "update",
        provider_id=instance_id(series_id, ref.original_start),
        notice=(ref.event, None) if cancelled else (ref.event, event),
        # Google has the instance already, as the series generates it: the base of the
        # three-way merge of the exception's first push (`calsync.sync.write_back`)
        base=ref.event,
    )


def cancel_exception(
    session: Session,
    account: UserAccount,
    exception: StoredEvent,
    *,
    now: datetime,
    if_match: str | None = None,
) -> WriteResult:
    """Cancel the instance a stored exception replaces (its row stays, cancelled)."""
    locked = locked_live(session, exception.id, if_match)
    stored = event_changes.save_local(
        session,
        locked,
        dataclasses.replace(locked.event, status=EventStatus.CANCELLED),
        now=now,
    )
    queue(session, stored, "delete", now=now)
    notify(session, account, locked.event, None, stored.id, now=now)
    return WriteResult(None, (stored.id,))


def delete_series(
    session: Session,
    account: UserAccount,
    stored: StoredEvent,
    *,
    now: datetime,
    if_match: str | None = None,
) -> WriteResult:
    """Delete the event `stored` and, for a series, its exceptions."""
    locked = locked_live(session, stored.id, if_match)
    stored = locked
    ids = [stored.id]
    if stored.event.is_recurring:
        own = exceptions_of(session, [(stored.calendar_id, series_id_of(stored))])
        ids += [e.id for e in own.get((stored.calendar_id, series_id_of(stored)), [])]
    event_changes.mark_deleted(session, ids, now=now)
    queue(session, stored, "delete", now=now)
    notify(session, account, stored.event, None, stored.id, now=now)
    return WriteResult(None, (stored.id,))
