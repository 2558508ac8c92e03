"""The scheduler: periodic tasks that enqueue work for the workers.

It owns no state: each task queries the database (the truth) and enqueues kicks, so a
restart, a lost message or a second scheduler costs at most a repeated, harmless job.
Time is injected; :meth:`Scheduler.run_pending` is what tests call.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from calsync.bootstrap import Services
from calsync.events import read_model, upkeep
from calsync.job_handles import NotifyJobs
from calsync.jobs import fan_out_renewals
from calsync.providers.budget import Priority
from calsync.store import list_queue, outbox
from calsync.sync import audit, kicks

log = logging.getLogger(__name__)


@dataclass
class PeriodicTask:
    """``action(now)`` run every ``every``; first run at the first tick."""

    name: str
    every: timedelta
    action: Callable[[datetime], None]
    next_run: datetime | None = None


@dataclass
class Scheduler:
    """Runs :class:`PeriodicTask` s when they fall due."""

    clock: Callable[[], datetime]
    tasks: list[PeriodicTask] = field(default_factory=list)

    def run_pending(self, now: datetime | None = None) -> list[str]:
        """Run every task that is due at ``now``; return the names of those that ran.

        A failing task is logged and retried at its next period; it never stops the others.
        """
        now = now or self.clock()
        ran = []
        for task in self.tasks:
            if task.next_run is not None and now < task.next_run:
                continue
            task.next_run = now + task.every
            try:
                task.action(now)
            except Exception:
                log.exception("scheduled task %s failed", task.name)
                continue
            ran.append(task.name)
        return ran

    def seconds_until_next(self, now: datetime) -> float:
        """How long the loop may sleep before a task falls due."""
        pending = [t.next_run for t in self.tasks if t.next_run is not None]
        if not pending or len(pending) < len(self.tasks):
            return 0.0
        return max(0.0, (min(pending) - now).total_seconds())

    def run_forever(
        self,
        stop: threading.Event,
        *,
        max_sleep: float = 1.0,
        alive_file: Path | None = None,
    ) -> None:
        """Tick until ``stop`` is set.

        With ``alive_file``, its modification time is set after every tick: a liveness
        probe that only compares that time with the clock costs a few milliseconds, where
        running ``calsync ready`` cost about 2 s of CPU per check (docs/decisions.md L7).
        """
        while not stop.is_set():
            self.run_pending()
            if alive_file is not None:
                mark_alive(alive_file)
            stop.wait(min(max_sleep, self.seconds_until_next(self.clock())))


def mark_alive(path: Path) -> None:
    """Set ``path``'s modification time to now, creating it if needed.

    A file that cannot be written is logged, not raised: a full disk must not stop the
    sweeps, and the probe then reports the scheduler as not alive, which is the truth an
    operator needs.
    """
    try:
        path.touch()
    except OSError as exc:
        log.warning("scheduler liveness file %s not updated: %s", path, exc.strerror)


#: How often the scheduler looks for calendars to pull (lost kicks, safety net).
SWEEP_EVERY = timedelta(seconds=30)
#: How often the renewals that fall due are claimed and queued in batch jobs
#: (`calsync.jobs.fan_out_renewals`; channels are renewed a day before expiry).
RENEW_EVERY = timedelta(minutes=1)
#: How often the whole channel sweep runs as a job (the renewals it queues, and it stops
#: inactive users' channels and opens the missing ones, bounded per run).
MAINTAIN_CHANNELS_EVERY = timedelta(minutes=10)


def due_calendars(services: Services, now: datetime) -> list[uuid.UUID]:
    """The ids of `due_pulls`."""
    return [due.calendar_id for due in due_pulls(services, now)]


def due_pulls(services: Services, now: datetime) -> list[kicks.DuePull]:
    """Claim and return the calendars to pull now (see `calsync.sync.kicks.claim_due_pulls`):
    dirty ones whose kick was lost, and the safety net for dropped notifications, as many
    of each as the daily budget has room for (polls at the ``poll`` priority, lost kicks
    at ``notification``); the others stay due for a later sweep."""
    settings = services.settings
    poll_room = services.budget.room(Priority.POLL)
    kick_room = services.budget.room(Priority.NOTIFICATION)
    with services.sessions.begin() as session:
        return kicks.claim_due_pulls(
            session,
            now=now,
            poll_every=timedelta(seconds=settings.safety_net_interval_seconds),
            slot_lost_before=now - timedelta(seconds=settings.sync_lease_seconds),
            poll_limit=poll_room,
            kick_limit=kick_room,
        )


def lost_calendar_lists(services: Services, now: datetime) -> list[uuid.UUID]:
    """Claim again and return the users whose calendar-list read was queued longer than
    the sync lease ago (its message was lost, or its worker died)."""
    with services.sessions.begin() as session:
        return list_queue.claim_lost_calendar_lists(
            session,
            now=now,
            slot_lost_before=now - timedelta(seconds=services.settings.sync_lease_seconds),
        )


#: How often the scheduler re-enqueues due outbox rows (lost kicks, retries after backoff).
OUTBOX_SWEEP_EVERY = timedelta(seconds=10)


def due_pushes(sessions: sessionmaker[Session], now: datetime) -> list[uuid.UUID]:
    """Events with due pending outbox rows (see `calsync.store.outbox.due_events`)."""
    with sessions() as session:
        return outbox.due_events(session, now=now)


#: How often the scheduler enqueues the convergence audits that are due.
AUDIT_EVERY = timedelta(minutes=1)
#: How often the scheduler checks the read model's horizon (it moves once a day).
READ_MODEL_EVERY = timedelta(minutes=10)
#: How often the scheduler queues the read model's upkeep while changes wait for it
#: (a kick lost between a write's commit and its job; decision Z1).
UPKEEP_SWEEP_EVERY = timedelta(seconds=30)


def due_audits(services: Services, now: datetime) -> list[uuid.UUID]:
    """Claim and return the calendars to audit now (see `calsync.sync.audit.due_audits`):
    at most the audits of one minute of the quota budget (``AUDITS_PER_MINUTE``), and no
    more than the daily budget has room for at the ``poll`` priority."""
    settings = services.settings
    room = services.budget.room(Priority.POLL)
    if room <= 0:
        return []
    with services.sessions.begin() as session:
        return audit.due_audits(
            session,
            now=now,
            period=timedelta(seconds=settings.audit_interval_seconds),
            limit=min(settings.audits_per_minute, room),
            claim_for=timedelta(seconds=settings.sync_lease_seconds),
        )


#: How often due notices are looked for: the worst delay of a reminder or change notice.
SEND_NOTICES_EVERY = timedelta(seconds=15)
#: How often reminders are planned ahead; far shorter than the 48-hour horizon.
REFRESH_REMINDERS_EVERY = timedelta(minutes=10)


def notice_tasks(jobs: NotifyJobs) -> list[PeriodicTask]:
    """The notices' periodic tasks: kick the senders often, extend the reminders' horizon
    now and then. Each tick only enqueues; the work, and the time it reads, is the
    worker's (`calsync.notify.jobs`)."""

    def send_due(_now: datetime) -> None:
        jobs.send_due_notices.send()

    def refresh(_now: datetime) -> None:
        jobs.refresh_reminders.send()

    return [
        PeriodicTask("send_due_notices", SEND_NOTICES_EVERY, send_due),
        PeriodicTask("refresh_reminders", REFRESH_REMINDERS_EVERY, refresh),
    ]


def build_scheduler(services: Services) -> Scheduler:
    """The scheduler of a calsync installation, with its periodic tasks."""
    settings = services.settings

    def send_heartbeat(now: datetime) -> None:
        services.jobs.heartbeat.send(now.isoformat())

    def sweep_calendars(now: datetime) -> None:
        for due in due_pulls(services, now):
            why = "notification" if due.dirty else "poll"
            services.jobs.sync_calendar.send(str(due.calendar_id), why)
        for user_id in lost_calendar_lists(services, now):
            services.jobs.sync_calendar_list.send(str(user_id))

    def renew_channels(_now: datetime) -> None:
        fan_out_renewals(services, services.jobs)

    def maintain_channels(_now: datetime) -> None:
        services.jobs.renew_channels.send()

    def sweep_outbox(now: datetime) -> None:
        for event_id in due_pushes(services.sessions, now):
            services.jobs.push_outbox.send(str(event_id))

    def fill_read_model(now: datetime) -> None:
        # a no-op but on the first tick and when the UTC date changed (decisions V3);
        # with the model switched off, forgets it once (decision X5)
        read_model.keep(services.sessions, now, on=settings.read_model)

    def sweep_read_model(_now: datetime) -> None:
        if upkeep.pending(services.sessions):
            services.jobs.refresh_read_model.send()

    def audit_calendars(now: datetime) -> None:
        for calendar_id in due_audits(services, now):
            services.jobs.audit_calendar.send(str(calendar_id))

    return Scheduler(
        clock=services.clock,
        tasks=[
            PeriodicTask(
                "heartbeat", timedelta(seconds=settings.heartbeat_interval_seconds), send_heartbeat
            ),
            PeriodicTask("sweep_calendars", SWEEP_EVERY, sweep_calendars),
            PeriodicTask("renew_channels", RENEW_EVERY, renew_channels),
            PeriodicTask("maintain_channels", MAINTAIN_CHANNELS_EVERY, maintain_channels),
            PeriodicTask("sweep_outbox", OUTBOX_SWEEP_EVERY, sweep_outbox),
            PeriodicTask("audit_calendars", AUDIT_EVERY, audit_calendars),
            *notice_tasks(services.jobs.notify),
            PeriodicTask("fill_read_model", READ_MODEL_EVERY, fill_read_model),
            PeriodicTask("sweep_read_model", UPKEEP_SWEEP_EVERY, sweep_read_model),
        ],
    )
