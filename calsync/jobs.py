"""Dramatiq actors: thin adapters from a message to a use case.

A message carries ids and timestamps, never objects; the actor reloads state, so a stale or
repeated message is harmless (Dramatiq delivers at least once). Actors are declared on the
broker of a :class:`~calsync.services.Services` by :func:`declare_jobs`, not at import
time, so that tests and processes each get their own broker.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import dramatiq

from calsync.events import upkeep
from calsync.job_handles import Jobs
from calsync.notify.jobs import declare_notify_jobs
from calsync.providers.budget import BudgetDeferred, Priority, spending
from calsync.providers.errors import AuthRevoked, ProviderError, QuotaExceeded, RateLimited
from calsync.queue import Queue
from calsync.services import Services
from calsync.store.tables import QueueHeartbeat
from calsync.store.upsert import upsert
from calsync.sync import audit, channels, connect, polling, pull, write_back

log = logging.getLogger(__name__)

#: How often a job retries a provider failure that may pass (Dramatiq's backoff between).
PROVIDER_RETRIES = 8
#: How long a user's jobs wait after Google said their daily quota is used up.
QUOTA_PAUSE_MS = 15 * 60 * 1000


#: How often a job retries a failure that is not a provider's answer (a database error,
#: a secret that no longer decrypts, a bug): a few times, in case it passes.
UNEXPECTED_RETRIES = 3


def retry_provider_failures(retries: int, exception: BaseException) -> bool:
    """Dramatiq ``retry_when``: retry what may pass by itself, a bounded number of times.

    Rate limits and quota pauses (``dramatiq.Retry``) and retryable provider errors are
    retried; a provider's permanent answer never is; any other exception is retried
    `UNEXPECTED_RETRIES` times (the use case has recorded it already)."""
    if isinstance(exception, dramatiq.Retry):
        return retries < PROVIDER_RETRIES * 2
    if isinstance(exception, ProviderError):
        return exception.retryable and retries < PROVIDER_RETRIES
    return isinstance(exception, Exception) and retries < UNEXPECTED_RETRIES


def provider_failure(err: ProviderError) -> None:
    """The failure policy shared by jobs that call Google.

    Rate limits come back after their Retry-After (``dramatiq.Retry`` with that delay);
    a used-up quota pauses for a while; a revoked grant stops (the account is marked
    ``needs_reauth`` and nothing retries); transient failures are re-raised for
    Dramatiq's exponential backoff; permanent ones are dropped (already logged).
    """
    if isinstance(err, RateLimited):
        delay = int((err.retry_after or 5) * 1000)
        raise dramatiq.Retry(f"rate limited: {err.message}", delay=delay) from err
    if isinstance(err, QuotaExceeded):
        raise dramatiq.Retry("Google quota used up", delay=QUOTA_PAUSE_MS) from err
    if isinstance(err, AuthRevoked):
        log.info("not retrying: %s", err.message)
        return
    if err.retryable:
        raise err
    log.warning("giving up: %r", err)


#: How long a run of the read model's upkeep waits before it tries again the owners
#: another transaction held (that transaction's own records ask for a run too).
UPKEEP_AGAIN_MS = 2_000


class _Work:
    """What each actor does, for one process's services: a message's ids in, one use
    case called within the budget priority of its work, the failure policy applied. A
    method's name is its actor's name; `declare_jobs` declares them and sets `jobs`,
    through which a job queues itself (or another) again."""

    jobs: Jobs

    def __init__(self, services: Services) -> None:
        self.services = services

    def heartbeat(self, sent_at: str) -> None:
        """Record that a heartbeat sent at ``sent_at`` went all the way through a worker."""
        with self.services.sessions.begin() as session:
            upsert(
                session,
                QueueHeartbeat.__table__,  # type: ignore[arg-type]
                {
                    "name": "queue",
                    "sent_at": datetime.fromisoformat(sent_at),
                    "processed_at": self.services.clock(),
                    "processed_by": self.services.process_name,
                },
                key=["name"],
            )

    def connect_user(self, user_id: str) -> None:
        """List a new user's calendars, queue their first pulls, open their channels."""
        try:
            with spending(Priority.INTERACTIVE):
                connect.connect_user(self.services, uuid.UUID(user_id))
        except ProviderError as err:
            provider_failure(err)

    def sync_calendar(self, calendar_id: str, why: str = "notification") -> None:
        """Pull one calendar (coalesced: at most one queued or running per calendar).

        `why` it was queued (``interactive``, ``notification``, ``poll``) is the budget
        priority of its requests; a pull the day's budget has no room for is deferred
        (`polling.defer_pull`), never dropped."""
        priority = polling.pull_priority(why)
        calendar = uuid.UUID(calendar_id)
        if not self.services.budget.has_room(priority):
            polling.defer_pull(self.services, calendar, priority)
            return
        try:
            with spending(priority):
                outcome = pull.pull_calendar(
                    self.services, calendar, polled=priority is Priority.POLL
                )
        except BudgetDeferred:
            polling.defer_pull(self.services, calendar, priority)
            return
        except ProviderError as err:
            provider_failure(err)
            return
        if outcome.again_in is not None:  # notifications arrived during the pull
            self.jobs.sync_calendar.send_with_options(
                args=(calendar_id,), delay=int(outcome.again_in * 1000)
            )

    def audit_calendar(self, calendar_id: str) -> None:
        """Compare one calendar with a full listing from Google and repair what differs
        (`calsync.sync.audit`); also the second listing of held deletions. Spent as a
        poll: without room it waits, claimed again by the audit sweep when there is."""
        if not self.services.budget.has_room(Priority.POLL):
            return
        try:
            with spending(Priority.POLL):
                outcome = audit.audit_calendar(self.services, uuid.UUID(calendar_id))
        except BudgetDeferred:
            return
        except ProviderError as err:
            provider_failure(err)
            return
        if outcome.again_in is not None:  # changes arrived meanwhile: one more pull
            self.jobs.sync_calendar.send_with_options(
                args=(calendar_id,), delay=int(outcome.again_in * 1000)
            )

    def sync_calendar_list(self, user_id: str) -> None:
        """Add and remove a user's calendars after their calendar list changed (coalesced:
        at most one queued or running per user, and one more if it changed meanwhile)."""
        try:
            with spending(Priority.INTERACTIVE):
                again = connect.follow_calendar_list(self.services, uuid.UUID(user_id))
        except ProviderError as err:
            provider_failure(err)
            return
        if again:
            self.jobs.sync_calendar_list.send_with_options(
                args=(user_id,), delay=int(self.services.settings.sync_min_interval_seconds * 1000)
            )

    def renew_channels(self) -> None:
        """The channel sweep: queue the renewal of the channels that expire soon (batch
        jobs, `fan_out_renewals`), stop those of users no longer active, open those
        active users lack (each bounded per run)."""
        fan_out_renewals(self.services, self.jobs)
        with spending(Priority.NOTIFICATION):
            channels.stop_inactive_users_channels(self.services)
            channels.reopen_missing_channels(self.services)

    def renew_channel_batch(self, channel_ids: list[str]) -> None:
        """Replace a batch of claimed channels (new first, then stop the old) within the
        job's budget; what is left is given back for the next sweep."""
        with spending(Priority.NOTIFICATION):
            channels.renew_claimed(
                self.services, [uuid.UUID(i) for i in channel_ids], budget=channels.RENEW_JOB_BUDGET
            )

    def stop_channel(self, channel_id: str) -> None:
        """Stop a channel calsync no longer uses but Google still pushes to."""
        with spending(Priority.NOTIFICATION):
            channels.stop_known_channel(self.services, uuid.UUID(channel_id))

    def push_outbox(self, event_id: str) -> None:
        """Write one event's pending changes to Google (`calsync.sync.write_back`); the push
        records provider failures and schedules its own retries in the outbox."""
        with spending(Priority.WRITE):
            result = write_back.push_outbox(
                self.services, self.services.providers, uuid.UUID(event_id)
            )
        if result.status is write_back.PushStatus.PENDING:
            self.jobs.push_outbox.send_with_options(
                args=(event_id,), delay=int(write_back.WAIT_FOR_SERIES.total_seconds() * 1000)
            )

    def refresh_read_model(self) -> None:
        """Re-expand the changes recorded for the read model (`calsync.events.upkeep`);
        queued after the commit of a write that left some, and by the scheduler's
        sweep while any are left. Queues itself again when its time was up, or later
        when an owner was held by another transaction."""
        done = upkeep.catch_up(self.services.sessions)
        if done.more:
            self.jobs.refresh_read_model.send()
        elif done.held:
            self.jobs.refresh_read_model.send_with_options(delay=UPKEEP_AGAIN_MS)


def declare_jobs(services: Services) -> Jobs:
    """Declare calsync's actors on ``services.broker`` and return them: each actor's
    queue, priority and retry policy here, what it does in `_Work`."""
    provider_options: dict[str, Any] = {
        "max_retries": PROVIDER_RETRIES * 2,
        "min_backoff": 1_000,
        "max_backoff": 300_000,
        "retry_when": retry_provider_failures,
    }
    work = _Work(services)
    jobs = Jobs(
        heartbeat=_actor(services, work.heartbeat, queue=Queue.MAINTENANCE, max_retries=0),
        notify=declare_notify_jobs(services),
        connect_user=_actor(services, work.connect_user, queue=Queue.SYNC, **provider_options),
        sync_calendar=_actor(
            services, work.sync_calendar, queue=Queue.SYNC, pause_collector=True, **provider_options
        ),
        # Audits are background work: after the pulls a worker holds.
        audit_calendar=_actor(
            services,
            work.audit_calendar,
            queue=Queue.SYNC,
            priority=10,
            pause_collector=True,
            **provider_options,
        ),
        sync_calendar_list=_actor(
            services, work.sync_calendar_list, queue=Queue.SYNC, **provider_options
        ),
        renew_channels=_actor(
            services, work.renew_channels, queue=Queue.MAINTENANCE, max_retries=0
        ),
        # No retries: a renewal not done is claimed again when its claim runs out.
        renew_channel_batch=_actor(
            services,
            work.renew_channel_batch,
            queue=Queue.MAINTENANCE,
            max_retries=0,
            time_limit=int(channels.RENEW_TIME_LIMIT.total_seconds() * 1000),
        ),
        stop_channel=_actor(services, work.stop_channel, queue=Queue.MAINTENANCE, max_retries=0),
        # Interactive writes go before bulk syncs: own queue, and first within a worker.
        push_outbox=_actor(
            services, work.push_outbox, queue=Queue.WRITES, priority=-10, max_retries=5
        ),
        # No retries: a failure is logged per record by the use case, and the sweep
        # queues a run while records are left.
        refresh_read_model=_actor(
            services, work.refresh_read_model, queue=Queue.MAINTENANCE, max_retries=0
        ),
    )
    work.jobs = jobs
    return jobs


def fan_out_renewals(services: Services, jobs: Jobs) -> int:
    """Claim the channels to renew now (`channels.claim_renewals`, bounded per call) and
    queue one `renew_channel_batch` job per `channels.RENEW_BATCH` of them; returns how
    many channels were queued. A batch that cannot be queued is given back at once.
    Nothing is claimed while the daily budget has no room for channel work (decisions
    Y3): the channels stay due, a day before they expire, and are claimed when it has."""
    if not services.budget.has_room(Priority.NOTIFICATION):
        return 0
    margin = timedelta(seconds=services.settings.channel_renew_before_seconds)
    with services.sessions.begin() as session:
        claimed = channels.claim_renewals(session, now=services.clock(), margin=margin)
    for start in range(0, len(claimed), channels.RENEW_BATCH):
        batch = claimed[start : start + channels.RENEW_BATCH]
        try:
            jobs.renew_channel_batch.send([str(i) for i in batch])
        except Exception:
            log.exception("could not queue the renewal of %d channels", len(batch))
            channels.give_back(services, batch)
    return len(claimed)


def _actor(
    services: Services, fn: Any, *, queue: Queue, priority: int = 0, **options: Any
) -> dramatiq.Actor[..., Any]:
    return dramatiq.Actor(
        fn,
        broker=services.broker,
        actor_name=fn.__name__,
        queue_name=queue.value,
        priority=priority,
        options=options,
    )
