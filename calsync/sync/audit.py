"""The convergence audit: each calendar's local copy is compared with Google's, and repaired.

Pulls apply what Google says changed; a lost notification, a bug or a row changed behind
calsync's back would leave the local copy wrong with nothing to say so. Once per
``AUDIT_INTERVAL_SECONDS`` (default daily) each selected calendar of an active user is
listed in full and reconciled as a verifying listing (`pull.pull_calendar(audit=True)`):

- what Google lists and the store lacks is inserted; what the store holds differently
  (another etag, or the same etag with other content) is overwritten with Google's copy;
- rows Google no longer lists are deleted, subject to the mass-deletion guard
  (`calsync.sync.deletion_guard`); rows with unpushed local changes are left to the push;
- the run is an ``audit`` row in the sync log with its counts (compared, missing_locally,
  extra_locally, different, repaired), and ``calsync_audits_total{outcome}`` and
  ``calsync_audit_repairs_total{kind}`` count it.

Scheduling (`due_audits`, run every minute by the scheduler): a calendar's audits fall at
a fixed offset of the period taken from its id (`audit_slot`), so a fleet's audits are
spread evenly over the day instead of all at once; at most ``AUDITS_PER_MINUTE`` are
enqueued per minute, which bounds their share of the Google quota (one audit costs one
``events.list`` request per 2,500 events). A claimed audit that never finishes (a lost
message, a busy calendar, a failure) is due again after ``SYNC_LEASE_SECONDS``. Held
deletions bring the audit forward to the end of their recheck delay.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy.orm import Session

from calsync import metrics
from calsync.services import Services
from calsync.store import audit_slots
from calsync.sync import pull

__all__ = ["audit_calendar", "audit_slot", "due_audits"]

#: The origin of every calendar's audit slots.
_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
#: Calendars given their first audit slot per scheduler tick (bounds the tick's work).
PLACE_PER_TICK: Final = 1000


def audit_slot(calendar_id: uuid.UUID, after: datetime, period: timedelta) -> datetime:
    """The first audit time of `calendar_id` strictly after `after`: the calendar's audits
    are `period` apart, at an offset of the period that its (random) id gives, so that
    the audits of many calendars spread evenly over the period."""
    seconds = int(period.total_seconds())
    offset = timedelta(seconds=calendar_id.int % seconds)
    elapsed = (after - _EPOCH - offset) // period
    return _EPOCH + offset + (elapsed + 1) * period


def due_audits(
    session: Session, *, now: datetime, period: timedelta, limit: int, claim_for: timedelta
) -> list[uuid.UUID]:
    """Claim the calendars whose audit is due at `now` (at most `limit`, the most overdue
    first) and return their ids; a claimed calendar is due again after `claim_for`
    unless its audit finishes first. Calendars not yet placed in the period get their
    slot (`audit_slot`) first, up to `PLACE_PER_TICK` per call."""
    unplaced = audit_slots.unplaced(session, limit=PLACE_PER_TICK)
    audit_slots.place(session, {i: audit_slot(i, now, period) for i in unplaced})
    return audit_slots.claim_due(session, now=now, limit=limit, until=now + claim_for)


def audit_calendar(services: Services, calendar_id: uuid.UUID) -> pull.PullOutcome:
    """Audit one calendar now: a verifying full listing (see the module docstring), then
    its next audit slot, unless held deletions brought it forward. A calendar another
    pull holds is left for its claim to run out (``busy``); provider errors are raised
    for the job's retry policy, as a pull's are."""
    outcome = pull.pull_calendar(services, calendar_id, audit=True)
    if outcome.status != "ok" or outcome.report is None:
        return outcome
    report = outcome.report
    verdict = "held" if report.held else "repaired" if report.changed else "converged"
    metrics.AUDITS.labels(verdict).inc()
    repairs = {"missing": report.inserted, "extra": report.deleted, "different": report.updated}
    for kind, count in repairs.items():
        if count:
            metrics.AUDIT_REPAIRS.labels(kind).inc(count)
    period = timedelta(seconds=services.settings.audit_interval_seconds)
    now = services.clock()
    with services.sessions.begin() as session:
        audit_slots.move_on(session, calendar_id, audit_slot(calendar_id, now, period))
    return outcome
