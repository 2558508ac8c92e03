"""Pulling one calendar: list what changed on Google and reconcile it into the store.

`pull_calendar` is the body of the ``sync_calendar`` job (design.md section 5):
- one pull at a time per calendar (`calsync.store.pull_leases`), across processes; the statement
  that takes the lease runs on its own, without a transaction around it; the listing
  uses the calendar owner's credentials, read through the one access-token path
  (`AccessTokens.for_user`, by way of the owner's provider);
- the listing pages through ``events.list`` with the stored sync token, or everything
  when there is none (or for an audit, `calsync.sync.audit`); a 410 drops the token and
  lists everything again, and the full listing then deletes the local rows Google no
  longer has, unless the mass-deletion guard holds them (`calsync.sync.deletion_guard`);
- the events and the new token are stored in one transaction, which first ends the
  pull on the calendar row if the lease is still this pull's (else it writes nothing),
  with a sync log row
  (pulled, changed, conflicts, duration, API calls, outcome), and with the change notices
  and reminders of the changed events (none announced by the first sync of a calendar);
- notifications that arrived during the pull lead to exactly one more pull, spaced by
  the minimum interval (`calsync.sync.kicks`).

Any failure after the lease is taken - a provider error, a database error, a secret that
no longer decrypts, a bug - is handled the same way (`_record_failure`): the lease is
given back, an error row naming the exception's class goes into the sync log, the
calendar's sync status becomes ``error``, and the exception is re-raised for the job's
retry policy. A 404 of the listing alone never removes a calendar: the owner's calendar
list is read to confirm it (`_confirm_gone`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.orm import Session

from calsync import metrics
from calsync.events import upkeep
from calsync.providers.base import CalendarProvider, ChangesPage
from calsync.providers.errors import AuthRevoked, NotFound, ProviderError, SyncTokenExpired
from calsync.services import Services
from calsync.store import calendars, pull_leases, pull_queue
from calsync.store.sync_logs import LogKind, LogStatus, record
from calsync.sync import calendar_list, kicks, pending_pulls, polling
from calsync.sync.deletion_guard import HoldOutcome
from calsync.sync.reconcile import CalendarRef, ReconcileReport, apply_changes
from calsync.sync.resolve import policy_for
from calsync.sync.stray_returns import returning_exceptions

__all__ = ["PullOutcome", "pull_calendar"]

log = logging.getLogger(__name__)

#: The engine option of the statement that takes the lease: one statement, atomic by
#: itself, so it runs without ``BEGIN``/``COMMIT`` (two round trips fewer per pull).
_AUTOCOMMIT: Final = {"isolation_level": "AUTOCOMMIT"}


@dataclass(frozen=True, slots=True)
class PullOutcome:
    """What one `pull_calendar` call did.

    `status`: ``ok``; ``busy`` (another worker holds the calendar: nothing done);
    ``skipped`` (the calendar is gone or not selected). `again_in`: seconds after which
    one more pull must run (changes arrived meanwhile), else `None`.
    """

    status: str
    full: bool = False
    report: ReconcileReport | None = None
    api_calls: int = 0
    again_in: float | None = None


@dataclass(frozen=True, slots=True)
class _Target:
    ref: CalendarRef
    google_id: str
    sync_token: str | None
    first_sync: bool


def pull_calendar(
    services: Services, calendar_id: uuid.UUID, *, audit: bool = False, polled: bool = False
) -> PullOutcome:
    """Bring the local copy of one calendar up to date with Google.

    `audit`: list everything whatever the sync token, compare unchanged rows too and log
    the run as an ``audit`` with its counts (`calsync.sync.audit`). `polled`: the pull is
    the safety net's (no notification asked for it); an audit is too. The next poll is
    set by `calsync.sync.polling.next_poll`: rarely with a live channel, often without,
    and often after a poll that found changes no notification had announced.

    Raises whatever made the pull fail - provider errors and any other exception alike -
    after recording it (`_record_failure`: lease given back, sync log row, calendar
    status ``error``), so that the job applies its retry policy. The queue slot stays
    taken then (unless the error is a provider's permanent one), and the retry (or the
    scheduler's sweep) pulls again.
    """
    owner = f"{services.process_name}:{threading.get_ident()}"
    lease_ttl = timedelta(seconds=services.settings.sync_lease_seconds)
    started = time.perf_counter()
    with services.engine.connect().execution_options(**_AUTOCOMMIT) as connection:
        calendar = pull_leases.start_pull(
            connection, calendar_id, owner=owner, now=services.clock(), ttl=lease_ttl
        )
    if calendar is None:
        return _not_taken(services, calendar_id)
    target = _target_of(services, calendar, audit=audit)
    provider = services.providers.for_user(target.ref.user_id)
    try:
        # `dirty` is cleared; before listing, end every pull marker and lease that
        # covered notifications (calsync.sync.pending_pulls): later ones are written
        pending_pulls.pull_starting(services, calendar_id)
        listing, full, refreshed = _listed_for_storing(services, provider, target)
        stored = _store(
            services, target, owner, listing, full, provider, started, audit, polled, refreshed
        )
    except Exception as err:
        # Whatever failed, the calendar must not stay leased, silent and "ok".
        _record_failure(services, target, owner, err, provider, started)
        raise
    if stored is None:
        log.warning("lost the sync lease of calendar %s; dropping this pull", calendar_id)
        return PullOutcome("busy")
    report, last_pull_at, again = stored
    delay = (
        kicks.pull_delay(
            last_pull_at, services.clock(), services.settings.sync_min_interval_seconds
        )
        if again
        else None
    )
    _count_run(target, "ok", full=full, report=report)
    return PullOutcome("ok", full=full, report=report, api_calls=provider.api_calls, again_in=delay)


def _target_of(services: Services, calendar: Any, *, audit: bool) -> _Target:
    """What a pull of `calendar` (its row, as the lease returned it) works on; an audit
    lists everything, whatever the sync token."""
    return _Target(
        CalendarRef(
            id=calendar.id,
            user_id=calendar.user_id,
            policy=policy_for(calendar.conflict_policy, services.settings.conflict_policy),
        ),
        calendar.provider_calendar_id,
        None if audit else calendar.sync_token,
        first_sync=calendar.last_synced_at is None,
    )


def _store(
    services: Services,
    target: _Target,
    owner: str,
    listing: ChangesPage,
    full: bool,
    provider: CalendarProvider,
    started: float,
    audit: bool,
    polled: bool = False,
    refreshed: frozenset[str] = frozenset(),
) -> tuple[ReconcileReport, datetime | None, bool] | None:
    """Store one listing and end the pull in one transaction: (the reconcile report, when
    the pull started, whether another pull must follow), or None when another worker took
    the lease over meanwhile (nothing is written then). `audit`: a verifying listing.
    Events the listing left out as unreadable are named in the sync log and, in a full
    listing, kept as they are rather than taken for deleted. `refreshed`: listed ids
    stored although their etag is the one held (`stray_returns`)."""
    with services.sessions.begin() as session:
        now = services.clock()
        often, rarely = polling.poll_slots(target.ref.id, now, services.settings)
        finished = pull_leases.finish_pull(
            session,
            target.ref.id,
            owner=owner,
            sync_token=listing.next_sync_token,
            now=now,
            poll_often=often,
            poll_rarely=rarely,
        )
        if finished is None:
            return None
        report = apply_changes(
            session,
            dataclasses.replace(target.ref, owner_email=finished.owner_email),
            listing.events,
            full_listing=full,
            unreadable=frozenset(listing.unreadable),
            now=now,
            announce=not target.first_sync,
            verify=audit,
            refreshed=refreshed,
            recheck_after=timedelta(seconds=services.settings.deletion_recheck_seconds),
        )
        if (polled or audit) and report.changed and not target.first_sync:
            # The safety net found what no notification announced: poll often again.
            pull_queue.poll_often_again(session, target.ref.id, often)
        _record_run(
            session,
            target,
            report,
            listing,
            full=full,
            audit=audit,
            now=now,
            provider=provider,
            started=started,
        )
    return report, finished.last_pull_at, finished.again


def _record_run(
    session: Session,
    target: _Target,
    report: ReconcileReport,
    listing: ChangesPage,
    *,
    full: bool,
    audit: bool,
    now: datetime,
    provider: CalendarProvider,
    started: float,
) -> None:
    """The sync log row of a stored listing (`_log_of`), with its counts: the storing
    transaction's last statement, which on PostgreSQL also counts the read model's
    records of the transaction for its commit (`upkeep.records_uncounted`, decision IO2:
    one statement fewer for a pull that wrote events)."""
    kind, status, message, details = _log_of(
        report, full=full, audit=audit, unreadable=listing.unreadable
    )
    recorded = record(
        session,
        user_id=target.ref.user_id,
        calendar_id=target.ref.id,
        kind=kind,
        status=status,
        at=now,
        pulled=report.pulled,
        changed=report.changed,
        conflicts=report.conflicts,
        api_calls=provider.api_calls,
        duration_ms=round((time.perf_counter() - started) * 1000),
        message=message,
        details=details,
        count_records=upkeep.records_uncounted,
    )
    if recorded is not None:
        upkeep.counted(session, recorded)


def _not_taken(services: Services, calendar_id: uuid.UUID) -> PullOutcome:
    """Why the lease was not taken: the calendar is gone, not selected or its owner not
    active (``skipped``; the queue slot is dropped: a disabled user's calendars are not
    pulled until the user is enabled again, and one who must sign in again is pulled
    after signing in), else another worker holds it (``busy``: its pull replaced the
    pull epoch before listing, and ``dirty`` is left as it is, so the epoch stays)."""
    with services.sessions.begin() as session:
        pulled = calendars.is_pulled(session, calendar_id)
        if pulled is None:
            return PullOutcome("skipped")
        if pulled:
            return PullOutcome("busy")
        pull_queue.drop(session, calendar_id)
    # `dirty` is dropped: no marker may cover a later notification (pending_pulls)
    pending_pulls.pull_starting(services, calendar_id)
    return PullOutcome("skipped")


def _listed_for_storing(
    services: Services, provider: CalendarProvider, target: _Target
) -> tuple[ChangesPage, bool, frozenset[str]]:
    """`_list_everything_changed`, with Google's copies of the stray exceptions a series
    extended again makes instances of again, and their ids (`stray_returns`, JJ2)."""
    listing, full = _list_everything_changed(provider, target)
    added, refreshed = returning_exceptions(
        services,
        provider,
        calendar_id=target.ref.id,
        google_calendar_id=target.google_id,
        events=listing.events,
    )
    return dataclasses.replace(listing, events=(*listing.events, *added)), full, refreshed


def _list_everything_changed(
    provider: CalendarProvider, target: _Target
) -> tuple[ChangesPage, bool]:
    """All pages of the listing (events, unreadable ids and the next sync token), and
    whether it was a full listing."""
    token = target.sync_token
    while True:
        try:
            listing = provider.list_all_changes(target.google_id, sync_token=token)
        except SyncTokenExpired:
            if token is None:
                raise
            log.info("sync token of calendar %s expired; listing everything", target.ref.id)
            token = None
            continue
        return listing, token is None


def _record_failure(
    services: Services,
    target: _Target,
    owner: str,
    err: Exception,
    provider: CalendarProvider,
    started: float,
) -> None:
    """Record a failed pull: the lease given back, the calendar's status ``error``, a sync
    log row naming the exception's class (a provider error's message too; never the
    text of another exception, which may quote data), and the queue slot freed if the
    error is a provider's permanent one (nothing will retry it but the sweeps); for a
    revoked grant the calendar also stays dirty, so signing in again pulls it at once.

    A 404 of the listing is confirmed against the owner's calendar list first
    (`_confirm_gone`). Failing to record (the database is down, say) is logged and
    swallowed: the caller re-raises the original error, and the lease runs out.
    """
    # A provider's passing failure is a retry; anything else is an error (retried too).
    retryable = isinstance(err, ProviderError) and err.retryable
    message = (
        f"{type(err).__name__}: {err.message}"
        if isinstance(err, ProviderError)
        else (f"{type(err).__name__} (unexpected; see the worker's log)")
    )
    if not isinstance(err, ProviderError):
        log.error("pull of calendar %s failed", target.ref.id, exc_info=err)
    details: dict[str, str] | None = None
    if isinstance(err, NotFound):
        details = {"not_found": _confirm_gone(services, target, provider)}
        message = f"{message} ({_NOT_FOUND_OUTCOMES[details['not_found']]})"
    try:
        with services.sessions.begin() as session:
            now = services.clock()
            exists = calendars.mark_sync_error(session, target.ref.id)
            record(
                session,
                user_id=target.ref.user_id,
                # a calendar removed just now (`_confirm_gone`) has no row to point to
                calendar_id=target.ref.id if exists else None,
                kind=LogKind.PULL,
                status=LogStatus.RETRY if retryable else LogStatus.ERROR,
                at=now,
                api_calls=provider.api_calls,
                duration_ms=round((time.perf_counter() - started) * 1000),
                message=message[:2000],
                details=details,
            )
            pull_leases.release(session, target.ref.id, owner=owner)
            if isinstance(err, AuthRevoked):  # nothing runs until they sign in again
                pull_queue.stranded(session, target.ref.id)
            elif isinstance(err, ProviderError) and not err.retryable:
                pull_queue.finish_pull(session, target.ref.id, now)
    except Exception:
        log.exception("could not record the failed pull of calendar %s", target.ref.id)
    _count_run(target, "retry" if retryable else "error", full=target.sync_token is None)


#: What `_confirm_gone` found, as the sync log says it.
_NOT_FOUND_OUTCOMES: Final = {
    "confirmed_gone": "gone from the owner's calendar list: the calendar was removed",
    "still_listed": "still in the owner's calendar list: kept, the next poll tries again",
    "unconfirmed": "the owner's calendar list could not be read: kept, tried again later",
}


def _confirm_gone(services: Services, target: _Target, provider: CalendarProvider) -> str:
    """After Google answered 404 to a listing: read the owner's calendar list with the
    owner's own credentials. The calendar is removed (with its events, by the calendar
    list sync) only if that list no longer has it; a 404 alone may come from a token
    mix-up or a passing fault, and must not lose a calendar. Returns the key of
    `_NOT_FOUND_OUTCOMES` that says what happened."""
    try:
        listed = {c.calendar_id for c in provider.list_calendars() if not c.deleted}
    except Exception as err:
        log.warning("could not confirm that calendar %s is gone: %r", target.ref.id, err)
        return "unconfirmed"
    if target.google_id in listed:
        return "still_listed"
    try:
        calendar_list.sync_calendar_list(services, target.ref.user_id)
    except Exception as err:
        log.warning("could not remove calendar %s: %r", target.ref.id, err)
        return "unconfirmed"
    return "confirmed_gone"


def _count_run(
    target: _Target, outcome: str, *, full: bool, report: ReconcileReport | None = None
) -> None:
    """A finished (committed) pull in ``calsync_sync_runs_total`` and what it applied."""
    metrics.SYNC_RUNS.labels("full" if full else "incremental", outcome).inc()
    if report is not None:
        metrics.SYNC_CHANGES.inc(report.changed)
        if report.hold_outcome is not None:
            metrics.DELETION_HOLDS.labels(report.hold_outcome.value).inc()
        if report.conflicts:
            metrics.CONFLICTS.labels(target.ref.policy.value, "pull").inc(report.conflicts)


def _log_of(
    report: ReconcileReport, *, full: bool, audit: bool, unreadable: Sequence[str] = ()
) -> tuple[LogKind, LogStatus, str | None, dict[str, Any]]:
    """The sync log's kind, status, message and details of a stored listing. Events left
    out as unreadable are counted in the details (``unreadable``, with up to
    `_UNREADABLE_NAMED` of their ids) and said in the message, whatever the status."""
    details: dict[str, Any] = {
        "inserted": report.inserted,
        "updated": report.updated,
        "deleted": report.deleted,
    }
    if audit:
        details |= {
            "compared": report.pulled,
            "missing_locally": report.inserted,
            "extra_locally": report.deleted + report.held,
            "different": report.updated,
            "drifted": report.drifted,
            "repaired": report.changed,
        }
    message = None
    if report.hold_outcome is not None:
        message = _HOLD_MESSAGES[report.hold_outcome]
    if report.hold_outcome is not None or report.held:
        outcome = report.hold_outcome.value if report.hold_outcome is not None else None
        details |= {"held": report.held, "hold": outcome}
    if unreadable:
        details |= {
            "unreadable": len(unreadable),
            "unreadable_ids": list(unreadable[:_UNREADABLE_NAMED]),
        }
        said = _unreadable_message(len(unreadable))
        message = f"{message}; {said}" if message else said
    status = LogStatus.HELD if report.held else LogStatus.OK
    kind = LogKind.AUDIT if audit else LogKind.FULL_SYNC if full else LogKind.PULL
    return kind, status, message, details


#: How many ids of unreadable events a sync log row names (its details stay small).
_UNREADABLE_NAMED: Final = 10


def _unreadable_message(count: int) -> str:
    events = "event" if count == 1 else "events"
    return (
        f"{count} Google {events} calsync cannot read left out; "
        "the rest of the calendar is synced (details name them; see the worker's log)"
    )


_HOLD_MESSAGES: Final = {
    HoldOutcome.HELD: "Google no longer lists most of this calendar's events: their "
    "deletion is held until a second listing agrees",
    HoldOutcome.APPLIED: "a second listing agreed: the held deletions were applied",
    HoldOutcome.RELEASED: "Google lists the held events again: the hold is released, "
    "nothing was deleted",
}
