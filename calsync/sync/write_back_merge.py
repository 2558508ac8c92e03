"""One round of the push's shared state, and its merges with Google's copy.

`PushRound` holds what one round of `calsync.sync.write_back.push_outbox` works with
(the event, its provider, the write chosen) and its sync-log rows, and merges the stored
event with Google's copy: after a 412 or before an instance's first change (`_merge`,
three-way with the calendar's policy, decision E23), or, for a write refused for good
because its author may only read the calendar now, with Google's copy standing
(`_store_merge` with `refused`, decisions JD1, JI1). The round's own steps (the write,
its success and its failures) are `calsync.sync.write_back`'s.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from calsync import metrics
from calsync.domain.conflicts import ConflictPolicy
from calsync.domain.models import Event, EventStatus
from calsync.notify.on_event_change import event_changed, reschedule_reminders
from calsync.providers.base import CalendarProvider, ProviderSource
from calsync.providers.errors import ProviderError
from calsync.services import Services
from calsync.store import event_changes, outbox, sync_logs
from calsync.store.events import StoredEvent
from calsync.store.sync_logs import LogKind, LogStatus
from calsync.sync.resolve import Resolution, exception_base, resolve, series_questions
from calsync.sync.write_back_call import Write, differs
from calsync.sync.write_back_series import ExceptionCopy, restore_exceptions

__all__ = ["PushAgain", "PushRound", "PushStatus"]


class PushStatus(StrEnum):
    SYNCED = "synced"  # Google holds the event's current state
    NOTHING = "nothing"  # no pending write (already pushed, or unknown event)
    BUSY = "busy"  # another push holds the event's lease
    PENDING = "pending"  # progress made, more to push (rounds used up, or waiting)
    RETRY = "retry"  # transient failure; rows due again later
    PAUSED = "paused"  # the user's writes are paused
    STOPPED = "stopped"  # the account needs re-authorisation
    CONFLICT = "conflict"  # a manual conflict waits for the user
    ERROR = "error"  # permanent failure, recorded on the event


class PushAgain(Exception):
    """Internal to the push: this round changed the event; push it once more."""


class PushRound:
    """One round of pushing one event: its state, its log rows and its merges; the
    failure steps (`_failed`, `_failed_for_good`) are the subclass's."""

    def __init__(self, services: Services, providers: ProviderSource, event_id: uuid.UUID):
        self.services = services
        self.providers = providers
        self.event_id = event_id
        self.provider: CalendarProvider | None = None
        self.write: Write | None = None

    @property
    def api_calls(self) -> int:
        return self.provider.api_calls if self.provider is not None else 0

    def now(self) -> datetime:
        return self.services.clock()

    def _failed(
        self, stored: StoredEvent, pending: outbox.PendingWrites, err: ProviderError
    ) -> PushStatus:
        raise NotImplementedError

    def _failed_for_good(self, stored: StoredEvent, reason: str) -> PushStatus:
        raise NotImplementedError

    def _merge(
        self,
        stored: StoredEvent,
        write: Write,
        policy: ConflictPolicy,
        pending: outbox.PendingWrites,
    ) -> PushStatus:
        assert self.provider is not None
        try:
            remote = self.provider.get_event(write.calendar, write.google_id)
        except ProviderError as err:
            with self.services.sessions() as session:
                pending = outbox.pending_writes(session, self.event_id) or pending
            return self._failed(stored, pending, err)
        if remote.status == EventStatus.CANCELLED:
            return self._failed_for_good(stored, "the event was deleted on Google")
        local = dataclasses.replace(stored.event, updated=stored.updated_at)
        base = stored.base
        if write.changes_an_unread_instance and base is not None:
            try:
                base = self._exception_base(base, local, remote, write)
            except ProviderError as err:
                return self._failed(stored, pending, err)
        resolution = resolve(base=base, local=local, remote=remote, policy=policy)
        if resolution.conflict or resolution.manual:
            metrics.CONFLICTS.labels(policy.value, "push").inc()
        return self._store_merge(stored, write, remote, resolution)

    def _store_merge(
        self,
        stored: StoredEvent,
        write: Write,
        remote: Event,
        resolution: Resolution,
        refused: str | None = None,
        exceptions: Sequence[ExceptionCopy] = (),
    ) -> PushStatus:
        """Store a merge with Google's copy (`remote`), log it (as refused if `refused`),
        and tell what changed: `CONFLICT` for a manual one, `SYNCED` when Google holds
        the merge already; else raises `PushAgain` (push the merge, or merge anew).
        `exceptions`: a refused series' exceptions to store as Google holds them, in the
        same transaction (decision JJ1)."""
        conflict = resolution.details if resolution.manual else None
        revive = refused is not None and stored.deleted_at is not None
        with self.services.sessions.begin() as session:
            saved = event_changes.record_merged(
                session,
                self.event_id,
                merged=resolution.merged,
                remote=remote,
                version=stored.version,
                conflict=conflict,
                revive=revive,
            )
            if saved is None:
                raise PushAgain  # edited locally meanwhile: merge the newer version
            restore_exceptions(session, exceptions)
            if refused is None:
                self._log_merge(session, stored, resolution)
            else:
                self._log_refused(session, stored, write, resolution, refused, len(exceptions))
            if revive or exceptions or differs(stored.event, saved.event):
                event_changed(
                    session,
                    before=None if revive else stored.event,
                    after=saved.event,
                    event_id=self.event_id,
                    actor_user_id=None,
                    source="sync",
                    now=self.now(),
                )
                reschedule_reminders(session, self.event_id, now=self.now())
            if resolution.manual:
                return PushStatus.CONFLICT
            if not resolution.push_needed and not write.changes_an_unread_instance:
                # A new exception is written even when it equals Google's instance
                # (decision C1): calsync lists it as an exception of its own, so Google
                # must hold it as one; a generated instance is no exception there.
                event_changes.record_pushed(
                    session, self.event_id, pushed=saved.event, remote=remote, version=saved.version
                )
                outbox.close(session, self.event_id, version=saved.version)
                return PushStatus.SYNCED
        raise PushAgain

    def _log_refused(
        self,
        session: Any,
        stored: StoredEvent,
        write: Write,
        resolution: Resolution,
        refused: str,
        exceptions: int,
    ) -> None:
        """The push's log row of a write refused for good whose event got Google's copy
        back (and `exceptions` of its series with it)."""
        what = {"insert": "create", "delete": "delete"}.get(write.operation, "edit")
        message = f"{refused}; the {what} was discarded and Google's copy restored"
        details = resolution.details | {"refused": what}
        if exceptions:
            details["exceptions_kept"] = exceptions
        self._log(session, stored, LogStatus.ERROR, message, details)

    def _log_merge(self, session: Any, stored: StoredEvent, resolution: Resolution) -> None:
        sync_logs.record(
            session,
            user_id=stored.user_id,
            calendar_id=stored.calendar_id,
            event_id=self.event_id,
            kind=LogKind.CONFLICT,
            status=LogStatus.MANUAL if resolution.manual else LogStatus.RESOLVED,
            at=self.now(),
            conflicts=resolution.conflicting_fields,
            api_calls=self.api_calls,
            message="Google's copy changed since the last sync; merged (push got 412)",
            details=resolution.details,
        )

    def _exception_base(self, base: Event, local: Event, remote: Event, write: Write) -> Event:
        """The base of a new exception's first merge: Google's changes that its series
        made stand behind the user's (`exception_base`; reads the series only if a field
        changed on both sides)."""
        units = series_questions(base=base, local=local, remote=remote)
        if not units or not remote.recurring_event_id:
            return base
        assert self.provider is not None
        series = self.provider.get_event(write.calendar, remote.recurring_event_id)
        return exception_base(base=base, remote=remote, series=series, units=units)

    def _count(self, outcome: LogStatus) -> None:
        """One finished Google write in ``calsync_outbox_writes_total`` (ok, retry, error)."""
        operation = self.write.operation if self.write is not None else "update"
        metrics.OUTBOX_WRITES.labels(operation, outcome.value).inc()

    def _log(
        self,
        session: Any,
        stored: StoredEvent,
        status: LogStatus,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        changed: int = 0,
    ) -> None:
        """One push row of the sync log for `stored` (`changed`: rows Google took)."""
        sync_logs.record(
            session,
            user_id=stored.user_id,
            calendar_id=stored.calendar_id,
            event_id=self.event_id,
            kind=LogKind.PUSH,
            status=status,
            at=self.now(),
            changed=changed,
            api_calls=self.api_calls,
            message=message[:2000],
            details=details,
        )
