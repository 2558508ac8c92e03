"""Connecting a user: calendars, first sync and push channels (end of the OAuth callback).

`connect_user` is idempotent: running it again (a repeated message, a second sign-in)
opens only the channels that are missing and queues pulls only for calendars that have
none queued.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from calsync.sync import kicks
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.channels import ensure_channels

if TYPE_CHECKING:
    from calsync.bootstrap import Services

__all__ = ["connect_user", "follow_calendar_list", "queue_pulls"]


def connect_user(services: Services, user_id: uuid.UUID) -> list[uuid.UUID]:
    """List the user's calendars, queue a pull of each, open the missing channels.

    Returns the ids of the calendars a pull was queued for.
    """
    change = sync_calendar_list(services, user_id)
    queued = queue_pulls(services, [*change.added, *change.kept])
    ensure_channels(services, user_id)
    return queued


def follow_calendar_list(services: Services, user_id: uuid.UUID) -> bool:
    """After the user's calendar list changed (its channel pushed): store the added and
    removed calendars, queue a pull of each added one and open its channel.

    Coalesced (`kicks.calendar_list_started` / `calendar_list_finished`): returns True
    when the list changed again while it was read, and one more read must follow (its
    queue slot stays taken); then the caller enqueues it. Raises what the provider
    raises, leaving the queue slot taken (the retry, or the scheduler's sweep, reads
    again).
    """
    with services.sessions.begin() as session:
        kicks.calendar_list_started(session, user_id, services.clock())
    change = sync_calendar_list(services, user_id)
    queue_pulls(services, list(change.added))
    if change.added:
        ensure_channels(services, user_id)
    with services.sessions.begin() as session:
        return kicks.calendar_list_finished(session, user_id, services.clock())


def queue_pulls(services: Services, calendar_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Queue one pull per calendar unless one is queued or running already (coalesced)."""
    queued: list[uuid.UUID] = []
    for calendar_id in calendar_ids:
        with services.sessions.begin() as session:
            claim = kicks.note_change(session, calendar_id, services.clock())
        if claim is not None:
            services.jobs.sync_calendar.send(str(calendar_id))
            queued.append(calendar_id)
    return queued
