"""The API's write use cases: create, update and delete events, series and instances.

Each runs in one transaction that changes the event rows, adds the outbox row(s) the
push will act on, records change notices and replans reminders; nothing talks to
Google. The caller kicks ``push_outbox`` after the commit (a lost kick is harmless: the
scheduler's sweep finds the pending rows). Rules (docs/api.md):

- another user's event is `NotFound` (admins see every event); only the organizer or an
  admin may change or delete one, and only in a calendar the user may write
  (`Forbidden`; `calsync.events.targets`);
- ``If-Match`` must equal the event's current etag (`Stale` otherwise);
- bad values are `FieldErrors` naming every field (`calsync.events.changes_applied`);
- a PUT on an event in ``conflict`` resolves the conflict with the event it leaves;
- on an instance id, ``scope=this`` (default) changes or cancels that instance through
  an exception; ``scope=following`` splits the series there (`calsync.events.splits`).

They take a session, the caller's account and the parsed changes, never a request, and
raise the domain's errors (`calsync.domain.errors`), never HTTP ones: the web layer maps
them to statuses in one place (decision HE2).
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from calsync.domain.accounts import UserAccount
from calsync.domain.errors import Forbidden, NotConnectedYet, NotFound, ValidationError
from calsync.domain.event_types import creation_problems, update_problems
from calsync.domain.models import EventStatus
from calsync.events import upkeep
from calsync.events.changes_applied import apply_changes
from calsync.events.changes_input import EventChanges
from calsync.events.splits import split
from calsync.events.targets import changeable
from calsync.events.views import EventView
from calsync.events.write_steps import (
    Scope,
    WriteResult,
    cancel_exception,
    check_etag,
    delete_series,
    insert_event,
    insert_exception,
    refuse,
    save,
)
from calsync.providers.google.oauth import grants_calendar
from calsync.store import credentials
from calsync.store.calendar_views import CalendarView, calendar_of, calendars_of
from calsync.store.events import StoredEvent

__all__ = ["Scope", "WriteResult", "choose_calendar", "create", "delete", "update"]


def choose_calendar(
    session: Session, account: UserAccount, calendar_id: str | None
) -> CalendarView:
    """The calendar a new event goes to: the given one (the user's own) or the primary.

    Raises `NotFound` for a calendar that is not the user's, `Forbidden` for one they may
    only read; when no calendar is listed, `NotConnectedYet` if the user's stored Google
    tokens grant calendar access (the connection their sign-in queued has not listed
    them yet, decision JD2), else `ValidationError` (``calendar_id``): sign in first.
    """
    if calendar_id is None:
        calendars = calendars_of(session, account.id)
        if not calendars:
            scopes = credentials.granted_scopes(session, account.id)
            if scopes is not None and grants_calendar(scopes):
                raise NotConnectedYet(
                    "your Google calendars are still being connected after the sign-in; "
                    "try again in a moment"
                )
            raise ValidationError("calendar_id", "no calendar is connected; sign in with Google")
        calendar = next((c for c in calendars if c.is_primary), calendars[0])
    else:
        try:
            found = calendar_of(session, uuid.UUID(calendar_id))
        except ValueError:
            found = None
        if found is None or found[0] != account.id:
            raise NotFound("no such calendar")
        calendar = found[1]
    if not calendar.writable:
        raise Forbidden("you may not write to this calendar")
    return calendar


def create(
    session: Session, account: UserAccount, changes: EventChanges, *, now: datetime
) -> WriteResult:
    """Create an event (single or series) in the chosen calendar."""
    calendar = choose_calendar(session, account, changes.get("calendar_id"))
    event = apply_changes(None, changes, default_zone=calendar.timezone)
    refuse(creation_problems(event, primary=calendar.is_primary))
    event_id = uuid.uuid4()
    # `choose_calendar` gives only the caller's own calendars: no read of the owner
    stored = insert_event(session, account, calendar, event, event_id, now=now, owner=account.id)
    upkeep.created(session, stored)  # its items are stored from it before the commit
    return WriteResult(EventView(str(event_id), stored.event, stored), (event_id,))


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
    found, calendar = changeable(session, account, api_id)
    if changes.has("calendar_id") and changes.get("calendar_id") != str(calendar.id):
        raise ValidationError("calendar_id", "an event cannot move to another calendar")
    if isinstance(found, StoredEvent):
        if scope is Scope.FOLLOWING:
            raise ValidationError("scope", "scope=following needs an instance id")
        check_etag(found.etag, if_match)
        stored = save(session, account, found, changes, calendar, now=now, if_match=if_match)
        return WriteResult(EventView(str(stored.id), stored.event, stored), (stored.id,))
    check_etag((found.exception or found.master).etag, if_match)
    if scope is Scope.FOLLOWING:
        return split(session, account, found, calendar, changes, now=now)
    if changes.has("recurrence") and changes.get("recurrence"):
        raise ValidationError("recurrence", "an instance cannot recur itself")
    if found.exception is not None:
        stored = save(
            session, account, found.exception, changes, calendar, now=now, if_match=if_match
        )
    else:
        event = apply_changes(found.event, changes, default_zone=calendar.timezone)
        refuse(update_problems(found.event, event))
        stored = insert_exception(session, account, found, event, calendar, now=now)
    view = EventView(found.api_id, stored.event, stored, series=found.master)
    return WriteResult(view, (stored.id,))


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
    found, calendar = changeable(session, account, api_id)
    if isinstance(found, StoredEvent):
        if scope is Scope.FOLLOWING:
            raise ValidationError("scope", "scope=following needs an instance id")
        check_etag(found.etag, if_match)
        if found.event.is_exception:
            # A changed instance named by its own id (as plain lists show it) is cancelled
            # as through its instance id: a deleted row would let the series' own instance
            # show again while Google has the instance cancelled.
            return cancel_exception(session, account, found, now=now, if_match=if_match)
        return delete_series(session, account, found, now=now, if_match=if_match)
    check_etag((found.exception or found.master).etag, if_match)
    if scope is Scope.FOLLOWING:
        return split(session, account, found, calendar, None, now=now)
    if found.exception is not None:
        return cancel_exception(session, account, found.exception, now=now, if_match=if_match)
    cancelled = dataclasses.replace(found.event, status=EventStatus.CANCELLED)
    stored = insert_exception(session, account, found, cancelled, calendar, now=now)
    return WriteResult(None, (stored.id,))
