"""Connecting a user: calendars, first sync and push channels (end of the OAuth callback).

`connect_user` is idempotent: running it again (a repeated message, a second sign-in)
opens only the channels that are missing and queues pulls only for calendars that have
none queued. It does nothing for a user whose tokens lack calendar access (granular
consent: they unticked it on Google's consent screen) but log why.
"""

from __future__ import annotations

import uuid

from calsync.providers.errors import AuthRevoked
from calsync.providers.google.oauth import grants_calendar
from calsync.services import Services
from calsync.store import credentials, list_queue, sync_logs
from calsync.sync import kicks
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.channels import ensure_channels

__all__ = ["connect_user", "follow_calendar_list", "queue_pulls"]


def connect_user(services: Services, user_id: uuid.UUID) -> list[uuid.UUID]:
    """List the user's calendars, open the missing channels, queue a pull of each.

    Returns the ids of the calendars a pull was queued for: none when the user has no
    calendar access (no tokens, or tokens without the calendar scope); then one sync log
    row says so and nothing calls Google. Not an error to retry: only a new sign-in that
    grants calendar access changes it (and queues this again).
    """
    if not has_calendar_access(services, user_id):
        return []
    change = sync_calendar_list(services, user_id)
    try:
        # Channels before pulls: a change made after a channel opens is pushed, and one
        # made before is in the pull queued after it. The other order loses a change made
        # between a quick first pull and the channel (until the safety-net sweep).
        ensure_channels(services, user_id)
    finally:
        queued = queue_pulls(services, [*change.added, *change.kept])
    return queued


def has_calendar_access(services: Services, user_id: uuid.UUID) -> bool:
    """Whether the user's stored tokens grant calendar access; if not, log why (kind
    ``auth``) so the user sees what to do."""
    with services.sessions.begin() as session:
        scopes = credentials.granted_scopes(session, user_id)
        if scopes is not None and grants_calendar(scopes):
            return True
        sync_logs.record(
            session,
            user_id=user_id,
            kind=sync_logs.LogKind.AUTH,
            status=sync_logs.LogStatus.ERROR,
            at=services.clock(),
            message=NOT_CONNECTED_MESSAGE,
        )
    return False


#: The sync log's word to a user whose sign-in did not grant calendar access.
NOT_CONNECTED_MESSAGE = (
    "Google calendar access was not granted, so nothing is synced; "
    "sign in again and tick calendar access on Google's consent screen"
)


def follow_calendar_list(services: Services, user_id: uuid.UUID) -> bool:
    """After the user's calendar list changed (its channel pushed): store the added and
    removed calendars, open each added one's channel and queue its pull.

    Coalesced (`list_queue.calendar_list_started` / `calendar_list_finished`): returns True
    when the list changed again while it was read, and one more read must follow (its
    queue slot stays taken); then the caller enqueues it. Raises what the provider
    raises, leaving the queue slot taken (the retry, or the scheduler's sweep, reads
    again); but after a revoked grant the slot is freed and the list stays marked
    changed (`list_queue.calendar_list_stranded`): nothing retries until they sign in again.
    """
    with services.sessions.begin() as session:
        list_queue.calendar_list_started(session, user_id, services.clock())
    try:
        change = sync_calendar_list(services, user_id)
    except AuthRevoked:  # nothing reads it until they sign in again: free the slot
        with services.sessions.begin() as session:
            list_queue.calendar_list_stranded(session, user_id)
        raise
    try:
        if change.added:  # channels before pulls, as in `connect_user`
            ensure_channels(services, user_id)
    finally:
        queue_pulls(services, list(change.added))
    with services.sessions.begin() as session:
        return list_queue.calendar_list_finished(session, user_id, services.clock())


def queue_pulls(services: Services, calendar_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Queue one pull per calendar unless one is queued or running already (coalesced)."""
    queued: list[uuid.UUID] = []
    for calendar_id in calendar_ids:
        with services.sessions.begin() as session:
            claim = kicks.note_change(session, calendar_id, services.clock())
        if claim is not None:
            services.jobs.sync_calendar.send(str(calendar_id), "interactive")
            queued.append(calendar_id)
    return queued
