"""The handles of calsync's declared actors: what a caller ``.send(...)``s to enqueue.

The actors are declared on a process's broker by `calsync.jobs.declare_jobs` (the
notices' by `calsync.notify.jobs.declare_notify_jobs`); their handles live apart from
the declarations so that the services that hold them (`calsync.services`) import no
use case, and the use cases can import the services without a cycle (issue 20 item 5).
"""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq

from calsync.notify.senders import Dispatcher

__all__ = ["Jobs", "NotifyJobs"]


@dataclass(frozen=True)
class NotifyJobs:
    """The notice actors of one broker, and the dispatcher they send with."""

    send_due_notices: dramatiq.Actor[..., None]
    refresh_reminders: dramatiq.Actor[..., None]
    dispatcher: Dispatcher


@dataclass(frozen=True)
class Jobs:
    """The actors of one broker; call ``.send(...)`` on them to enqueue."""

    heartbeat: dramatiq.Actor[..., None]
    notify: NotifyJobs
    connect_user: dramatiq.Actor[..., None]
    sync_calendar: dramatiq.Actor[..., None]
    audit_calendar: dramatiq.Actor[..., None]
    sync_calendar_list: dramatiq.Actor[..., None]
    renew_channels: dramatiq.Actor[..., None]
    renew_channel_batch: dramatiq.Actor[..., None]
    stop_channel: dramatiq.Actor[..., None]
    push_outbox: dramatiq.Actor[..., None]
    refresh_read_model: dramatiq.Actor[..., None]
