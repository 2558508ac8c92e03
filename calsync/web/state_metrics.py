"""State metrics: how things stand now, read from PostgreSQL and Redis when ``/metrics`` is
scraped (the event counters of :mod:`calsync.metrics` say what happened instead).

Nothing here is stored in prometheus-client's multi-process files: :func:`collect_state`
reads a bounded set of aggregates (``COUNT``/``MIN``/``MAX`` over indexed columns, the
``WORST_CALENDARS`` most-lagging calendars, one ``LLEN`` per queue) and returns metric
families for one exposition. Every api process answers with the same values, so queries
over several api pods take ``max``, not ``sum``.

A source that cannot be read is reported by ``calsync_state_source_up{source}`` = 0 and
its metrics are left out of that scrape; a scrape never fails because of it.
:class:`StateSnapshots` serves one computation to every scrape for a few seconds
(``CALSYNC_STATE_METRICS_CACHE_SECONDS``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from calsync.queue import NAMESPACE, Queue
from calsync.store import state_counts
from calsync.sync.channels import calendars_without_channel

__all__ = [
    "CHANNEL_BUCKETS",
    "LAG_BUCKETS",
    "OVERDUE_AFTER",
    "PULL_OVERDUE_PERIODS",
    "STATE_METRICS",
    "SYNC_STATUSES",
    "WORST_CALENDARS",
    "StateCollector",
    "StateSnapshots",
    "collect_state",
]

log = logging.getLogger(__name__)

#: Upper bounds (seconds) of the sync-lag buckets; +Inf is added.
LAG_BUCKETS: Final = (60.0, 300.0, 900.0, 1800.0, 3600.0, 6 * 3600.0, 86400.0)
#: How many of the most lagging calendars get a series of their own (bounded cardinality).
WORST_CALENDARS: Final = 5
#: Live channels by time left: (label, upper bound). ``expired`` and ``more`` bracket them.
CHANNEL_BUCKETS: Final = (
    ("lt_1h", timedelta(hours=1)),
    ("lt_1d", timedelta(days=1)),
    ("lt_7d", timedelta(days=7)),
)
#: A pending notice due longer ago than this is overdue (the senders run every 15 s).
OVERDUE_AFTER: Final = timedelta(minutes=2)
#: A calendar whose last successful pull is older than this many poll periods (the
#: safety net pulls every calendar once per period) is overdue: its sync has died.
PULL_OVERDUE_PERIODS: Final = 3
#: The values of ``calsync_calendars_by_sync_status{status}``: the calendars' sync
#: status, ``never`` for none yet, ``other`` for anything else.
SYNC_STATUSES: Final = ("ok", "error", "held", "never", "other")

#: Every metric this module exposes, with its label names (the dashboard and alert tests
#: check their queries against it; a unit test checks it against a real scrape).
STATE_METRICS: Final[Mapping[str, tuple[str, ...]]] = {
    "calsync_state_source_up": ("source",),
    "calsync_calendars_by_sync_lag": ("le",),
    "calsync_sync_lag_max_seconds": (),
    "calsync_sync_lag_worst_seconds": ("calendar_id",),
    "calsync_calendars_never_synced": (),
    "calsync_calendars_pull_overdue": (),
    "calsync_calendars_by_sync_status": ("status",),
    "calsync_calendars_without_channel": (),
    "calsync_channels_by_time_left": ("left",),
    "calsync_outbox_depth": (),
    "calsync_outbox_oldest_age_seconds": (),
    "calsync_outbox_failed": (),
    "calsync_notices_due": ("kind",),
    "calsync_notices_overdue": ("kind",),
    "calsync_queue_depth": ("queue",),
    "calsync_queue_heartbeat_lag_seconds": (),
    "calsync_queue_heartbeat_age_seconds": (),
    "calsync_google_budget_requests": (),
    "calsync_google_budget_spent": ("priority",),
    "calsync_google_budget_forecast": ("method",),
}


def collect_state(
    sessions: Callable[[], Session],
    broker: Any,
    now: datetime,
    *,
    poll_period: timedelta = timedelta(seconds=900),
    budget: Callable[[datetime], Mapping[str, Any]] | None = None,
) -> list[Metric]:
    """Read the current state and return it as metric families (never raises for an
    unreachable database or broker: ``calsync_state_source_up`` says which was down).

    `poll_period`: the safety net's period (``SAFETY_NET_INTERVAL_SECONDS``), the base of
    ``calsync_calendars_pull_overdue``. `budget`: today's Google budget report
    (`calsync.sync.polling.budget_report`), for the ``calsync_google_budget_*`` gauges."""
    up = GaugeMetricFamily(
        "calsync_state_source_up",
        "Whether the last /metrics scrape could read the source of the state metrics "
        "(database, broker).",
        labels=["source"],
    )
    families: list[Metric] = [up]
    try:
        with sessions() as session:
            families += _database_state(session, now, poll_period)
        up.add_metric(["database"], 1)
    except SQLAlchemyError as exc:
        log.warning("state metrics: database unavailable (%s)", type(exc).__name__)
        up.add_metric(["database"], 0)
    try:
        families.append(_queue_depths(broker))
        up.add_metric(["broker"], 1)
    except Exception as exc:  # any client error: the scrape must still answer
        log.warning("state metrics: broker unavailable (%s)", type(exc).__name__)
        up.add_metric(["broker"], 0)
    if budget is not None:
        try:
            families += _budget(budget(now))
            up.add_metric(["budget"], 1)
        except Exception as exc:  # Redis or the database: the scrape must still answer
            log.warning("state metrics: budget unavailable (%s)", type(exc).__name__)
            up.add_metric(["budget"], 0)
    return families


def _budget(report: Mapping[str, Any]) -> list[Metric]:
    """The day's Google budget: its size, the spend by priority, the two forecasts."""
    spent = GaugeMetricFamily(
        "calsync_google_budget_spent",
        "Google requests spent in the current quota day (from midnight Pacific time), by "
        "priority (write, interactive, notification, poll).",
        labels=["priority"],
    )
    for priority, value in report["spent"].items():
        spent.add_metric([priority], value)
    forecast = GaugeMetricFamily(
        "calsync_google_budget_forecast",
        "The quota day's total Google requests, forecast: extrapolated (the pace so far) "
        "or scheduled (spent so far plus the polls, audits and renewals due today).",
        labels=["method"],
    )
    forecast.add_metric(["extrapolated"], report["forecast_extrapolated"])
    forecast.add_metric(["scheduled"], report["forecast_scheduled"])
    return [
        _gauge(
            "calsync_google_budget_requests",
            "calsync's daily Google budget (CALSYNC_GOOGLE_DAILY_BUDGET).",
            report["budget"],
        ),
        spent,
        forecast,
    ]


class StateCollector(Collector):
    """A prometheus-client collector over :func:`collect_state`, for a scrape registry."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)

    def describe(self) -> Iterator[Metric]:
        return iter(())


# --- database ----------------------------------------------------------------------------------


def _database_state(session: Session, now: datetime, poll_period: timedelta) -> list[Metric]:
    return [
        *_sync_lag(session, now),
        *_sync_health(session, now, poll_period),
        _gauge(
            "calsync_calendars_without_channel",
            "Watchable calendars of active users with no live push channel: only the "
            "safety net pulls them.",
            len(calendars_without_channel(session, now)),
        ),
        _channels_by_time_left(session, now),
        *_outbox(session, now),
        *_notices(session, now),
        *_heartbeat(session, now),
    ]


def _sync_lag(session: Session, now: datetime) -> list[Metric]:
    lag = state_counts.sync_lag(session, now, bounds=LAG_BUCKETS, worst=WORST_CALENDARS)
    histogram = GaugeMetricFamily(
        "calsync_calendars_by_sync_lag",
        "Synced calendars whose sync lag (now minus their last successful pull) is at most "
        "`le` seconds: cumulative buckets, like a histogram's.",
        labels=["le"],
    )
    for bound, older in zip(LAG_BUCKETS, lag.older_than, strict=True):
        histogram.add_metric([f"{bound:g}"], lag.total - older)
    histogram.add_metric(["+Inf"], lag.total)
    worst = GaugeMetricFamily(
        "calsync_sync_lag_worst_seconds",
        f"Sync lag of the {WORST_CALENDARS} most lagging calendars.",
        labels=["calendar_id"],
    )
    for calendar_id, synced_at in lag.worst:
        worst.add_metric([str(calendar_id)], _seconds(now - synced_at))
    return [
        histogram,
        _gauge(
            "calsync_sync_lag_max_seconds",
            "The largest sync lag of any selected calendar of an active user (0 if none).",
            _seconds(now - lag.oldest) if lag.oldest is not None else 0.0,
        ),
        worst,
        _gauge(
            "calsync_calendars_never_synced",
            "Selected calendars of active users that no pull has completed yet.",
            lag.never,
        ),
    ]


def _sync_health(session: Session, now: datetime, poll_period: timedelta) -> list[Metric]:
    """Calendars whose sync died silently (overdue), and calendars by sync status."""
    known = [s for s in SYNC_STATUSES if s not in ("never", "other")]
    health = state_counts.sync_health(
        session,
        overdue_before=now - PULL_OVERDUE_PERIODS * poll_period,
        poll_missed_before=now - (PULL_OVERDUE_PERIODS - 1) * poll_period,
        statuses=known,
    )
    by_status = GaugeMetricFamily(
        "calsync_calendars_by_sync_status",
        "Selected calendars of active users by the status of their last sync: ok, error, "
        "held (a mass deletion waits for a second listing), never (not synced yet), other.",
        labels=["status"],
    )
    counts = [*health.by_status, health.never, health.other]
    for value, count in zip(SYNC_STATUSES, counts, strict=True):
        by_status.add_metric([value], count)
    return [
        _gauge(
            "calsync_calendars_pull_overdue",
            f"Selected calendars of active users whose last successful pull (or, never "
            f"pulled, their creation) is older than {PULL_OVERDUE_PERIODS} safety-net "
            f"periods and whose next poll is over {PULL_OVERDUE_PERIODS - 1} periods late: "
            "their sync has died.",
            health.overdue,
        ),
        by_status,
    ]


def _channels_by_time_left(session: Session, now: datetime) -> Metric:
    counts = state_counts.channels_by_time_left(session, now, [span for _, span in CHANNEL_BUCKETS])
    labels = ["expired", *(label for label, _ in CHANNEL_BUCKETS), "more"]
    family = GaugeMetricFamily(
        "calsync_channels_by_time_left",
        "Active push channels by time left before they expire (expired, lt_1h, lt_1d, "
        "lt_7d, more).",
        labels=["left"],
    )
    for label, count in zip(labels, counts, strict=True):
        family.add_metric([label], count)
    return family


def _outbox(session: Session, now: datetime) -> list[Metric]:
    counts = state_counts.outbox_counts(session)
    oldest = counts.oldest_pending
    return [
        _gauge(
            "calsync_outbox_depth",
            "Local changes waiting to be written to Google (pending outbox rows).",
            counts.pending,
        ),
        _gauge(
            "calsync_outbox_oldest_age_seconds",
            "Age of the oldest pending outbox row (0 when the outbox is empty).",
            _seconds(now - oldest) if oldest is not None else 0.0,
        ),
        _gauge(
            "calsync_outbox_failed",
            "Outbox rows given up after all attempts (their events are in sync state error).",
            counts.failed,
        ),
    ]


def _notices(session: Session, now: datetime) -> list[Metric]:
    counts = state_counts.due_notices(session, now, overdue_before=now - OVERDUE_AFTER)
    due = GaugeMetricFamily(
        "calsync_notices_due",
        "Reminders and change notices that are due and not sent yet, by kind.",
        labels=["kind"],
    )
    overdue = GaugeMetricFamily(
        "calsync_notices_overdue",
        f"Notices still unsent more than {int(OVERDUE_AFTER.total_seconds())} s after "
        "they were due, by kind.",
        labels=["kind"],
    )
    for kind in ("reminder", "change"):
        due_count, overdue_count = counts.get(kind, (0, 0))
        due.add_metric([kind], due_count)
        overdue.add_metric([kind], overdue_count)
    return [due, overdue]


def _heartbeat(session: Session, now: datetime) -> list[Metric]:
    beat = state_counts.queue_heartbeat(session)
    if beat is None:
        return []
    return [
        _gauge(
            "calsync_queue_heartbeat_lag_seconds",
            "Seconds from the scheduler sending the last heartbeat to a worker recording it",
            _seconds(beat.processed_at - beat.sent_at),
        ),
        _gauge(
            "calsync_queue_heartbeat_age_seconds",
            "Seconds since a worker last recorded a heartbeat",
            _seconds(now - beat.processed_at),
        ),
    ]


# --- broker ------------------------------------------------------------------------------------


def _queue_depths(broker: Any) -> Metric:
    """Messages waiting per Dramatiq queue; ``<queue>.DQ`` are delayed retries."""
    names = [name for queue in Queue for name in (queue.value, f"{queue.value}.DQ")]
    client = getattr(broker, "client", None)
    if client is not None:  # RedisBroker: each queue is the list <namespace>:<queue>
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.llen(f"{NAMESPACE}:{name}")
        depths = [int(n) for n in pipe.execute()]
    else:  # StubBroker (embedded mode): in-memory queues
        queues = getattr(broker, "queues", {})
        depths = [queues[name].qsize() if name in queues else 0 for name in names]
    family = GaugeMetricFamily(
        "calsync_queue_depth",
        "Messages waiting in each Dramatiq queue (not counting those a worker holds); "
        "<queue>.DQ holds delayed retries. The worker autoscaler's metric.",
        labels=["queue"],
    )
    for name, depth in zip(names, depths, strict=True):
        family.add_metric([name], depth)
    return family


# --- helpers -----------------------------------------------------------------------------------


def _gauge(name: str, documentation: str, value: float) -> Metric:
    return GaugeMetricFamily(name, documentation, value=value)


def _seconds(span: timedelta) -> float:
    return max(span.total_seconds(), 0.0)


# --- one computation per interval --------------------------------------------------------------


class StateSnapshots:
    """The state metrics of one computation, served to every scrape for ``max_age``: a
    flood of scrapes (or several Prometheus servers) costs one computation per interval
    per process. Scrapes that arrive while it runs wait for it and share it.

    Thread-safe (scrapes call :meth:`get` from the thread pool). ``clock`` is the
    services' clock; a ``max_age`` of zero computes on every call.
    """

    def __init__(
        self,
        compute: Callable[[datetime], list[Metric]],
        *,
        max_age: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._compute = compute
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._families: list[Metric] | None = None
        self._taken_at: datetime | None = None

    def get(self) -> list[Metric]:
        """The families of the newest computation, made now if that one is too old."""
        with self._lock:
            now = self._clock()
            taken = self._taken_at
            if self._families is None or taken is None or not taken <= now < taken + self._max_age:
                self._families = self._compute(now)
                self._taken_at = now
            return self._families
