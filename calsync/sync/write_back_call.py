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
import dataclasses
from datetime import timedelta
from enum import StrEnum
from typing import Any, Final

from calsync.domain.conflicts import ConflictPolicy
from calsync.domain.models import SYNCABLE_FIELDS, Event, EventStatus
from calsync.providers.base import CalendarProvider
from calsync.providers.errors import (
    Conflict,
    NotFound,
    Permanent,
    PreconditionFailed,
    ProviderError,
    Transient,
)
from calsync.providers.google.ids import google_event_id
from calsync.store.events import StoredEvent
from calsync.sync.resolve import Resolution, resolve

__all__ = [
    "Operation",
    "Write",
    "backoff",
    "differs",
    "google_copy_kept",
    "may_be_unsent",
    "operation_for",
    "restorable_refusal",
    "unexpected_failure",
]

MAX_BACKOFF: Final = timedelta(hours=1)


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    """The push's delay before attempt `attempts` + 1: 2, 4, 8 ... seconds, at most an
    hour, never less than Google's Retry-After."""
    delay = timedelta(seconds=min(2**attempts, MAX_BACKOFF.total_seconds()))
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


def differs(before: Event, after: Event) -> bool:
    """Whether two versions of an event differ in a field both sides can change."""
    return any(getattr(before, f) != getattr(after, f) for f in SYNCABLE_FIELDS)


def restorable_refusal(err: ProviderError, stored: StoredEvent, write: Write | None) -> bool:
    """Whether Google refused `write` for good because its author may only read the
    calendar now (403 ``requiredAccessLevel``: write access taken away after calsync
    accepted the edit) and Google's copy can replace it: a patch of an event Google
    holds (decision JD1), the delete of one (the row comes back, JI1), or an insert
    (Google's copy if an earlier attempt got through, else the row goes, JI2); not an
    instance's first change, nor the delete of an exception's row (its series' delete
    brings it back)."""
    return (
        isinstance(err, Permanent)
        and err.status == 403
        and err.reason == "requiredAccessLevel"
        and write is not None
        and (stored.deleted_at is None or not stored.event.is_exception)
        and not write.changes_an_unread_instance
    )


def google_copy_kept(write: Write, stored: StoredEvent) -> tuple[Event, Resolution] | None:
    """Google's copy of `write`'s event and its merge with the stored version in which
    the local side changed nothing (so Google's copy stands, decision JD1); None when
    Google holds no live copy. Raises `ProviderError` when it cannot be read."""
    try:
        remote = write.provider.get_event(write.calendar, write.google_id)
    except NotFound:
        return None
    if remote.status == EventStatus.CANCELLED:
        return None
    local = dataclasses.replace(stored.event, updated=stored.updated_at)
    return remote, resolve(
        base=local, local=local, remote=remote, policy=ConflictPolicy.REMOTE_WINS
    )


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


def unexpected_failure(err: Exception) -> Transient:
    """A failure that is not a provider's answer, as the retryable error the push's
    failure path records: its class only, never its text (which may quote data)."""
    return Transient(f"unexpected {type(err).__name__}; see the worker's log")


def may_be_unsent(stored: StoredEvent) -> bool:
    """Deleted locally and never acknowledged by Google (no etag), and not an instance of
    a series (Google has those with their series): a candidate for sending nothing."""
    event = stored.event
    return stored.deleted_at is not None and event.etag is None and not event.is_exception
