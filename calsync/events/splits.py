"""The split path: ``scope=following`` on an instance id ends a series before that
instance and, for an update, continues it as a new series from there.

Google's guide: trim the original first (events.update), then insert the new series;
the push goes in outbox order (decisions S25). The rule arithmetic is the domain's
(`calsync.domain.splits`); this module stores both halves in the caller's transaction.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from calsync.domain.accounts import UserAccount
from calsync.domain.errors import ValidationError
from calsync.domain.event_types import creation_problems, update_problems
from calsync.domain.models import Event
from calsync.domain.recurrence import instance_of
from calsync.domain.splits import split_series
from calsync.events.changes_applied import apply_changes, checked_event
from calsync.events.changes_input import EventChanges
from calsync.events.read_model import series_id_of
from calsync.events.targets import InstanceRef, sort_instant
from calsync.events.views import EventView
from calsync.events.write_steps import (
    WriteResult,
    delete_series,
    insert_event,
    notify,
    queue,
    refuse,
    save,
)
from calsync.store import event_changes
from calsync.store.calendar_views import CalendarView
from calsync.store.event_queries import exceptions_of
from calsync.store.events import StoredEvent

__all__ = ["split"]


def split(
    session: Session,
    account: UserAccount,
    ref: InstanceRef,
    calendar: CalendarView,
    changes: EventChanges | None,
    *,
    now: datetime,
) -> WriteResult:
    """Cut the series before `ref`; with `changes`, continue it as a new series from there.

    At the series' first instance that is the whole series: deleted without `changes`,
    changed with them. Raises `ValidationError` for a rule that cannot be cut there."""
    master = ref.master
    if sort_instant(ref.original_start) <= sort_instant(master.event.start):
        if changes is None:
            return delete_series(session, account, master, now=now)
        stored = save(session, account, master, changes, calendar, now=now)
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
        raise ValidationError(err.field, err.message) from None
    if new_event is not None and not own_rule:
        new_event = checked_event(dataclasses.replace(new_event, recurrence=halves.after))
    locked = event_changes.lock_stored(session, master.id)
    assert locked is not None
    cut_event = dataclasses.replace(locked.event, recurrence=halves.before)
    refuse(update_problems(locked.event, cut_event))
    cut = event_changes.save_local(session, locked, cut_event, now=now)
    # Google's guide: trim the original first (events.update), then insert the new
    # series; the push goes in outbox order (decisions S25)
    queue(session, cut, "update", now=now)
    _drop_exceptions_from(session, master, ref, now=now)
    notify(session, account, locked.event, cut.event, master.id, now=now)
    pushed = [master.id]
    view = None
    if new_event is not None:
        new_id = uuid.uuid4()
        stored = insert_event(session, account, calendar, new_event, new_id, now=now)
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
    refuse(update_problems(template, event))
    refuse(creation_problems(event, primary=calendar.is_primary))
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
