"""Change notices: telling the people of an event that someone else changed or cancelled it.

A change is worth a notice when the title, the time (start or end instant) or the location
changed, or the event was cancelled or deleted; an event created through the API is an
invitation for its attendees. Events created by a sync are not announced: a first sync
would otherwise announce a user's whole calendar, and Google already sent those invitations.

Who is told: the owner of the event's row and every calsync user among the organizer and
attendees (before or after the change), except whoever made it. Through the API that is
``actor_user_id``; a sync does not say who changed an event at Google, and Google lets only
the organizer change it for everyone, so the organizer is taken as the author.

Once per change: the ``dedupe_key`` is made of the event's Google id (shared by the
organizer's and the attendees' copies), the instance for an exception, a fingerprint of
what changed (old and new title, times, location, status), the user and the channel. The
same change seen twice, through the API and again when the attendee's copy syncs, gives
the same key, and ``ON CONFLICT DO NOTHING`` keeps one. (The same change made again later,
after being undone, has the same fingerprint and is not announced twice; accepted.)
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from calsync.domain.models import Event, EventStatus, EventTime
from calsync.notify.payloads import event_summary, instant_of, time_document
from calsync.notify.preferences import load_many
from calsync.store.tables import Event as EventRow
from calsync.store.tables import NotificationDelivery, User, utcnow

__all__ = ["Change", "describe_change", "event_changed"]

Source = Literal["sync", "api"]
Change = tuple[str, list[str]]


def describe_change(before: Event | None, after: Event | None) -> Change | None:
    """``("created" | "updated" | "cancelled", changed fields)``, or None when nothing a
    person needs to hear about changed."""
    gone = after is None or after.status == EventStatus.CANCELLED
    was_gone = before is None or before.status == EventStatus.CANCELLED
    if gone:
        return None if was_gone else ("cancelled", ["status"])
    if was_gone:
        return ("created", [])
    assert before is not None
    assert after is not None
    changed = [
        name
        for name, old, new in (
            ("title", before.title, after.title),
            ("start", _moment(before.start), _moment(after.start)),
            ("end", _moment(before.end), _moment(after.end)),
            ("location", before.location, after.location),
        )
        if old != new
    ]
    return ("updated", changed) if changed else None


def _moment(value: EventTime) -> object:
    return value.day if value.day is not None else value.instant


def event_changed(
    session: Session,
    *,
    before: Event | None,
    after: Event | None,
    event_id: uuid.UUID,
    actor_user_id: uuid.UUID | None,
    source: Source,
    now: datetime | None = None,
) -> int:
    """Record change notices for the people of event ``event_id`` (see the module
    docstring). Returns how many delivery rows were recorded; sending is the scheduler's.

    Call it in the transaction that changes the event, before or after the row changed
    (a soft-deleted row is fine; for a row deleted outright the owner is not found and
    only the attendees and organizer are told). Cheap: a few indexed queries and one
    insert; no network. Does not commit.
    """
    change = describe_change(before, after)
    if change is None:
        return 0
    kind, fields = change
    if kind == "created" and source != "api":
        return 0
    reference = after if after is not None else before
    assert reference is not None
    now = now or utcnow()
    recipients = _recipients(session, event_id, before, after, actor_user_id, source)
    prefs = load_many(session, set(recipients))
    uid = reference.provider_event_id or str(event_id)
    payload = _payload(kind, fields, source, before, after, uid)
    change_id = _change_id(payload)
    occurrence = instant_of(reference.start, reference.timezone or "UTC")
    rows = [
        {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "event_id": event_id,
            "kind": "change",
            "channel": channel,
            "occurrence_start": occurrence,
            "lead_minutes": None,
            "dedupe_key": f"change|{change_id}|{user_id}|{channel}",
            "status": "pending",
            "due_at": now,
            "attempts": 0,
            "payload": payload,
            "created_at": now,
            "updated_at": now,
        }
        for user_id in sorted(recipients)
        if prefs[user_id].change_notices
        for channel in prefs[user_id].channels
    ]
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = session.execute(
        insert(NotificationDelivery)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(NotificationDelivery.id),
        rows,
    )
    return len(result.all())


def _recipients(
    session: Session,
    event_id: uuid.UUID,
    before: Event | None,
    after: Event | None,
    actor_user_id: uuid.UUID | None,
    source: Source,
) -> set[uuid.UUID]:
    versions = [e for e in (before, after) if e is not None]
    emails = {a.email for e in versions for a in e.attendees}
    organizers = {e.organizer_email for e in versions if e.organizer_email}
    emails |= organizers
    owner = session.scalar(sa.select(EventRow.user_id).where(EventRow.id == event_id))
    conditions: list[sa.ColumnElement[bool]] = [User.email.in_(sorted(emails))] if emails else []
    if owner is not None:
        conditions.append(User.id == owner)
    if not conditions:
        return set()
    users = session.execute(
        sa.select(User.id, User.email).where(sa.or_(*conditions), User.status != "disabled")
    ).all()
    found = {user.id for user in users}
    if actor_user_id is not None:
        found.discard(actor_user_id)
    elif source == "sync":
        found -= {user.id for user in users if user.email in organizers}
    return found


def _payload(
    kind: str,
    fields: list[str],
    source: Source,
    before: Event | None,
    after: Event | None,
    uid: str,
) -> dict[str, Any]:
    current = after if after is not None else before
    assert current is not None
    return {
        "change": kind,
        "changed": fields,
        "source": source,
        "event": event_summary(current, uid=uid),
        "before": event_summary(before, uid=uid) if before is not None else None,
        "after": event_summary(after, uid=uid) if after is not None else None,
        "recurrence_id": time_document(current.original_start)
        if current.original_start is not None
        else None,
    }


def _change_id(payload: dict[str, Any]) -> str:
    def essentials(summary: dict[str, Any] | None) -> Iterable[Any] | None:
        if summary is None:
            return None
        return [summary[k] for k in ("title", "start", "end", "location", "status")]

    identity = [
        payload["event"]["uid"],
        payload["recurrence_id"],
        payload["change"],
        essentials(payload["before"]),
        essentials(payload["after"]),
    ]
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:40]
