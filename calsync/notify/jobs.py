"""The notice actors: thin, idempotent, carrying no arguments but the kick itself.

``send_due_notices`` sends whatever is due (:func:`calsync.notify.deliveries.deliver_due`;
any number may run at once). ``refresh_reminders`` extends the planned reminders to the
horizon (:func:`calsync.notify.reminders.refresh_reminders`). Both read the time from the
services' clock when they run, never from the message, so a late or repeated message is
harmless. The scheduler enqueues them (`calsync.scheduler.notice_tasks`).
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq

from calsync.job_handles import NotifyJobs
from calsync.notify.deliveries import deliver_due
from calsync.notify.reminders import refresh_reminders
from calsync.notify.senders import Dispatcher
from calsync.notify.wiring import build_dispatcher
from calsync.queue import Queue
from calsync.services import Services

__all__ = ["NotifyJobs", "declare_notify_jobs"]

log = logging.getLogger(__name__)


def declare_notify_jobs(services: Services, *, dispatcher: Dispatcher | None = None) -> NotifyJobs:
    """Declare the notice actors on ``services.broker``; ``dispatcher`` defaults to the
    real senders built from the settings."""
    senders = dispatcher or build_dispatcher(services.settings, services.secrets)

    def send_due_notices() -> None:
        """Send every notice that is due now."""
        report = deliver_due(services.sessions, senders, now=services.clock())
        if report.handled:
            log.info("notices delivered", extra={"report": report})

    def refresh_reminders_job() -> None:
        """Plan the reminders that enter the horizon."""
        refresh_reminders(services.sessions, now=services.clock())

    refresh_reminders_job.__name__ = "refresh_reminders"
    return NotifyJobs(
        send_due_notices=_actor(services, send_due_notices, max_retries=0),
        refresh_reminders=_actor(services, refresh_reminders_job, max_retries=0),
        dispatcher=senders,
    )


def _actor(services: Services, fn: Any, **options: Any) -> dramatiq.Actor[..., Any]:
    return dramatiq.Actor(
        fn,
        broker=services.broker,
        actor_name=fn.__name__,
        queue_name=Queue.MAINTENANCE.value,
        priority=0,
        options=options,
    )
