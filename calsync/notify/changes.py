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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from calsync.domain.models import Event, EventStatus, EventTime
from calsync.notify.payloads import event_summary, instant_of, time_document
from calsync.notify.preferences import load_many
from calsync.store import deliveries, recipients
from calsync.store.tables import utcnow

__all__ = ["Change", "EventChange", "describe_change", "event_changed", "events_changed"]

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
    insert; no network. Does not commit. One change of :func:`events_changed`.
    """
    return events_changed(
        session,
        [EventChange(event_id, before, after)],
        actor_user_id=actor_user_id,
        source=source,
        now=now,
    )


@dataclass(frozen=True, slots=True)
class EventChange:
    """One changed event for :func:`events_changed`: its local id, both versions and,
    when the caller knows it, the owner of its row (else it is looked up)."""

    event_id: uuid.UUID
    before: Event | None
    after: Event | None
    owner_id: uuid.UUID | None = None


def events_changed(
    session: Session,
    changes: Sequence[EventChange],
    *,
    actor_user_id: uuid.UUID | None,
    source: Source,
    now: datetime | None = None,
    actor_email: str | None = None,
    sync_owner: tuple[uuid.UUID, str] | None = None,
) -> int:
    """:func:`event_changed` for each of ``changes`` (same recipients, payloads and dedupe
    keys), in three queries and one insert whatever their number. Call it while the rows
    still exist (before deleting them), so that their owners are found. Returns how many
    delivery rows were recorded. Does not commit.

    `actor_email`: the actor's email, when the caller knows it (an API write): changes
    whose people are all the actor (owner, organizer, attendees) tell nobody, so they
    read nothing (decision HV2).
    `sync_owner`: for a sync, the id and email of the user whose calendar it stores:
    changes whose people are all that user, their organizer (the author), tell nobody,
    so they read nothing either (decision IC1).
    """
    noticed = _worth_a_notice(changes, source)
    if not noticed:
        return 0
    worth = [change for change, _, _ in noticed]
    if _only_the_actor(worth, actor_user_id, actor_email):
        return 0
    if source == "sync" and actor_user_id is None and _only_the_organizer(worth, sync_owner):
        return 0
    now = now or utcnow()
    recipients_of = _recipients_by_event(
        session, [change for change, _, _ in noticed], actor_user_id=actor_user_id, source=source
    )
    prefs = load_many(session, set().union(*recipients_of.values()))
    rows: list[dict[str, Any]] = []
    for change, kind, fields in noticed:
        told = sorted(u for u in recipients_of[change.event_id] if prefs[u].change_notices)
        if told:  # else nobody to tell: no payload to build
            channels = {user_id: prefs[user_id].channels for user_id in told}
            rows.extend(_delivery_rows(change, kind, fields, source, channels, now=now))
    return deliveries.add_new(session, rows)


def _worth_a_notice(
    changes: Sequence[EventChange], source: Source
) -> list[tuple[EventChange, str, list[str]]]:
    """``(change, kind, changed fields)`` of the changes people hear about: not those
    that changed nothing they would notice, nor an event a sync created."""
    noticed = []
    for change in changes:
        described = describe_change(change.before, change.after)
        if described is None or (described[0] == "created" and source != "api"):
            continue
        noticed.append((change, *described))
    return noticed


def _only_the_actor(
    changes: Sequence[EventChange], actor_user_id: uuid.UUID | None, actor_email: str | None
) -> bool:
    """Whether the actor is the only person of every change: its row's owner (known
    without a read), and its organizer and attendees (before and after) have the actor's
    email or none. The author is never told, so nobody would be: the recipients' read
    can be left out. A user's email is unique, so no other user can be among them."""
    if actor_user_id is None or not actor_email:
        return False
    for change in changes:
        if change.owner_id != actor_user_id:
            return False
        for version in (change.before, change.after):
            if version is None:
                continue
            if version.organizer_email not in (None, "", actor_email):
                return False
            if any(a.email != actor_email for a in version.attendees):
                return False
    return True


def _only_the_organizer(
    changes: Sequence[EventChange], owner: tuple[uuid.UUID, str] | None
) -> bool:
    """For a sync, whose author is the organizer: whether every change's row is
    `owner`'s (id and email), the owner's email is an organizer of it (before or after)
    and its other organizer and attendees have that email or none. The owner is then its
    only person and its author (removed as the organizer), so nobody would be told. A
    user's email is unique, so no other user can be among them."""
    if owner is None:
        return False
    owner_id, email = owner
    for change in changes:
        if change.owner_id != owner_id:
            return False
        versions = [v for v in (change.before, change.after) if v is not None]
        if not any(v.organizer_email == email for v in versions):
            return False  # the owner is not the author: told
        for version in versions:
            if version.organizer_email not in (None, "", email):
                return False
            if any(a.email != email for a in version.attendees):
                return False
    return True


def _recipients_by_event(
    session: Session,
    changes: Sequence[EventChange],
    *,
    actor_user_id: uuid.UUID | None,
    source: Source,
) -> dict[uuid.UUID, set[uuid.UUID]]:
    """The users to tell of each change, by event id (see the module docstring): the
    active users among its owner, organizer and attendees, but its author (the actor, or
    for a sync the organizer). Two queries: the unknown owners, the active users."""
    owners: dict[uuid.UUID, uuid.UUID] = {
        c.event_id: c.owner_id for c in changes if c.owner_id is not None
    }
    unknown = [c.event_id for c in changes if c.owner_id is None]
    owners.update(recipients.owners_of(session, unknown))
    emails: set[str] = set()
    for change in changes:
        for version in (change.before, change.after):
            if version is not None:
                emails |= {a.email for a in version.attendees}
                if version.organizer_email:
                    emails.add(version.organizer_email)
    users = recipients.active_users(session, set(owners.values()), emails)
    by_email = {email: user_id for user_id, email in users.items()}
    recipients_of = {
        change.event_id: _recipients(change, owners.get(change.event_id), users, by_email)
        - ({actor_user_id} if actor_user_id is not None else set())
        for change in changes
    }
    if actor_user_id is None and source == "sync":
        for change in changes:
            organizers = {v.organizer_email for v in (change.before, change.after) if v}
            recipients_of[change.event_id] -= {by_email[e] for e in organizers if e in by_email}
    return recipients_of


def _delivery_rows(
    change: EventChange,
    kind: str,
    fields: list[str],
    source: Source,
    channels: dict[uuid.UUID, tuple[str, ...]],
    *,
    now: datetime,
) -> list[dict[str, Any]]:
    """The pending delivery rows of one change: one per user of `channels` (in its
    order) and channel of theirs, all with the same payload, due `now`."""
    reference = change.after if change.after is not None else change.before
    assert reference is not None
    uid = reference.provider_event_id or str(change.event_id)
    payload = _payload(kind, fields, source, change.before, change.after, uid)
    change_id = _change_id(payload)
    occurrence = instant_of(reference.start, reference.timezone or "UTC")
    return [
        {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "event_id": change.event_id,
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
        for user_id, user_channels in channels.items()
        for channel in user_channels
    ]


def _recipients(
    change: EventChange,
    owner: uuid.UUID | None,
    users: dict[uuid.UUID, str],
    by_email: dict[str, uuid.UUID],
) -> set[uuid.UUID]:
    """The active users among the event's owner, organizer and attendees."""
    found = {owner} if owner is not None and owner in users else set()
    for version in (change.before, change.after):
        if version is None:
            continue
        emails = {a.email for a in version.attendees}
        if version.organizer_email:
            emails.add(version.organizer_email)
        found |= {by_email[e] for e in emails if e in by_email}
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
