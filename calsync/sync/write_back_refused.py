"""A create Google refused for good because its author may only read the calendar now
(403 ``requiredAccessLevel`` on the insert; decision JI2), for the push.

Google holds no copy of the event (`calsync.sync.write_back` read it first: a copy an
earlier attempt made is kept as for a refused edit, JD1), and none can be made by this
user: the event goes, as Google's state says, rather than staying ``error``, local only
and refused on every later edit or delete. The sync log keeps what was refused
(``details.local``), where its author can read it (``GET /sync/logs``).
"""

from __future__ import annotations

from calsync.domain.codec import event_to_document
from calsync.notify.on_event_change import event_changed, reschedule_reminders
from calsync.services import Services
from calsync.store import event_changes, sync_logs
from calsync.store.events import StoredEvent
from calsync.store.sync_logs import LogKind, LogStatus
from calsync.sync.write_back_call import Write

__all__ = ["discard_unsent"]


def discard_unsent(
    services: Services, stored: StoredEvent, write: Write, reason: str, *, api_calls: int
) -> bool:
    """Delete the refused event `stored` (and a series' local exceptions) locally, tell
    its people as for a deletion pulled from Google, and log the refusal, in one
    transaction. False, nothing written, if the event was edited since `stored` was read
    (the push then handles the newer version)."""
    now = services.clock()
    with services.sessions.begin() as session:
        if not event_changes.discard_unsent(session, stored, write.google_id, now=now):
            return False
        event_changed(
            session,
            before=stored.event,
            after=None,
            event_id=stored.id,
            actor_user_id=None,
            source="sync",
            now=now,
        )
        reschedule_reminders(session, stored.id, now=now)
        sync_logs.record(
            session,
            user_id=stored.user_id,
            calendar_id=stored.calendar_id,
            event_id=stored.id,
            kind=LogKind.PUSH,
            status=LogStatus.ERROR,
            at=now,
            api_calls=api_calls,
            message=f"{reason}; the create was discarded: Google never had the event"[:2000],
            details={"refused": "insert", "local": event_to_document(stored.event)},
        )
    return True
