"""The push: write an event's pending local changes to Google (design.md sections 1 and 5).

`push_outbox(services, providers, event_id)` is the use case behind the ``push_outbox``
job; it works on one event, whatever number of outbox rows it has:

- it takes the event's push lease (one writer per event across processes), reads the
  event's *current* state and writes it once, so queued edits collapse into one write;
- never seen by Google (no etag): insert under the deterministic id (`google_event_id`);
  409 means an earlier attempt got through: read it back and patch if needed;
- known to Google: patch with ``If-Match`` = the last Google etag; an exception (one
  changed instance) is a patch of the instance id, a cancelled one a delete of it;
- deleted locally: delete with ``If-Match``; already gone is success; a 412 there is
  logged and the delete repeated without ``If-Match`` (a local delete wins);
- deleted locally before Google ever got it (no etag, and no write of it was ever sent:
  `outbox.never_sent`, which counts an insert before sending it): nothing is sent, the
  rows are closed. An insert that was tried and whose answer was lost may have reached
  Google, so then the delete is sent (a delete of what is not there is a success);
- a new exception (an instance changed locally, no etag yet): read the instance and
  merge first (decision E23; a field both sides changed whose Google value is its
  series' own is the user's, JB1), then patch it with ``If-Match``, even when the merge
  left nothing to change: calsync lists it as an exception, so Google must hold one (C1);
- 412 on a patch: read Google's copy, `resolve` it against the stored base with the
  calendar's policy, store and log the result, and push again (bounded rounds); a manual
  conflict flags the event ``conflict`` and stops until a PUT resolves it;
- success: Google's etag, sequence and update time are stored, the pushed version the
  base; ``synced``, rows closed, only if the version did not move meanwhile (else
  another round pushes the newer one; rows close by version, `outbox.close`);
- transient failures, rate limits: retried with exponential backoff (at least
  Retry-After) until ``outbox_max_attempts``, then ``error``; quota exhausted: the
  user's writes pause; auth revoked: stop (the rows wait for the next sign-in); a write
  refused as its author may only read the calendar now: Google's copy is stored, a
  deleted row live again, a create Google never had deleted (JD1, JI1, JI2); other
  errors: ``error``, unless the event was edited meanwhile (the newer one is pushed).

Every push, conflict and failure lands in the sync log; time is ``services.clock``'s.
The merges with Google's copy are `calsync.sync.write_back_merge`'s.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from calsync.domain.models import Event
from calsync.logs import log_context
from calsync.providers.base import ProviderSource
from calsync.providers.errors import (
    AuthRevoked,
    PreconditionFailed,
    ProviderError,
    QuotaExceeded,
    RateLimited,
)
from calsync.services import Services
from calsync.store import event_changes, outbox
from calsync.store.calendar_views import CalendarView
from calsync.store.db import note_pushed, reads_alone
from calsync.store.event_queries import find_by_provider_id, read_stored
from calsync.store.events import StoredEvent
from calsync.store.sync_logs import LogStatus
from calsync.sync.resolve import (
    policy_for,
)
from calsync.sync.write_back_call import (
    Write,
    backoff,
    google_copy_kept,
    may_be_unsent,
    restorable_refusal,
    unexpected_failure,
)
from calsync.sync.write_back_merge import PushAgain, PushRound, PushStatus
from calsync.sync.write_back_refused import discard_unsent
from calsync.sync.write_back_series import exceptions_kept

__all__ = ["PushResult", "PushStatus", "backoff", "push_outbox"]

log = logging.getLogger(__name__)

LEASE: Final = timedelta(minutes=2)
MAX_ROUNDS: Final = 5
QUOTA_PAUSE: Final = timedelta(hours=1)
WAIT_FOR_SERIES: Final = timedelta(seconds=2)


@dataclass(frozen=True, slots=True)
class PushResult:
    status: PushStatus
    api_calls: int = 0


def push_outbox(services: Services, providers: ProviderSource, event_id: uuid.UUID) -> PushResult:
    """Write event `event_id`'s pending changes to Google (see the module docstring).

    Idempotent and safe to run concurrently: a second run while one holds the lease
    returns `BUSY` at once. Raises nothing for provider failures (they are recorded);
    database errors propagate (the job is retried).
    """
    now = services.clock()
    with services.sessions.begin() as session:
        if not outbox.claim_event(session, event_id, now=now, until=now + LEASE):
            return PushResult(PushStatus.BUSY)
    calls = 0
    try:
        for _ in range(MAX_ROUNDS):
            pusher = _WriteBack(services, providers, event_id)
            try:
                status = pusher.run()
            except PushAgain:
                calls += pusher.api_calls
                continue
            return PushResult(status, calls + pusher.api_calls)
        return PushResult(PushStatus.PENDING, calls)
    finally:
        with services.sessions.begin() as session:
            outbox.release_event(session, event_id)


class _WriteBack(PushRound):
    """One round of pushing one event: the write, its success and its failures."""

    def run(self) -> PushStatus:
        with self.services.sessions() as opened, reads_alone(opened) as session:
            # Rows first: each is committed with its version of the event, so the event
            # read next holds every edit of the rows read (the reads share no snapshot,
            # and so run outside a transaction, IR1). Closing does not rely on it (it
            # goes by version); attempts and delays do.
            pending = outbox.pending_writes(session, self.event_id)
            stored = read_stored(session, self.event_id)
            if stored is None or pending is None:
                return PushStatus.NOTHING
            unsent = may_be_unsent(stored) and outbox.never_sent(session, self.event_id)
            found = outbox.push_context(
                session, user_id=stored.user_id, calendar_id=stored.calendar_id
            )
            assert found is not None
            state, calendar = found
            master = None
            if stored.event.recurring_event_id is not None:
                master = find_by_provider_id(
                    session,
                    calendar_id=stored.calendar_id,
                    provider_id=stored.event.recurring_event_id,
                )
        with log_context(user_id=stored.user_id, calendar_id=stored.calendar_id):
            if unsent and state.active:
                return self._dropped(stored)
            return self._push(stored, pending, state, calendar, master)

    def _push(
        self,
        stored: StoredEvent,
        pending: outbox.PendingWrites,
        state: outbox.WriteState,
        calendar: CalendarView,
        master: StoredEvent | None,
    ) -> PushStatus:
        if not state.active:
            return PushStatus.STOPPED
        now = self.now()
        if state.paused_until is not None and state.paused_until > now:
            with self.services.sessions.begin() as session:
                outbox.defer_user(session, stored.user_id, until=state.paused_until)
            return PushStatus.PAUSED
        if stored.sync_state == "conflict":
            return PushStatus.CONFLICT
        if master is not None and master.event.etag is None and master.deleted_at is None:
            # The series is not on Google yet: its exception waits for it (not an attempt).
            with self.services.sessions.begin() as session:
                outbox.defer_event(session, self.event_id, until=now + WAIT_FOR_SERIES)
            return PushStatus.PENDING
        self.provider = self.providers.for_user(stored.user_id)
        policy = policy_for(calendar.conflict_policy, self.services.settings.conflict_policy)
        write = self.write = Write(self.provider, calendar.provider_calendar_id, stored)
        if write.changes_an_unread_instance:
            # Google holds the instance already, perhaps changed by another client since
            # calsync generated it: read and merge first (as after a 412; the exception's
            # base is the generated instance), then the next round patches it with
            # If-Match. A blind patch of every field would overwrite that change.
            return self._merge(stored, write, policy, pending)
        if write.will_insert:
            # counted before it is sent: a lost answer must not look like "never sent"
            with self.services.sessions.begin() as session:
                outbox.count_attempt(session, self.event_id, up_to=pending.last_id)
        try:
            remote = write.send()
        except PreconditionFailed:
            return self._merge(stored, write, policy, pending)
        except ProviderError as err:
            return self._failed(stored, pending, err)
        except Exception as err:
            # Not Google's answer (a token that no longer decrypts, a bug): handled like a
            # passing provider failure, so the rows back off, the log says so, and the
            # event ends ``error`` after the last attempt instead of failing unseen.
            log.error("push of event %s failed unexpectedly", self.event_id, exc_info=err)
            return self._failed(stored, pending, unexpected_failure(err))
        return self._succeeded(stored, write, remote)

    def _succeeded(self, stored: StoredEvent, write: Write, remote: Event | None) -> PushStatus:
        with self.services.sessions.begin() as session:
            synced = event_changes.record_pushed(
                session, self.event_id, pushed=stored.event, remote=remote, version=stored.version
            )
            # closes nothing if the event moved on (then not synced: pushed again below)
            outbox.close(session, self.event_id, version=stored.version)
            single = event_changes.pushed_single(stored, remote) if remote and synced else None
            if single is not None:
                note_pushed(session, single)  # its document alone is replaced (IG2)
            if remote is not None and synced:
                event_changes.adopt_conference(
                    session,
                    self.event_id,
                    pushed=stored.event,
                    remote=remote,
                    version=stored.version,
                )
            self._log(
                session, stored, LogStatus.OK, write.operation, write.details or None, changed=1
            )
        self._count(LogStatus.OK)
        if not synced:
            raise PushAgain
        return PushStatus.SYNCED

    def _dropped(self, stored: StoredEvent) -> PushStatus:
        """Deleted before any write of it reached Google: close the rows, send nothing."""
        with self.services.sessions.begin() as session:
            synced = event_changes.record_pushed(
                session, self.event_id, pushed=stored.event, remote=None, version=stored.version
            )
            outbox.close(session, self.event_id, version=stored.version)
            self._log(
                session, stored, LogStatus.OK, "deleted before it reached Google: nothing sent"
            )
        if not synced:
            raise PushAgain
        return PushStatus.SYNCED

    def _discard_refused(self, stored: StoredEvent, reason: str) -> PushStatus:
        """Google refused the write for good, its author may only read the calendar now:
        Google's copy replaces the event, or a create Google never had goes (JD1, JI1,
        JI2), not an ``error`` event no later edit could clear; the log keeps it."""
        assert self.write is not None
        try:
            kept = google_copy_kept(self.write, stored)
            # a refused cut of a series: its exceptions the split deleted come back (JJ1)
            exceptions = exceptions_kept(self.services, self.write, stored, kept[0]) if kept else []
        except ProviderError:
            return self._failed_for_good(stored, reason)
        if kept is not None:
            return self._store_merge(
                stored, self.write, kept[0], kept[1], refused=reason, exceptions=exceptions
            )
        if not self.write.will_insert:
            return self._failed_for_good(stored, reason)
        if not discard_unsent(self.services, stored, self.write, reason, api_calls=self.api_calls):
            raise PushAgain
        self._count(LogStatus.ERROR)
        return PushStatus.SYNCED

    def _failed(
        self, stored: StoredEvent, pending: outbox.PendingWrites, err: ProviderError
    ) -> PushStatus:
        reason = f"{type(err).__name__}: {err.message}"
        now = self.now()
        if isinstance(err, AuthRevoked):
            log.info(
                "push stopped: account needs re-authorisation", extra={"user_id": stored.user_id}
            )
            self._count(LogStatus.ERROR)
            return PushStatus.STOPPED
        if isinstance(err, QuotaExceeded):
            with self.services.sessions.begin() as session:
                outbox.pause_user(session, stored.user_id, until=now + QUOTA_PAUSE)
                self._log(session, stored, LogStatus.ERROR, f"writes paused: {reason}")
            self._count(LogStatus.RETRY)
            return PushStatus.PAUSED
        if restorable_refusal(err, stored, self.write):
            return self._discard_refused(stored, reason)
        attempts = pending.attempts + 1
        if err.retryable and attempts < self.services.settings.outbox_max_attempts:
            retry_after = err.retry_after if isinstance(err, RateLimited) else None
            with self.services.sessions.begin() as session:
                outbox.retry_later(
                    session,
                    self.event_id,
                    up_to=pending.last_id,
                    due_at=now + backoff(attempts, retry_after),
                    error=reason,
                    counted=self.write is not None and self.write.will_insert,
                )
                self._log(session, stored, LogStatus.RETRY, reason)
            self._count(LogStatus.RETRY)
            return PushStatus.RETRY
        if err.retryable:
            reason = f"gave up after {attempts} attempts: {reason}"
        return self._failed_for_good(stored, reason)

    def _failed_for_good(self, stored: StoredEvent, reason: str) -> PushStatus:
        """The write of `stored` cannot succeed: its rows fail and the event is ``error``;
        but if the event was edited meanwhile, the failure concerned an older version and
        another round pushes the newer one (raises `PushAgain`)."""
        with self.services.sessions.begin() as session:
            # the event row first: locked (PostgreSQL), so no newer version commits before
            # record_error below; on SQLite the close starts the one write transaction
            event_changes.lock_stored(session, self.event_id)
            current = outbox.close(
                session, self.event_id, version=stored.version, failed=True, error=reason
            )
            if current:
                event_changes.record_error(session, self.event_id, reason)
            else:
                reason = f"{reason} (of an older version: pushing the newer one)"
            self._log(session, stored, LogStatus.ERROR, reason)
        self._count(LogStatus.ERROR)
        if not current:
            raise PushAgain
        return PushStatus.ERROR
