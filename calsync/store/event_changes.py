"""Writing event rows for the API (local edits) and for the push (Google's answers).

Local edits (`insert_local`, `save_local`, `mark_deleted`) bump ``version``, which the
API's etag is made of, and set ``sync_state`` to ``pending``; the caller adds the outbox
row in the same transaction. The push records what Google answered with
`record_pushed` (only if the row is still the version it pushed does the event become
``synced``), `record_merged` (a 412 was resolved) and `record_error`. Every function
works inside the caller's transaction and never commits. Column values always come
from `calsync.store.events.event_columns`, the one mapping.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from calsync.domain.codec import conference_to_document
from calsync.domain.models import SYNCABLE_FIELDS, Event, EventStatus
from calsync.store.bases import base_document
from calsync.store.events import (
    KEEP_UPDATED_AT,
    StoredEvent,
    attendees_by_event,
    event_columns,
    insert_attendees,
    load_stored,
    replace_attendees,
    stored_event,
    stored_table_columns,
)
from calsync.store.tables import Calendar, OutboxEntry
from calsync.store.tables import Event as EventRow

__all__ = [
    "discard_unsent",
    "hold_calendar_key",
    "insert_local",
    "lock_stored",
    "mark_deleted",
    "pushed_single",
    "record_error",
    "record_merged",
    "record_pushed",
    "save_local",
]

_events = cast(sa.Table, EventRow.__table__)
_outbox = cast(sa.Table, OutboxEntry.__table__)
_calendars = cast(sa.Table, Calendar.__table__)
_RETURNED: Final = stored_table_columns()
"""What `insert_local`'s insert returns: the columns `stored_event` reads, by the names
it reads them by."""
_INSERT_RETURNING: Final = sa.insert(_events).returning(*_RETURNED)
"""`insert_local`'s insert, built once: its values go as parameters, so that a create
builds no statement and computes no cache key of its own (decision IF2)."""


#: `hold_calendar_key`'s statement (parameter ``of_event``), built once.
_CALENDAR_KEY: Final = (
    sa.select(_calendars.c.id)
    .where(
        _calendars.c.id
        == sa.select(_events.c.calendar_id)
        .where(_events.c.id == sa.bindparam("of_event", type_=_events.c.id.type))
        .scalar_subquery()
    )
    .with_for_update(read=True, key_share=True)
)


def hold_calendar_key(session: Session, event_id: uuid.UUID) -> None:
    """Take, before anything else of a write of the event `event_id`, the lock the
    foreign keys to its calendar take later in the transaction (PostgreSQL ``FOR KEY
    SHARE`` on the calendar's row; nothing on SQLite, which has no row locks).

    A write that locks the event's row first and the calendar's after (the outbox row's
    or the sync log's foreign key, checked at their ``INSERT``) deadlocked with a pull
    of the calendar, which holds the calendar's row from its first statement and then
    locks the events it lists: PostgreSQL broke the cycle after a second by failing one
    of them - an API write's 500, a push retried (decision JL1). ``FOR KEY SHARE`` does
    not conflict with the pull's ``FOR NO KEY UPDATE``, but a check that meets the row
    just updated waits for its updater all the same; taken first, the wait holds nothing
    the pull needs."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_CALENDAR_KEY, {"of_event": event_id})


def lock_stored(session: Session, event_id: uuid.UUID) -> StoredEvent | None:
    """The event as it is now, with its row locked until the transaction ends, for a
    read-modify-write: no other writer can change it before the commit.

    PostgreSQL: ``SELECT ... FOR UPDATE``, after its calendar's key (`hold_calendar_key`);
    SQLite: the same read starts the transaction as the database's one writer
    (`calsync.store.db`), so what it reads stays true until it commits.
    """
    hold_calendar_key(session, event_id)
    row = session.get(EventRow, event_id, with_for_update=True, populate_existing=True)
    if row is None:
        return None
    return load_stored(session, event_id)


def insert_local(
    session: Session,
    *,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    calendar_id: uuid.UUID,
    event: Event,
    now: datetime,
    base: Event | None = None,
) -> StoredEvent:
    """Store a new local event (version 1, ``pending``). `base`: what Google is known to
    hold for it already - for a new exception, the instance as its series generates it,
    so that its first push merges with a change another client made to that instance
    meanwhile; None for a new event (Google has not seen it)."""
    # The row as stored comes back with the insert (decision HV3): reading it again was
    # two statements, the row's and its attendees'.
    values = {
        "id": event_id,
        "user_id": user_id,
        "calendar_id": calendar_id,
        "sync_state": "pending",
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "base_version": base_document(base) if base is not None else None,
        **event_columns(event),
    }
    row = session.execute(_INSERT_RETURNING, values).one()
    # a new row has no attendee rows to delete (`replace_attendees` would send a DELETE)
    insert_attendees(session, [(event_id, event.attendees)])
    attendees = attendees_by_event(session, [event_id]) if event.attendees else {}
    return stored_event(row, attendees.get(event_id, ()))


def save_local(
    session: Session, locked: StoredEvent, event: Event, *, now: datetime
) -> StoredEvent:
    """Store a local edit of the event `locked` (as `lock_stored` read it in this
    transaction): new version, ``pending``, conflict and error cleared. A row that was its
    own base (`calsync.store.bases`) stores that base first: the version before the edit."""
    values = event_columns(event)
    if locked.base_is_row:
        assert locked.base is not None
        values["base_version"] = base_document(locked.base)
    session.execute(
        sa.update(_events)
        .where(_events.c.id == locked.id)
        .values(
            version=_events.c.version + 1,
            sync_state="pending",
            sync_error=None,
            conflict=None,
            updated_at=now,
            **values,
        )
    )
    replace_attendees(session, [(locked.id, event.attendees)])
    session.expire_all()
    stored = load_stored(session, locked.id)
    assert stored is not None
    return stored


def mark_deleted(session: Session, event_ids: list[uuid.UUID], *, now: datetime) -> None:
    """Delete the events locally (soft: the push still has to delete them on Google).
    No column a base is made of changes, so a row that is its own base stays one."""
    session.execute(
        sa.update(_events)
        .where(_events.c.id.in_(event_ids), _events.c.deleted_at.is_(None))
        .values(
            deleted_at=now,
            version=_events.c.version + 1,
            sync_state="pending",
            sync_error=None,
            conflict=None,
            updated_at=now,
        )
    )
    session.expire_all()


def record_pushed(
    session: Session,
    event_id: uuid.UUID,
    *,
    pushed: Event,
    remote: Event | None,
    version: int,
) -> bool:
    """Google accepted `pushed` (of local `version`) and answered `remote` (`None` for a
    delete). Stores Google's bookkeeping and the new base; the event becomes ``synced``
    only if nobody changed it locally since. Returns whether it did. The calendar's key
    is held first (`hold_calendar_key`: the caller's sync log row checks it later)."""
    hold_calendar_key(session, event_id)
    if remote is not None:
        agreed = _agreed(pushed, remote)
        values = {
            "google_event_id": remote.provider_event_id,
            "etag": remote.etag,
            "sequence": remote.sequence,
            "remote_updated_at": remote.updated,
            "organizer_email": agreed.organizer_email,
            "base_version": base_document(agreed),
        }
        bound = {f"new_{column}": value for column, value in values.items()}
        ids = {"pushed_id": event_id, "pushed_version": version}
        return bool(session.execute(_PUSHED, bound | ids).scalar())
    synced = session.execute(_PUSHED_SYNCED, {"pushed_id": event_id, "pushed_version": version})
    if pushed.is_recurring and pushed.provider_event_id:
        _settle_deleted_exceptions(session, event_id, pushed.provider_event_id)
    return bool(synced.rowcount)  # type: ignore[attr-defined]


def _bound(column: str) -> sa.BindParameter[Any]:
    """A parameter for `column`'s new value, named apart from the columns (``new_...``):
    a parameter named as a column of an ``UPDATE`` would be taken for that column."""
    return sa.bindparam(f"new_{column}", type_=_events.c[column].type)


_BOOKKEEPING: Final = (
    "google_event_id",
    "etag",
    "sequence",
    "remote_updated_at",
    "organizer_email",
    "base_version",
)
#: `record_pushed`'s statements, built once (decision IR4). `_PUSHED`: Google's
#: bookkeeping and the base (parameters ``pushed_id`` and ``new_<column>``), and
#: ``synced`` if the version is still the one pushed (``pushed_version``), which it
#: returns - one ``UPDATE`` of the row, not two: PostgreSQL checks the foreign key of a
#: row the transaction itself wrote, so a second one took ``FOR KEY SHARE`` on the
#: calendar's row while holding the event's, and deadlocked with a pull of the calendar
#: (decision JL1). `_PUSHED_SYNCED`: ``synced`` alone (a delete's record).
_PUSHED_VERSION: Final = _events.c.version == sa.bindparam(
    "pushed_version", type_=_events.c.version.type
)
_PUSHED: Final = (
    sa.update(_events)
    .where(_events.c.id == sa.bindparam("pushed_id", type_=_events.c.id.type))
    .values(
        {column: _bound(column) for column in _BOOKKEEPING}
        | {
            "sync_state": sa.case((_PUSHED_VERSION, "synced"), else_=_events.c.sync_state),
            "sync_error": sa.case((_PUSHED_VERSION, sa.null()), else_=_events.c.sync_error),
        }
        | KEEP_UPDATED_AT
    )
    .returning(_PUSHED_VERSION)
)
_PUSHED_SYNCED: Final = (
    sa.update(_events)
    .where(
        _events.c.id == sa.bindparam("pushed_id", type_=_events.c.id.type),
        _events.c.version == sa.bindparam("pushed_version", type_=_events.c.version.type),
    )
    .values(sync_state="synced", sync_error=None, **KEEP_UPDATED_AT)
)


def _agreed(pushed: Event, remote: Event) -> Event:
    """The version both sides agree on after Google answered the write of `pushed` with
    `remote`: `pushed` with Google's bookkeeping and conference."""
    return dataclasses.replace(
        pushed,
        provider_event_id=remote.provider_event_id,
        etag=remote.etag,
        sequence=remote.sequence,
        updated=remote.updated,
        organizer_email=remote.organizer_email or pushed.organizer_email,
        conference=remote.conference,
    )


def pushed_single(stored: StoredEvent, remote: Event) -> StoredEvent | None:
    """`stored` as its row reads after `record_pushed` made it ``synced`` with Google's
    answer `remote`, when it is a live single whose listed item that leaves as it was
    (times, status and version unchanged; no new conference for `adopt_conference` to
    store): what the read model's upkeep needs to replace its document alone (decision
    IG2). None for anything else (a series, an exception, a deleted or cancelled row)."""
    event = stored.event
    if (
        event.is_recurring
        or event.recurring_event_id is not None
        or stored.deleted_at is not None
        or event.status is EventStatus.CANCELLED
        or remote.conference != event.conference
    ):
        return None
    agreed = _agreed(event, remote)
    return dataclasses.replace(
        stored, event=agreed, sync_state="synced", sync_error=None, base=agreed, base_is_row=False
    )


def _settle_deleted_exceptions(session: Session, master_id: uuid.UUID, series_id: str) -> None:
    """The series `series_id` is deleted on Google: so are its exceptions, which the
    series' delete marked deleted and ``pending`` without writes of their own
    (`mark_deleted`). They become ``synced``; one with a write still queued is left to it.
    """
    calendar_id = session.scalar(sa.select(_events.c.calendar_id).where(_events.c.id == master_id))
    queued = sa.exists().where(_outbox.c.event_id == _events.c.id, _outbox.c.status == "pending")
    session.execute(
        sa.update(_events)
        .where(
            _events.c.calendar_id == calendar_id,
            _events.c.recurring_event_id == series_id,
            _events.c.deleted_at.is_not(None),
            _events.c.sync_state == "pending",
            ~queued,
        )
        .values(sync_state="synced", sync_error=None, **KEEP_UPDATED_AT)
    )


def adopt_conference(
    session: Session, event_id: uuid.UUID, *, pushed: Event, remote: Event, version: int
) -> None:
    """Store the conference Google answered the push of `pushed` (local `version`) with,
    if it differs: Google decides a conference's state, and a request may come back
    created already, which the pull would never see, its etag being the push's own
    (echo suppression). A change of the event that is Google's, not a local edit: a new
    version (list caches key on it), ``updated_at`` kept; nothing if the event moved
    past `version` (its next push or pull brings the conference). Call it after
    `record_pushed` and the outbox's close of `version` (decisions P3)."""
    if remote.conference == pushed.conference:
        return
    conference = remote.conference
    session.execute(
        sa.update(_events)
        .where(_events.c.id == event_id, _events.c.version == version)
        .values(
            conference=conference_to_document(conference) if conference is not None else None,
            version=version + 1,
            **KEEP_UPDATED_AT,
        )
    )


def record_merged(
    session: Session,
    event_id: uuid.UUID,
    *,
    merged: Event,
    remote: Event,
    version: int,
    conflict: dict[str, Any] | None,
    revive: bool = False,
) -> StoredEvent | None:
    """Store the result of resolving a 412 against the event's local `version`.

    `merged` becomes the local event (a new version if it differs), `remote` the base and
    its etag the one the next write sends. With `conflict` (a manual-policy conflict) the
    event is flagged ``conflict`` and keeps `merged` (the local version) until a PUT.
    With `revive` (Google refused the local delete and keeps the event, decision JI1) a
    deleted row is live again, and so are the exceptions its delete deleted with it.
    Returns the stored event, or `None` (nothing written) if the local version moved on
    meanwhile: the caller must read it again.
    """
    hold_calendar_key(session, event_id)  # before the event's row (JL1)
    row = session.get(EventRow, event_id, with_for_update=True, populate_existing=True)
    if row is None or row.version != version:
        return None
    before = load_stored(session, event_id)
    assert before is not None
    changed = any(getattr(merged, f) != getattr(before.event, f) for f in SYNCABLE_FIELDS)
    row_values: dict[str, Any] = event_columns(merged)
    row_values["base_version"] = base_document(remote)
    row_values["conflict"] = conflict
    row_values["sync_state"] = "conflict" if conflict is not None else "pending"
    if revive and before.deleted_at is not None:
        changed = True  # listed again: a new version (the API's etag, list caches)
        row_values["deleted_at"] = None
        if before.event.is_recurring and before.event.provider_event_id:
            _revive_exceptions(session, before, before.event.provider_event_id)
    if changed:
        row_values["version"] = row.version + 1
    # Only over `version`: on SQLite the read above locks nothing, and an edit committed
    # since would be overwritten (and its outbox row closed as if pushed).
    written = session.execute(
        sa.update(_events)
        .where(_events.c.id == event_id, _events.c.version == version)
        .values(**row_values)
    )
    if not written.rowcount:  # type: ignore[attr-defined]
        return None
    if merged.attendees != before.event.attendees:
        replace_attendees(session, [(event_id, merged.attendees)])
    session.expire_all()
    return load_stored(session, event_id)


def _revive_exceptions(session: Session, master: StoredEvent, series_id: str) -> None:
    """The exceptions the delete of the series `master` deleted (`mark_deleted`, in its
    transaction: the same ``deleted_at``) are live again, as Google still holds them;
    ``synced`` unless a write of their own is still queued (then it is pushed)."""
    queued = sa.exists().where(_outbox.c.event_id == _events.c.id, _outbox.c.status == "pending")
    session.execute(
        sa.update(_events)
        .where(
            _events.c.calendar_id == master.calendar_id,
            _events.c.recurring_event_id == series_id,
            _events.c.deleted_at == master.deleted_at,
        )
        .values(
            deleted_at=None,
            version=_events.c.version + 1,
            sync_state=sa.case((queued, "pending"), else_="synced"),
            sync_error=None,
            **KEEP_UPDATED_AT,
        )
    )


def discard_unsent(session: Session, stored: StoredEvent, series_id: str, *, now: datetime) -> bool:
    """Google refused for good to insert `stored` (as of its version) and holds no copy
    of it (decision JI2): the row is deleted and ``synced``, and for a series so are the
    exceptions made of it locally (`series_id`: its Google id), their queued writes
    closed. Returns False, writing nothing, if the row moved past `stored`'s version."""
    locked = lock_stored(session, stored.id)
    if locked is None or locked.version != stored.version or locked.deleted_at is not None:
        return False
    ids = [stored.id]
    if stored.event.is_recurring:
        ids += session.scalars(
            sa.select(_events.c.id).where(
                _events.c.calendar_id == stored.calendar_id,
                _events.c.recurring_event_id == series_id,
                _events.c.deleted_at.is_(None),
            )
        ).all()
    mark_deleted(session, ids, now=now)
    session.execute(
        sa.update(_events)
        .where(_events.c.id.in_(ids))
        .values(sync_state="synced", **KEEP_UPDATED_AT)
    )
    session.execute(
        sa.update(_outbox)
        .where(_outbox.c.event_id.in_(ids), _outbox.c.status == "pending")
        .values(status="done")
    )
    return True


def record_error(session: Session, event_id: uuid.UUID, reason: str) -> None:
    """The push gave up on the event: ``error`` with `reason`, visible in the API."""
    session.execute(
        sa.update(_events)
        .where(_events.c.id == event_id)
        .values(sync_state="error", sync_error=reason[:2000], **KEEP_UPDATED_AT)
    )
