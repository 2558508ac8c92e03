"""The one Google write that brings Google to a stored event's state, for the push.

`operation_for` decides it (a pure decision: delete, insert or patch; decision N2) and
`Write` sends it with the calendar owner's provider: an insert under the deterministic
Google id, read back on 409 (an earlier attempt got through) and patched if it differs;
a patch with ``If-Match``; a delete, where already gone is success and a 412 deletes
again without ``If-Match`` (a local delete wins). What follows an answer (merges on
412, retries, the store) is `calsync.sync.write_back`'s.
"""

from __future__ import annotations

import contextlib
from enum import StrEnum
from typing import Any

from calsync.domain.models import SYNCABLE_FIELDS, Event, EventStatus
from calsync.providers.base import CalendarProvider
from calsync.providers.errors import Conflict, NotFound, PreconditionFailed
from calsync.providers.google.ids import google_event_id
from calsync.store.events import StoredEvent

__all__ = ["Operation", "Write", "differs", "operation_for"]


def differs(before: Event, after: Event) -> bool:
    """Whether two versions of an event differ in a field both sides can change."""
    return any(getattr(before, f) != getattr(after, f) for f in SYNCABLE_FIELDS)


class Operation(StrEnum):
    """The one Google write that brings Google to a stored event's state."""

    INSERT = "insert"  # Google never acknowledged the event
    UPDATE = "update"  # a patch of what Google holds
    DELETE = "delete"  # deleted locally, or a cancelled instance of a series


def operation_for(stored: StoredEvent) -> Operation:
    """The write `stored` needs (a pure decision; the decision table is in
    tests/unit/sync/test_write_back_call.py).

    Deleted locally, or a cancelled exception (Google removes the instance): a delete.
    Never acknowledged by Google (no etag) and not an instance of a series: an insert
    (an instance is on Google with its series, so it is patched, etag or not).
    Anything else: a patch."""
    event = stored.event
    if stored.deleted_at is not None or (
        event.is_exception and event.status == EventStatus.CANCELLED
    ):
        return Operation.DELETE
    if event.etag is None and not event.is_exception:
        return Operation.INSERT
    return Operation.UPDATE


class Write:
    """The one Google write that brings Google to the stored event's state."""

    def __init__(self, provider: CalendarProvider, calendar: str, stored: StoredEvent):
        self.provider = provider
        self.calendar = calendar
        self.stored = stored
        event = stored.event
        self.google_id = event.provider_event_id or google_event_id(stored.id)
        self.calsync_id = str(stored.id)
        self.operation = "update"
        self.details: dict[str, Any] = {}

    @property
    def changes_an_unread_instance(self) -> bool:
        """Whether this is the first write of a changed (not cancelled) instance of a
        series on Google: an exception calsync has no etag of yet."""
        event = self.stored.event
        return (
            self.stored.deleted_at is None
            and event.is_exception
            and event.status != EventStatus.CANCELLED
            and event.etag is None
        )

    @property
    def will_insert(self) -> bool:
        """Whether `send` inserts."""
        return operation_for(self.stored) is Operation.INSERT

    def send(self) -> Event | None:
        """Google's copy after the write (`None` after a delete). Raises `ProviderError`."""
        operation = operation_for(self.stored)
        self.operation = operation.value
        if operation is Operation.DELETE:
            self._delete()
            return None
        if operation is Operation.INSERT:
            return self._insert()
        return self._patch(self.stored.event.etag, self.stored.base)

    def _patch(self, etag: str | None, previous: Event | None) -> Event:
        return self.provider.patch_event(
            self.calendar,
            self.google_id,
            self.stored.event,
            calsync_id=self.calsync_id,
            if_match=etag,
            previous=previous,
        )

    def _insert(self) -> Event:
        try:
            return self.provider.insert_event(
                self.calendar,
                self.stored.event,
                event_id=self.google_id,
                calsync_id=self.calsync_id,
            )
        except Conflict:
            # An earlier attempt got through (its answer was lost): never a duplicate.
            self.details["insert"] = "already on Google (409): read back"
            remote = self.provider.get_event(self.calendar, self.google_id)
        if remote.status == EventStatus.CANCELLED:
            raise NotFound("the event was deleted on Google", status=410)
        if not differs(remote, self.stored.event):
            return remote
        return self._patch(remote.etag, remote)

    def _delete(self) -> None:
        etag = self.stored.event.etag
        try:
            self.provider.delete_event(self.calendar, self.google_id, if_match=etag)
        except NotFound:
            self.details["delete"] = "already gone on Google"
        except PreconditionFailed:
            self.details["delete"] = "changed on Google since the last sync; deleted anyway"
            with contextlib.suppress(NotFound):
                self.provider.delete_event(self.calendar, self.google_id, if_match=None)
