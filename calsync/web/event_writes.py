"""The API's write use cases: create, update and delete events, series and instances.

Each runs in one transaction that changes the event rows, adds the outbox row(s) the
push will act on, records change notices and replans reminders; nothing talks to
Google. The caller kicks ``push_outbox`` after the commit (a lost kick is harmless: the
scheduler's sweep finds the pending rows). Rules (docs/api.md):

- another user's event is 404 (admins see every event); only the organizer or an admin
  may change or delete one (403), and only in a calendar the user may write (403);
- ``If-Match`` must equal the event's current etag (412 otherwise);
- a PUT on an event in ``conflict`` resolves the conflict with the event it leaves;
- on an instance id, ``scope=this`` (default) changes or cancels that instance through
  an exception; ``scope=following`` splits the series there (`calsync.domain.splits`).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from calsync.domain.accounts import UserAccount
from calsync.domain.errors import ValidationError
from calsync.domain.event_types import TypeProblem, creation_problems, update_problems
from calsync.domain.models import Event, EventStatus
from calsync.domain.recurrence import instance_id, instance_of
from calsync.domain.splits import split_series
from calsync.notify.hooks import event_changed, reschedule_reminders
from calsync.providers.google.ids import google_event_id
from calsync.store import event_changes, outbox
from calsync.store.event_queries import CalendarView, calendar_of, calendars_of, exceptions_of
from calsync.store.events import StoredEvent
from calsync.web.errors import APIError
from calsync.web.event_input import EventChanges, apply_changes, checked_event, unprocessable
from calsync.web.event_output import EventView
from calsync.web.event_reads import (
    InstanceRef,
    resolve,
    series_id_of,
    sort_instant,
)

__all__ = ["Scope", "WriteResult", "create", "delete", "update"]


class Scope(StrEnum):
    """What a write on an instance id covers."""

    THIS = "this"
    FOLLOWING = "following"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The view to answer with (`None` for deletes) and the events to push."""

    view: EventView | None
    pushed: tuple[uuid.UUID, ...]


def _not_found() -> APIError:
    return APIError(404, "no such event")


def _field_error(name: str, message: str) -> APIError:
    return unprocessable([{"field": name, "issue": "invalid", "message": message}])


def choose_calendar(
    session: Session, account: UserAccount, calendar_id: str | None
) -> CalendarView:
    """The calendar a new event goes to: the given one (the user's own) or the primary.

    Raises 404 for a calendar that is not the user's, 403 for one they may only read,
    422 when no calendar is connected yet.
    """
    if calendar_id is None:
        calendars = calendars_of(session, account.id)
        if not calendars:
            raise _field_error("calendar_id", "no calendar is connected; sign in with Google")
        calendar = next((c for c in calendars if c.is_primary), calendars[0])
    else:
        try:
            found = calendar_of(session, uuid.UUID(calendar_id))
        except ValueError:
            found = None
        if found is None or found[0] != account.id:
            raise APIError(404, "no such calendar")
        calendar = found[1]
    if not calendar.writable:
        raise APIError(403, "you may not write to this calendar")
    return calendar


def create(
    session: Session, account: UserAccount, changes: EventChanges, *, now: datetime
) -> WriteResult:
    """Create an event (single or series) in the chosen calendar."""
    calendar = choose_calendar(session, account, changes.get("calendar_id"))
    event = apply_changes(None, changes, default_zone=calendar.timezone)
    _refuse(creation_problems(event, primary=calendar.is_primary))
    event_id = uuid.uuid4()
    stored = _insert(session, account, calendar, event, event_id, now=now)
    return WriteResult(EventView(str(event_id), stored.event, stored), (event_id,))


def _insert(
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
) -> StoredEvent:
    organizer = calendar.provider_calendar_id
    event = dataclasses.replace(
        event,
        calsync_id=str(event_id),
        provider_event_id=provider_id or google_event_id(event_id),
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
        user_id=calendar_owner(session, calendar),
        calendar_id=calendar.id,
        event=event,
        now=now,
        base=base,
    )
    _queue(session, stored, operation, now=now)
    before, after = notice if notice is not None else (None, stored.event)
    _notify(session, account, before, after, event_id, now=now)
    return stored


def calendar_owner(session: Session, calendar: CalendarView) -> uuid.UUID:
    found = calendar_of(session, calendar.id)
    assert found is not None
    return found[0]


def _queue(session: Session, stored: StoredEvent, operation: str, *, now: datetime) -> None:
    outbox.add(
        session,
        event_id=stored.id,
        user_id=stored.user_id,
        calendar_id=stored.calendar_id,
        operation=operation,
        now=now,
    )


def _notify(
    session: Session,
    account: UserAccount,
    before: Event | None,
    after: Event | None,
    event_id: uuid.UUID,
    *,
    now: datetime,
) -> None:
    event_changed(
        session,
        before=before,
        after=after,
        event_id=event_id,
        actor_user_id=account.id,
        source="api",
        now=now,
    )
    reschedule_reminders(session, event_id, now=now)


def _target(
    session: Session, account: UserAccount, api_id: str
) -> tuple[StoredEvent | InstanceRef, CalendarView]:
    """What `api_id` names, if the caller may change it (404/403 otherwise)."""
    found = resolve(session, api_id)
    if found is None:
        raise _not_found()
    owner = found.master if isinstance(found, InstanceRef) else found
    if owner.user_id != account.id and not account.is_admin:
        raise _not_found()
    calendar_found = calendar_of(session, owner.calendar_id)
    assert calendar_found is not None
    calendar = calendar_found[1]
    if not account.is_admin:
        organizer = owner.event.organizer_email
        if organizer is not None and organizer not in (
            account.email.lower(),
            calendar.provider_calendar_id.lower(),
        ):
            raise APIError(403, "only the event's organizer may change it")
        if not calendar.writable:
            raise APIError(403, "you may not write to this calendar")
    return found, calendar


def _refuse(problems: list[TypeProblem]) -> None:
    """Raise the API error for what Google would refuse of an event's type (decisions
    K2, K3): 403 when Google lets nobody make the change, else 422; every problem of
    that status is a detail."""
    if not problems:
        return
    status = 403 if any(p.status == 403 for p in problems) else 422
    details = [
        {
            "field": p.field,
            "issue": "forbidden" if status == 403 else "invalid",
            "message": p.message,
        }
        for p in problems
        if p.status == status
    ]
    if status == 422:
        raise unprocessable(details)
    names = ", ".join(dict.fromkeys(d["field"] for d in details))
    raise APIError(403, f"Google does not allow this change: {names}", details=details)


def _check_etag(etag: str, if_match: str | None) -> None:
    """412 unless `if_match` (the request's ``If-Match``) names `etag` or is ``*``.

    Checked first on the row as the request read it (refusing early), and again on the
    row as locked for the write (`_save`, `_cancel_exception`, `_delete_series`): a
    write of the same version that committed in between must turn this one into a 412,
    not be overwritten."""
    if if_match is not None and if_match.strip() not in (etag, "*"):
        raise APIError(412, "the event changed since you read it; GET it again")


def update(
    session: Session,
    account: UserAccount,
    api_id: str,
    changes: EventChanges,
    *,
    if_match: str | None,
    scope: Scope,
    now: datetime,
) -> WriteResult:
    """Change an event, a whole series, one instance, or an instance and the ones after."""
    found, calendar = _target(session, account, api_id)
    if changes.has("calendar_id") and changes.get("calendar_id") != str(calendar.id):
        raise _field_error("calendar_id", "an event cannot move to another calendar")
    if isinstance(found, StoredEvent):
        if scope is Scope.FOLLOWING:
            raise _field_error("scope", "scope=following needs an instance id")
        _check_etag(found.etag, if_match)
        stored = _save(session, account, found, changes, calendar, now=now, if_match=if_match)
        return WriteResult(EventView(str(stored.id), stored.event, stored), (stored.id,))
    _check_etag((found.exception or found.master).etag, if_match)
    if scope is Scope.FOLLOWING:
        return _split(session, account, found, calendar, changes, now=now)
    if changes.has("recurrence") and changes.get("recurrence"):
        raise _field_error("recurrence", "an instance cannot recur itself")
    if found.exception is not None:
        stored = _save(
            session, account, found.exception, changes, calendar, now=now, if_match=if_match
        )
    else:
        event = apply_changes(found.event, changes, default_zone=calendar.timezone)
        _refuse(update_problems(found.event, event))
        stored = _insert_exception(session, account, found, event, calendar, now=now)
    view = EventView(found.api_id, stored.event, stored, series=found.master)
    return WriteResult(view, (stored.id,))


def _save(
    session: Session,
    account: UserAccount,
    current: StoredEvent,
    changes: EventChanges,
    calendar: CalendarView,
    *,
    now: datetime,
    if_match: str | None = None,
) -> StoredEvent:
    locked = event_changes.lock_stored(session, current.id)
    if locked is None or locked.deleted_at is not None:
        raise _not_found()
    _check_etag(locked.etag, if_match)
    event = apply_changes(locked.event, changes, default_zone=calendar.timezone)
    _refuse(update_problems(locked.event, event))
    google_id = locked.event.provider_event_id or google_event_id(locked.id)
    event = _conference_requested(event, f"{google_id}-{locked.version + 1}")
    stored = event_changes.save_local(session, locked.id, event, now=now)
    _queue(session, stored, "update", now=now)
    _notify(session, account, locked.event, stored.event, stored.id, now=now)
    return stored


def _conference_requested(event: Event, request_id: str) -> Event:
    """`event` with `request_id` on the Meet request this write made, if it made one: the
    event's Google id for a new event, that id and the new version for a later request
    (Google ignores a request id it has seen before)."""
    conference = event.conference
    if conference is None or not conference.awaits_request_id:
        return event
    return dataclasses.replace(event, conference=conference.with_request_id(request_id))


def _insert_exception(
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
    return _insert(
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
        # three-way merge of the exception's first push (`calsync.sync.push`)
        base=ref.event,
    )


def _split(
    session: Session,
    account: UserAccount,
    ref: InstanceRef,
    calendar: CalendarView,
    changes: EventChanges | None,
    *,
    now: datetime,
) -> WriteResult:
    """Cut the series before `ref`; with `changes`, continue it as a new series from there."""
    master = ref.master
    if sort_instant(ref.original_start) <= sort_instant(master.event.start):
        if changes is None:
            return _delete_series(session, account, master, now=now)
        stored = _save(session, account, master, changes, calendar, now=now)
        return WriteResult(EventView(str(stored.id), stored.event, stored), (stored.id,))
    new_event = None
    if changes is not None:
        new_event = _following(master, ref, changes, calendar)
    own_rule = changes is not None and changes.has("recurrence")
    try:
        halves = split_series(
            master.event,
            ref.original_start,
            # the body's own recurrence leaves the new half's lines unused
            new_start=new_event.start if new_event is not None and not own_rule else None,
        )
    except ValidationError as err:
        raise _field_error(err.field, err.message) from None
    if new_event is not None and not own_rule:
        new_event = checked_event(dataclasses.replace(new_event, recurrence=halves.after))
    locked = event_changes.lock_stored(session, master.id)
    assert locked is not None
    cut_event = dataclasses.replace(locked.event, recurrence=halves.before)
    _refuse(update_problems(locked.event, cut_event))
    cut = event_changes.save_local(session, master.id, cut_event, now=now)
    # Google's guide: trim the original first (events.update), then insert the new
    # series; the push goes in outbox order (decisions S25)
    _queue(session, cut, "update", now=now)
    _drop_exceptions_from(session, master, ref, now=now)
    _notify(session, account, locked.event, cut.event, master.id, now=now)
    pushed = [master.id]
    view = None
    if new_event is not None:
        new_id = uuid.uuid4()
        stored = _insert(session, account, calendar, new_event, new_id, now=now)
        pushed.append(new_id)
        view = EventView(str(new_id), stored.event, stored)
    return WriteResult(view, tuple(pushed))


def _following(
    master: StoredEvent, ref: InstanceRef, changes: EventChanges, calendar: CalendarView
) -> Event:
    """The new series `changes` make of the instance at `ref`, without its recurrence
    unless the body gives one. It starts where the body puts it, or at the instance's
    original start (a changed instance's own move is one of the changes that end)."""
    generated = instance_of(master.event, series_id_of(master), ref.original_start)
    shown = ref.event if ref.exception is None else ref.exception.event
    template = dataclasses.replace(
        shown,
        start=generated.start,
        end=generated.end,
        recurrence=(),
        recurring_event_id=None,
        original_start=None,
        # Google's conference stays with the old series; calsync copies no conference
        # data to Google, only asks for new ones (decisions P3)
        conference=None,
    )
    event = apply_changes(template, changes, default_zone=calendar.timezone)
    _refuse(update_problems(template, event))
    _refuse(creation_problems(event, primary=calendar.is_primary))
    return event


def _drop_exceptions_from(
    session: Session, master: StoredEvent, ref: InstanceRef, *, now: datetime
) -> None:
    own = exceptions_of(session, [(master.calendar_id, series_id_of(master))])
    cutoff = sort_instant(ref.original_start)
    doomed = [
        e.id
        for e in own.get((master.calendar_id, series_id_of(master)), [])
        if e.event.original_start is not None and sort_instant(e.event.original_start) >= cutoff
    ]
    if doomed:
        event_changes.mark_deleted(session, doomed, now=now)


def delete(
    session: Session,
    account: UserAccount,
    api_id: str,
    *,
    if_match: str | None,
    scope: Scope,
    now: datetime,
) -> WriteResult:
    """Delete an event or series, cancel one instance, or end a series before an instance."""
    found, calendar = _target(session, account, api_id)
    if isinstance(found, StoredEvent):
        if scope is Scope.FOLLOWING:
            raise _field_error("scope", "scope=following needs an instance id")
        _check_etag(found.etag, if_match)
        if found.event.is_exception:
            # A changed instance named by its own id (as plain lists show it) is cancelled
            # as through its instance id: a deleted row would let the series' own instance
            # show again while Google has the instance cancelled.
            return _cancel_exception(session, account, found, now=now, if_match=if_match)
        return _delete_series(session, account, found, now=now, if_match=if_match)
    _check_etag((found.exception or found.master).etag, if_match)
    if scope is Scope.FOLLOWING:
        return _split(session, account, found, calendar, None, now=now)
    if found.exception is not None:
        return _cancel_exception(session, account, found.exception, now=now, if_match=if_match)
    cancelled = dataclasses.replace(found.event, status=EventStatus.CANCELLED)
    stored = _insert_exception(session, account, found, cancelled, calendar, now=now)
    return WriteResult(None, (stored.id,))


def _cancel_exception(
    session: Session,
    account: UserAccount,
    exception: StoredEvent,
    *,
    now: datetime,
    if_match: str | None = None,
) -> WriteResult:
    """Cancel the instance a stored exception replaces (its row stays, cancelled)."""
    locked = event_changes.lock_stored(session, exception.id)
    if locked is None or locked.deleted_at is not None:
        raise _not_found()
    _check_etag(locked.etag, if_match)
    stored = event_changes.save_local(
        session,
        locked.id,
        dataclasses.replace(locked.event, status=EventStatus.CANCELLED),
        now=now,
    )
    _queue(session, stored, "delete", now=now)
    _notify(session, account, locked.event, None, stored.id, now=now)
    return WriteResult(None, (stored.id,))


def _delete_series(
    session: Session,
    account: UserAccount,
    stored: StoredEvent,
    *,
    now: datetime,
    if_match: str | None = None,
) -> WriteResult:
    locked = event_changes.lock_stored(session, stored.id)
    if locked is None or locked.deleted_at is not None:
        raise _not_found()
    _check_etag(locked.etag, if_match)
    stored = locked
    ids = [stored.id]
    if stored.event.is_recurring:
        own = exceptions_of(session, [(stored.calendar_id, series_id_of(stored))])
        ids += [e.id for e in own.get((stored.calendar_id, series_id_of(stored)), [])]
    event_changes.mark_deleted(session, ids, now=now)
    _queue(session, stored, "delete", now=now)
    _notify(session, account, stored.event, None, stored.id, now=now)
    return WriteResult(None, (stored.id,))
