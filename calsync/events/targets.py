"""What an API id names, for the caller: the event the write use cases change, the view
``GET /events/{id}`` answers with.

An id is a stored event's (its UUID) or one instance's of a series
(``<seriesId>_<YYYYMMDDTHHMMSSZ>``, ``<seriesId>_<YYYYMMDD>`` all-day), which `resolve`
turns into a `StoredEvent` or an `InstanceRef`. Rules (docs/api.md): another user's event
is `NotFound` (admins see every event), never `Forbidden`; only the organizer (or an
admin) may change an event, and only in a calendar they may write (`Forbidden`).

`resolve` and `InstanceRef` live in `calsync.events.instance_refs` (decision HK1).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from calsync.domain.accounts import UserAccount
from calsync.domain.errors import Forbidden, NotFound
from calsync.events.instance_refs import InstanceRef, resolve, sort_instant
from calsync.events.views import EventView
from calsync.store.calendar_views import CalendarView, calendar_of
from calsync.store.events import StoredEvent

__all__ = ["InstanceRef", "changeable", "shown", "sort_instant", "visible"]


def visible(session: Session, account: UserAccount, api_id: str) -> StoredEvent | InstanceRef:
    """What `api_id` names, if `account` may see it; raises `NotFound` otherwise (and for
    deleted events and cancelled instances)."""
    found = resolve(session, api_id)
    if found is None:
        raise NotFound("no such event")
    owner = found.master if isinstance(found, InstanceRef) else found
    if owner.user_id != account.id and not account.is_admin:
        raise NotFound("no such event")
    return found


def shown(session: Session, account: UserAccount, api_id: str) -> EventView:
    """The view of what `api_id` names, if `account` may see it (`NotFound` otherwise)."""
    found = visible(session, account, api_id)
    if isinstance(found, InstanceRef):
        return found.view
    return EventView(str(found.id), found.event, found)


def changeable(
    session: Session, account: UserAccount, api_id: str
) -> tuple[StoredEvent | InstanceRef, CalendarView]:
    """What `api_id` names and its calendar, if `account` may change it: `NotFound` for
    what they may not see, `Forbidden` for what they may not change."""
    found = visible(session, account, api_id)
    owner = found.master if isinstance(found, InstanceRef) else found
    calendar_found = calendar_of(session, owner.calendar_id)
    assert calendar_found is not None
    calendar = calendar_found[1]
    if not account.is_admin:
        organizer = owner.event.organizer_email
        if organizer is not None and organizer not in (
            account.email.lower(),
            calendar.provider_calendar_id.lower(),
        ):
            raise Forbidden("only the event's organizer may change it")
        if not calendar.writable:
            raise Forbidden("you may not write to this calendar")
    return found, calendar
