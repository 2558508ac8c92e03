"""The scheduler's notice tasks: kick the senders often, extend the reminder horizon now
and then. Each tick only enqueues; the work (and the time it reads) is the worker's."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from calsync.bootstrap import Services
    from calsync.scheduler import PeriodicTask

__all__ = ["REFRESH_EVERY", "SEND_EVERY", "notify_tasks"]

#: How often due notices are looked for: the worst delay of a reminder or change notice.
SEND_EVERY: Final = timedelta(seconds=15)
#: How often reminders are planned ahead; far shorter than the 48-hour horizon.
REFRESH_EVERY: Final = timedelta(minutes=10)


def notify_tasks(services: Services) -> list[PeriodicTask]:
    """The periodic tasks of notices, for :func:`calsync.scheduler.build_scheduler`."""
    from calsync.scheduler import PeriodicTask  # the scheduler module imports this one

    jobs = services.jobs.notify

    def send_due(_now: datetime) -> None:
        jobs.send_due_notices.send()

    def refresh(_now: datetime) -> None:
        jobs.refresh_reminders.send()

    return [
        PeriodicTask("send_due_notices", SEND_EVERY, send_due),
        PeriodicTask("refresh_reminders", REFRESH_EVERY, refresh),
    ]
