"""Pulling one calendar: list what changed on Google and reconcile it into the store.

`pull_calendar` is the body of the ``sync_calendar`` job (design.md section 5):
- one pull at a time per calendar (`calsync.sync.lease`), across processes; the statement
  that takes the lease also reads the owner's stored Google token, which the listing's
  first request uses (`AccessTokens.read_with`) instead of reading it again; it runs
  on its own, without a transaction around it;
- the listing pages through ``events.list`` with the stored sync token, or everything
  when there is none; a 410 drops the token and lists everything again, and the full
  listing then deletes the local rows Google no longer has;
- the events and the new token are stored in one transaction, which first ends the
  pull on the calendar row if the lease is still this pull's (else it writes nothing),
  with a sync log row
  (pulled, changed, conflicts, duration, API calls, outcome), and with the change notices
  and reminders of the changed events (none announced by the first sync of a calendar);
- notifications that arrived during the pull lead to exactly one more pull, spaced by
  the minimum interval (`calsync.sync.kicks`).

Provider errors are logged and re-raised for the job to decide on retries; the lease is
always given back.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Final, cast

import sqlalchemy as sa

from calsync import metrics
from calsync.domain.models import Event
from calsync.providers.base import CalendarProvider
from calsync.providers.errors import NotFound, ProviderError, SyncTokenExpired
from calsync.providers.google.access import stored_token_columns
from calsync.store.sync_logs import LogKind, LogStatus, record
from calsync.store.tables import Calendar, User
from calsync.sync import kicks, lease
from calsync.sync.reconcile import CalendarRef, ReconcileReport, apply_changes
from calsync.sync.resolve import policy_for

if TYPE_CHECKING:
    from calsync.bootstrap import Services

__all__ = ["PullOutcome", "pull_calendar"]

log = logging.getLogger(__name__)
_calendars = cast(sa.Table, Calendar.__table__)
#: The owner's stored Google token, read by the statement that takes the lease.
_TOKEN_COLUMNS: Final = stored_token_columns(_calendars.c.user_id)
_users = cast(sa.Table, User.__table__)
#: The owner's email unless the owner is disabled (what the change notices look up).
_OWNER_EMAIL: Final = (
    sa.select(_users.c.email)
    .where(_users.c.id == _calendars.c.user_id, _users.c.status != "disabled")
    .scalar_subquery()
    .label("owner_email")
)

#: The statements of every pull, built once (their compiled forms are reused):
#: taking the lease (and starting the pull, and reading the owner's token, which the
#: listing's first request uses) ...
_ACQUIRE: Final = lease.acquire_selected_statement(
    kicks.pull_started(lease.NOW), returning=_TOKEN_COLUMNS
)
_NOW = sa.bindparam("now", type_=_calendars.c.last_synced_at.type)
_OWNER = sa.bindparam("owner", type_=_calendars.c.sync_lease_owner.type)
#: ... and ending it, first thing in the transaction that stores the listing: if the
#: lease is still this pull's, the new sync token, the status, the lease given back, the
#: queue slot freed or kept (`kicks.pull_finished`), and the owner's email for the
#: notices; no row if another worker took the lease over (the transaction then writes
#: nothing). The update locks the calendar row until the commit (``FOR NO KEY UPDATE``,
#: as `lease.still_held` does), so nothing it decided can change before the events
#: are stored.
_FINISH: Final = (
    sa.update(_calendars)
    .where(
        _calendars.c.id == sa.bindparam("calendar_id", type_=_calendars.c.id.type),
        _calendars.c.sync_lease_owner == _OWNER,
    )
    .values(
        sync_token=sa.bindparam("sync_token", type_=_calendars.c.sync_token.type),
        last_synced_at=_NOW,
        last_sync_status="ok",
        sync_lease_owner=None,
        sync_lease_until=None,
        **kicks.pull_finished(_NOW),
    )
    .returning(_calendars.c.last_pull_at, _calendars.c.dirty, _OWNER_EMAIL)
)
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


def pull_calendar(services: Services, calendar_id: uuid.UUID) -> PullOutcome:
    """Bring the local copy of one calendar up to date with Google.

    Raises the provider's errors (after logging them and releasing the lease), so that
    the job applies its retry policy. The queue slot stays taken then, and the retry (or
    the scheduler's sweep) pulls again.
    """
    owner = f"{services.process_name}:{threading.get_ident()}"
    lease_ttl = timedelta(seconds=services.settings.sync_lease_seconds)
    started = time.perf_counter()
    with services.engine.connect().execution_options(**_AUTOCOMMIT) as connection:
        calendar = lease.acquire_selected(
            connection,
            calendar_id,
            owner=owner,
            now=services.clock(),
            ttl=lease_ttl,
            statement=_ACQUIRE,
        )
    if calendar is None:
        return _not_taken(services, calendar_id)
    target = _Target(
        CalendarRef(
            id=calendar.id,
            user_id=calendar.user_id,
            policy=policy_for(calendar.conflict_policy, services.settings.conflict_policy),
        ),
        calendar.provider_calendar_id,
        calendar.sync_token,
        first_sync=calendar.last_synced_at is None,
    )
    provider = services.providers.for_user(target.ref.user_id)
    with _collector_paused():  # see _collector_paused
        try:
            with services.access_tokens.read_with(target.ref.user_id, calendar):
                events, next_token, full = _list_everything_changed(provider, target)
        except ProviderError as err:
            _record_failure(services, target, owner, err, provider, started)
            raise
        with services.sessions.begin() as session:
            now = services.clock()
            finished = session.execute(
                _FINISH,
                {"calendar_id": calendar_id, "sync_token": next_token, "now": now, "owner": owner},
            ).one_or_none()
            if finished is None:
                log.warning("lost the sync lease of calendar %s; dropping this pull", calendar_id)
                return PullOutcome("busy")
            last_pull_at, again, owner_email = finished
            report = apply_changes(
                session,
                target.ref,
                events,
                full_listing=full,
                now=now,
                announce=not target.first_sync,
                known_users={target.ref.user_id: owner_email} if owner_email is not None else {},
            )
            calls = provider.api_calls
            record(
                session,
                user_id=target.ref.user_id,
                calendar_id=calendar_id,
                kind=LogKind.FULL_SYNC if full else LogKind.PULL,
                status=LogStatus.OK,
                at=now,
                pulled=report.pulled,
                changed=report.changed,
                conflicts=report.conflicts,
                api_calls=calls,
                duration_ms=round((time.perf_counter() - started) * 1000),
                details={
                    "inserted": report.inserted,
                    "updated": report.updated,
                    "deleted": report.deleted,
                },
            )
    delay = (
        kicks.pull_delay(
            last_pull_at, services.clock(), services.settings.sync_min_interval_seconds
        )
        if again
        else None
    )
    _count_run(target, "ok", full=full, report=report)
    return PullOutcome("ok", full=full, report=report, api_calls=calls, again_in=delay)


def _not_taken(services: Services, calendar_id: uuid.UUID) -> PullOutcome:
    """Why the lease was not taken: the calendar is gone or not selected (``skipped``; a
    deselected calendar's queue slot is dropped), else another worker holds it (``busy``)."""
    with services.sessions.begin() as session:
        stored = session.get(Calendar, calendar_id)
        if stored is None:
            return PullOutcome("skipped")
        if not stored.selected:
            kicks.drop(session, calendar_id)
            return PullOutcome("skipped")
        return PullOutcome("busy")


@dataclass(slots=True)
class _CollectorPause:
    lock: threading.Lock = field(default_factory=threading.Lock)
    holders: int = 0
    resume: bool = False


_pause = _CollectorPause()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a pull lists and stores events.

    A full listing allocates hundreds of thousands of short-lived, acyclic containers
    (the JSON of the listing, the events, the row values), freed by reference counting;
    with the collector on, they trigger repeated collections that walk the worker's
    growing heap, about a third of a 10,000-event pull's CPU. The collector is paused
    while any pull of the process is in this section (worker threads share it) and
    resumes with the last one, if it was running before; cycles made meanwhile are
    collected then.
    """
    with _pause.lock:
        _pause.holders += 1
        if _pause.holders == 1:
            _pause.resume = gc.isenabled()
            gc.disable()
    try:
        yield
    finally:
        with _pause.lock:
            _pause.holders -= 1
            if _pause.holders == 0 and _pause.resume:
                gc.enable()


def _list_everything_changed(
    provider: CalendarProvider, target: _Target
) -> tuple[list[Event], str | None, bool]:
    """All pages of the listing: (events, next sync token, whether it was a full listing)."""
    token = target.sync_token
    while True:
        try:
            events, next_token = _all_pages(provider, target.google_id, token)
        except SyncTokenExpired:
            if token is None:
                raise
            log.info("sync token of calendar %s expired; listing everything", target.ref.id)
            token = None
            continue
        return events, next_token, token is None


def _all_pages(
    provider: CalendarProvider, google_id: str, sync_token: str | None
) -> tuple[list[Event], str | None]:
    listing = provider.list_all_changes(google_id, sync_token=sync_token)
    return list(listing.events), listing.next_sync_token


def _record_failure(
    services: Services,
    target: _Target,
    owner: str,
    err: ProviderError,
    provider: CalendarProvider,
    started: float,
) -> None:
    with services.sessions.begin() as session:
        now = services.clock()
        calendar = session.get(Calendar, target.ref.id)
        if calendar is not None:
            calendar.last_sync_status = "error"
            if isinstance(err, NotFound):
                calendar.selected = False  # gone on Google; the calendar list sync removes it
        record(
            session,
            user_id=target.ref.user_id,
            calendar_id=target.ref.id,
            kind=LogKind.PULL,
            status=LogStatus.RETRY if err.retryable else LogStatus.ERROR,
            at=now,
            api_calls=provider.api_calls,
            duration_ms=round((time.perf_counter() - started) * 1000),
            message=f"{type(err).__name__}: {err.message}",
        )
        lease.release(session, target.ref.id, owner=owner)
        if not err.retryable:
            kicks.finish_pull(session, target.ref.id, now)
    _count_run(target, "retry" if err.retryable else "error", full=target.sync_token is None)


def _count_run(
    target: _Target, outcome: str, *, full: bool, report: ReconcileReport | None = None
) -> None:
    """A finished (committed) pull in ``calsync_sync_runs_total`` and what it applied."""
    metrics.SYNC_RUNS.labels("full" if full else "incremental", outcome).inc()
    if report is not None:
        metrics.SYNC_CHANGES.inc(report.changed)
        if report.conflicts:
            metrics.CONFLICTS.labels(target.ref.policy.value, "pull").inc(report.conflicts)
