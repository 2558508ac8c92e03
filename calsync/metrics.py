"""Prometheus metrics shared by the web app, the workers and the scheduler.

Metric objects live on the default registry; they are created at import (a registration in
memory, no I/O) as prometheus-client expects.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "calsync_http_requests_total", "HTTP requests answered", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "calsync_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
QUEUE_LAG = Gauge(
    "calsync_queue_heartbeat_lag_seconds",
    "Seconds from the scheduler sending the last heartbeat to a worker recording it",
)
QUEUE_HEARTBEAT_AGE = Gauge(
    "calsync_queue_heartbeat_age_seconds", "Seconds since a worker last recorded a heartbeat"
)

CALENDARS_WITHOUT_CHANNEL = Gauge(
    "calsync_calendars_without_channel",
    "Watchable calendars of active users with no live push channel: only the safety net "
    "pulls them.",
)
PUSH_NOTIFICATIONS = Counter(
    "calsync_push_notifications_total",
    "Google push notifications received, by what calsync did with them.",
    ["outcome"],
)
