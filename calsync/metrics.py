"""Prometheus metrics shared by the web app, the workers and the scheduler.

This module is the catalogue of *event* metrics: counters and histograms that the code
bumps where the thing happens. Metric objects live on the default registry; they are
created at import (a registration in memory, no I/O) as prometheus-client expects, and are
multi-process safe when ``PROMETHEUS_MULTIPROC_DIR`` is set before import.

*State* metrics (sync lag, channels by time left, outbox depth and age, reminders due,
queue depth) are read from PostgreSQL and Redis when ``/metrics`` is scraped, by the
collector in :mod:`calsync.web.health`; they are not defined here.

Label values are small closed sets (route templates, actor names, Google method names,
outcome words), never ids, so that the number of series stays bounded.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# --- HTTP -------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "calsync_http_requests_total", "HTTP requests answered", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "calsync_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

# --- Google push notifications ------------------------------------------------------------

PUSH_NOTIFICATIONS = Counter(
    "calsync_push_notifications_total",
    "Google push notifications received, by what calsync did with them.",
    ["outcome"],
)
NOTIFICATIONS_COALESCED = Counter(
    "calsync_notifications_coalesced_total",
    "Change notifications that did not cost a pull of their own because one was already "
    "queued or running for the calendar.",
)

# --- Jobs -------------------------------------------------------------------------------

JOBS = Counter(
    "calsync_jobs_total",
    "Dramatiq jobs finished, by actor and outcome (ok, retry, failed, skipped).",
    ["actor", "outcome"],
)
JOB_DURATION = Histogram(
    "calsync_job_duration_seconds",
    "Time a job spent running, by actor",
    ["actor"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

# --- Google Calendar API ------------------------------------------------------------------

GOOGLE_CALLS = Counter(
    "calsync_google_calls_total",
    "Calendar API requests sent, by method (events.list, events.insert, ...) and HTTP "
    "status (or 'network' when no answer came).",
    ["method", "status"],
)
GOOGLE_CALL_DURATION = Histogram(
    "calsync_google_call_duration_seconds",
    "Time a Calendar API request took, by method",
    ["method"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RATE_LIMIT_WAITS = Counter(
    "calsync_rate_limit_waits_total",
    "Times a Google call waited for the shared quota limiter, by scope (user, project).",
    ["scope"],
)
RATE_LIMIT_WAIT_SECONDS = Counter(
    "calsync_rate_limit_wait_seconds_total",
    "Seconds spent waiting for the shared quota limiter, by scope.",
    ["scope"],
)

BUDGET_DEFERRALS = Counter(
    "calsync_google_budget_deferrals_total",
    "Google requests refused by calsync's daily budget (the work is deferred to the next "
    "quota day, not dropped), by priority (write, interactive, notification, poll).",
    ["priority"],
)

# --- Sync ---------------------------------------------------------------------------------

SYNC_RUNS = Counter(
    "calsync_sync_runs_total",
    "Calendar pulls finished, by kind (incremental, full) and outcome.",
    ["kind", "outcome"],
)
SYNC_CHANGES = Counter(
    "calsync_sync_changes_total",
    "Remote changes applied to the store by pulls.",
)
CONFLICTS = Counter(
    "calsync_conflicts_total",
    "Concurrent local and remote edits of one event resolved, by policy (last_write_wins, "
    "google_wins, local_wins, manual) and where they were found (pull, push).",
    ["policy", "found_in"],
)
DELETION_HOLDS = Counter(
    "calsync_deletion_holds_total",
    "Mass deletions of a full listing held, and holds resolved by a second listing, by "
    "outcome (held, applied, released).",
    ["outcome"],
)
AUDITS = Counter(
    "calsync_audits_total",
    "Convergence audits of a calendar finished, by outcome: converged (the local copy "
    "equalled Google's), repaired (it differed and was repaired: a divergent calendar), "
    "held (deletions held by the mass-deletion guard).",
    ["outcome"],
)
AUDIT_REPAIRS = Counter(
    "calsync_audit_repairs_total",
    "Events the convergence audits found different from Google, by kind: missing (listed "
    "by Google, not stored), extra (stored, gone on Google; deleted), different.",
    ["kind"],
)
OUTBOX_WRITES = Counter(
    "calsync_outbox_writes_total",
    "Outbound writes to Google finished, by operation (insert, patch, delete) and outcome "
    "(ok, retry, error).",
    ["operation", "outcome"],
)

# --- Notices --------------------------------------------------------------------------------

NOTICES_SENT = Counter(
    "calsync_notices_sent_total",
    "Reminder and change notices delivered, by kind (reminder, change), channel (email, "
    "push, webhook) and outcome (sent, failed, skipped).",
    ["kind", "channel", "outcome"],
)
