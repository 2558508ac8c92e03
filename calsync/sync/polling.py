"""Adaptive safety-net polling within the daily Google budget (decisions Y4-Y6).

How often a calendar is polled depends on whether its notifications can be trusted:

- a calendar with a live push channel (active, not expired) whose last poll found nothing
  that a notification had not already brought is polled every
  ``POLL_WITH_CHANNEL_SECONDS`` (4 h), and at the latest when that channel expires
  (so a channel that lapses without a replacement is noticed then), plus its daily
  convergence audit;
- any other calendar (no live channel, or a poll just found changes that no
  notification announced: the channel dropped some) is polled every
  ``SAFETY_NET_INTERVAL_SECONDS`` (15 min), as before.

The poll times keep each calendar's own slot of its period (`kicks.poll_slot`), so
polls stay spread. This module also defers the pulls the budget has no room for (the
calendar keeps its due state, nothing is lost) and forecasts the day's scheduled spend.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.orm import Session

from calsync.config import Settings
from calsync.providers.budget import Priority, next_quota_day
from calsync.services import Services
from calsync.store import pull_queue, watch_channels
from calsync.sync import kicks

__all__ = [
    "DEFER_SPREAD",
    "PULL_PRIORITIES",
    "ScheduledSpend",
    "defer_pull",
    "poll_slots",
    "pull_priority",
    "scheduled_spend",
]

#: Why a pull was queued (the ``sync_calendar`` job's second argument) and the budget
#: priority its requests count as.
PULL_PRIORITIES: Final = {
    "interactive": Priority.INTERACTIVE,
    "notification": Priority.NOTIFICATION,
    "poll": Priority.POLL,
}
#: Polls deferred to the next quota day are spread over its first hour (by calendar id),
#: not all due at midnight.
DEFER_SPREAD: Final = timedelta(hours=1)


def pull_priority(why: str) -> Priority:
    """The budget priority of a pull queued for `why` (unknown reasons: a notification's,
    the default of messages queued before the reason existed)."""
    return PULL_PRIORITIES.get(why, Priority.NOTIFICATION)


def poll_slots(
    calendar_id: uuid.UUID, now: datetime, settings: Settings
) -> tuple[datetime, datetime]:
    """The calendar's next poll slots after `now`: (often, rarely), the parameters of
    `calsync.store.pull_queue.next_poll_expression`."""
    often = timedelta(seconds=settings.safety_net_interval_seconds)
    rarely = timedelta(seconds=settings.poll_with_channel_seconds)
    return kicks.poll_slot(calendar_id, now, often), kicks.poll_slot(calendar_id, now, rarely)


def defer_pull(services: Services, calendar_id: uuid.UUID, priority: Priority) -> datetime:
    """The budget has no room for a pull of `priority` now: free the calendar's queue
    slot and leave it due, so the scheduler queues it again once the priority may spend
    (the sweeps ask the budget first). Returns when that is at the earliest.

    A poll's next slot moves to the next quota day (spread over `DEFER_SPREAD`); any
    other pull leaves the calendar dirty, so the sweep's lost-kick read finds it.
    Nothing of the calendar is lost: its sync token still lists every change since.
    """
    until = next_quota_day(services.clock())
    next_poll_at = None
    if priority is Priority.POLL:
        spread = int(DEFER_SPREAD.total_seconds())
        next_poll_at = until + timedelta(seconds=calendar_id.int % spread)
    with services.sessions.begin() as session:
        pull_queue.defer(session, calendar_id, next_poll_at=next_poll_at)
    return until


@dataclass(frozen=True, slots=True)
class ScheduledSpend:
    """The Google requests the schedule holds for the rest of a quota day: safety-net
    polls (by channel state), audits and channel renewals, one request each (two for a
    renewal: the new channel and the old one's stop). Listings longer than a page cost
    more; notifications and writes are not scheduled (the extrapolated forecast has them).
    """

    calendars_with_channel: int
    calendars_without_channel: int
    polls: int
    audits: int
    renewals: int

    @property
    def total(self) -> int:
        return self.polls + self.audits + self.renewals


def scheduled_spend(
    session: Session, settings: Settings, now: datetime, seconds_left: float
) -> ScheduledSpend:
    """What the schedule will spend in the next `seconds_left` seconds (see
    `ScheduledSpend`): a few aggregate reads over indexed columns."""
    total, watched = pull_queue.pulled_counts(session, now)
    margin = timedelta(seconds=settings.channel_renew_before_seconds)
    renewing = watch_channels.count_renewing(
        session, now + timedelta(seconds=seconds_left) + margin
    )
    polls = watched * seconds_left / settings.poll_with_channel_seconds + (
        (total - watched) * seconds_left / settings.safety_net_interval_seconds
    )
    audits = total * seconds_left / settings.audit_interval_seconds
    return ScheduledSpend(
        calendars_with_channel=watched,
        calendars_without_channel=total - watched,
        polls=round(polls),
        audits=round(audits),
        renewals=2 * renewing,
    )


def budget_report(services: Services, now: datetime | None = None) -> dict[str, Any]:
    """Today's Google budget: spend by priority, and two forecasts of the day's total,
    ``forecast_extrapolated`` (the pace so far) and ``forecast_scheduled`` (spent so far
    plus what the schedule holds for the rest of the day, `scheduled_spend`), with the
    schedule's parts. For ``calsync budget`` and the state metrics.

    Raises:
        calsync.providers.budget.BudgetUnavailable: the budget's store cannot be read.
    """
    now = now or services.clock()
    usage = services.budget.usage(now)
    with services.sessions() as session:
        scheduled = scheduled_spend(session, services.settings, now, usage.seconds_left)
    return usage.as_dict() | {
        "forecast_scheduled": usage.total + scheduled.total,
        "scheduled": {
            "calendars_with_channel": scheduled.calendars_with_channel,
            "calendars_without_channel": scheduled.calendars_without_channel,
            "polls": scheduled.polls,
            "audits": scheduled.audits,
            "renewals": scheduled.renewals,
        },
        "ceilings": {p.value: services.budget.ceiling(p) for p in Priority},
    }
