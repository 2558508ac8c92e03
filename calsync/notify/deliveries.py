"""Sending what is due: claim a delivery row, send it, record the outcome, in one transaction.

Exactly once per ``dedupe_key``: on PostgreSQL each row is claimed with ``SELECT ... FOR
UPDATE SKIP LOCKED`` and stays locked while it is sent and its outcome written, so any
number of workers and schedulers can run :func:`deliver_due` at once and never pick the
same row; a row leaves ``pending`` in the same commit that follows its send. SQLite (the
single-process embedded mode) has no row locks: a process-wide lock serialises senders.

The one window left is a crash after the channel accepted a message and before the commit:
the row is still pending and is sent again, with the same delivery id (the email's
Message-ID, the webhook's ``Calsync-Delivery`` header), so the receiver can tell.

Per row, before sending:

- a reminder whose event row is gone or no longer the user's (its calendar left the
  user's list: access lost) is ``skipped``;
- a reminder whose occurrence has ended is ``skipped`` (late after downtime, too late to
  help); one that is late but whose event has not ended is sent once, unless a reminder
  with a shorter lead time for the same occurrence is due too (only the last is useful);
- a notice on a channel the user has since turned off (or a change notice after change
  notices were turned off) is ``skipped``;
- during the user's quiet hours, email and push are held until the quiet hours end
  (skipped if the event is over by then); webhooks, read by machines, are not held.

After sending: ``sent``; or, on a temporary failure, retried with exponential backoff
(30 s doubling up to an hour) until ``MAX_ATTEMPTS``, then ``failed``; or ``failed`` at
once on a permanent failure. ``reason`` says why. Each final outcome (sent, failed,
skipped) counts in ``calsync_notices_sent_total`` by kind and channel.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.orm import Session, sessionmaker

from calsync import metrics
from calsync.notify.preferences import Preferences, load_preferences
from calsync.notify.senders import (
    Dispatcher,
    Notice,
    PermanentFailure,
    Recipient,
    TemporaryFailure,
)
from calsync.store import deliveries as store_deliveries
from calsync.store import recipients
from calsync.store.tables import NotificationDelivery

__all__ = ["MAX_ATTEMPTS", "DeliveryReport", "backoff", "deliver_due"]

log = logging.getLogger(__name__)

MAX_ATTEMPTS: Final = 8
_FIRST_RETRY: Final = timedelta(seconds=30)
_LAST_RETRY: Final = timedelta(hours=1)
_PERSONAL_CHANNELS: Final = frozenset({"email", "push"})
#: A reminder this much past its due time counts as late (sent after downtime).
_LATE: Final = timedelta(minutes=1)
_SQLITE_LOCK = threading.Lock()


@dataclass
class DeliveryReport:
    """What one :func:`deliver_due` run did."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retrying: int = 0
    held: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.skipped + self.retrying + self.held


def backoff(attempts: int) -> timedelta:
    """How long to wait before attempt ``attempts + 1``."""
    return min(_FIRST_RETRY * (1 << min(max(attempts - 1, 0), 20)), _LAST_RETRY)


def deliver_due(
    sessions: sessionmaker[Session],
    dispatcher: Dispatcher,
    *,
    now: datetime,
    limit: int = 500,
    budget_seconds: float = 60.0,
    max_attempts: int = MAX_ATTEMPTS,
) -> DeliveryReport:
    """Send every pending delivery due at ``now``, at most ``limit`` of them, starting no
    new one after ``budget_seconds`` (the next run goes on). Safe to run concurrently."""
    report = DeliveryReport()
    deadline = time.monotonic() + budget_seconds
    with _serialised(sessions):
        while report.handled < limit and time.monotonic() < deadline:
            with sessions.begin() as session:
                row = store_deliveries.claim_due(session, now)
                if row is None:
                    break
                _process(
                    session, row, dispatcher, now=now, max_attempts=max_attempts, report=report
                )
    return report


@contextlib.contextmanager
def _serialised(sessions: sessionmaker[Session]) -> Iterator[None]:
    bind = sessions.kw.get("bind")
    if bind is not None and bind.dialect.name == "sqlite":
        with _SQLITE_LOCK:
            yield
    else:
        yield


def _process(
    session: Session,
    row: NotificationDelivery,
    dispatcher: Dispatcher,
    *,
    now: datetime,
    max_attempts: int,
    report: DeliveryReport,
) -> None:
    """Skip, hold or send one claimed row and record its outcome on it and in `report`
    (the module docstring's rules, in their order). Does not commit."""
    user = recipients.user(session, row.user_id)
    if user is None or user.status == "disabled":
        _finish(row, "skipped", "the user is disabled", now)
        report.skipped += 1
        return
    prefs = load_preferences(session, row.user_id)
    occurrence_end = _instant((row.payload or {}).get("occurrence_end"))
    reason = _why_skipped(session, row, prefs, occurrence_end=occurrence_end, now=now)
    quiet = prefs.quiet_hours
    personal = row.channel in _PERSONAL_CHANNELS
    if reason is None and personal and quiet and quiet.contains(now, user.timezone):
        resume = quiet.end_after(now, user.timezone)
        if occurrence_end is None or resume < occurrence_end:
            row.due_at = resume
            row.reason = "held back by quiet hours"
            row.updated_at = now
            report.held += 1
            return
        reason = "quiet hours lasted until the event was over"
    if reason is not None:
        _finish(row, "skipped", reason, now)
        report.skipped += 1
        return
    recipient = Recipient(user.id, user.email, user.timezone, user.display_name)
    _send(session, row, dispatcher, recipient, now=now, max_attempts=max_attempts, report=report)


def _why_skipped(
    session: Session,
    row: NotificationDelivery,
    prefs: Preferences,
    *,
    occurrence_end: datetime | None,
    now: datetime,
) -> str | None:
    """Why the row is not worth sending at all (a reminder too late or superseded, a
    channel or change notices turned off), or None to send it (quiet hours aside)."""
    if row.kind == "reminder" and not recipients.owns_event(session, row.user_id, row.event_id):
        # Its row went without a replan: the calendar left the user's list (access
        # lost, unsubscribed), taking its events with it (decision JK2).
        return "the event is no longer in the user's calendars"
    if row.kind == "reminder" and occurrence_end is not None and occurrence_end <= now:
        log.info("reminder %s skipped: the event ended before it could be sent", row.id)
        return f"too late: the event was over (it was due {row.due_at})"
    if row.kind == "reminder" and _superseded(session, row, now):
        return "superseded by a later reminder of the same occurrence"
    if row.channel not in prefs.channels:
        return f"the {row.channel} channel was turned off"
    if row.kind == "change" and not prefs.change_notices:
        return "change notices were turned off"
    return None


def _send(
    session: Session,
    row: NotificationDelivery,
    dispatcher: Dispatcher,
    recipient: Recipient,
    *,
    now: datetime,
    max_attempts: int,
    report: DeliveryReport,
) -> None:
    """Send the row once and record the outcome: ``sent``; ``failed`` on a permanent
    failure or the last attempt; else due again after `backoff`. A sender's bug counts
    as a temporary failure (it must not stop the other rows)."""
    notice = Notice(
        id=row.id,
        kind=row.kind,
        channel=row.channel,
        recipient=recipient,
        payload=row.payload or {},
        due_at=row.due_at,
    )
    row.attempts += 1
    try:
        failure = _sent(session, dispatcher, notice, now=now)
    except Exception as err:  # a bug in a sender must not stop the others
        log.exception("sending notice %s failed unexpectedly", row.id)
        reason = f"unexpected error: {type(err).__name__}"
    else:
        if failure is None:
            _finish(row, "sent", None, now)
            row.sent_at = now
            report.sent += 1
            return
        if isinstance(failure, PermanentFailure):
            _finish(row, "failed", failure.reason, now)
            report.failed += 1
            return
        reason = failure.reason
    if row.attempts >= max_attempts:
        _finish(row, "failed", f"gave up after {row.attempts} attempts: {reason}", now)
        report.failed += 1
        return
    row.due_at = now + backoff(row.attempts)
    row.reason = f"attempt {row.attempts} failed, retrying: {reason}"
    row.updated_at = now
    report.retrying += 1


def _sent(
    session: Session, dispatcher: Dispatcher, notice: Notice, *, now: datetime
) -> PermanentFailure | TemporaryFailure | None:
    """Send `notice` in a savepoint: None when sent, else the failure the sender
    reported (its housekeeping, such as removing an expired push subscription, kept).
    Raises whatever else the sender raised, its statements rolled back."""
    # The savepoint isolates the sender's statements: on PostgreSQL one the server
    # refuses (a timeout, a cancel) would otherwise abort the delivery's transaction,
    # and the row's outcome, and the rest of the run, could not be stored (decision AX1).
    with session.begin_nested():
        try:
            dispatcher.send(session, notice, now=now)
        except (PermanentFailure, TemporaryFailure) as failure:
            return failure
    return None


def _superseded(session: Session, row: NotificationDelivery, now: datetime) -> bool:
    """Whether a late reminder has a shorter-lead sibling that is due too: after downtime,
    or when quiet hours that held both end, only the last reminder of an occurrence is
    worth sending. Late is by the planned time (occurrence start - lead): a hold moved
    `due_at` to the quiet hours' end, where both siblings fall due at once (JK4)."""
    planned = row.due_at
    if row.occurrence_start is not None and row.lead_minutes is not None:
        planned = row.occurrence_start - timedelta(minutes=row.lead_minutes)
    if planned >= now - _LATE:
        return False
    return store_deliveries.later_reminder_due(session, row, now)


def _finish(row: NotificationDelivery, status: str, reason: str | None, now: datetime) -> None:
    metrics.NOTICES_SENT.labels(row.kind, row.channel, status).inc()
    row.status = status
    row.reason = reason
    row.updated_at = now


def _instant(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
