"""The scheduler's sweeps fan out and spread, on both databases with several users:
safety-net polls fall at each calendar's own slot of the interval instead of all together,
each sweep claims a bounded number of calendars, and channel renewals are claimed once
and queued in batch jobs that stop at their budget (decisions Q1-Q3)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.scheduler import due_calendars
from calsync.store.tables import Calendar, User, WatchChannel
from calsync.sync import channels, kicks
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.channels import ensure_channels
from tests.integration.events.conftest import EventsApp
from tests.integration.sync.conftest import SyncStack

pytestmark = pytest.mark.integration

EXTRA = [{"summary": "Work"}, {"summary": "Home"}, {"summary": "Club"}]


def calendar_ids(app: EventsApp) -> list[uuid.UUID]:
    with app.services.sessions() as session:
        return list(session.scalars(sa.select(Calendar.id).order_by(Calendar.id)))


def test_safety_net_polls_spread_over_the_interval_at_each_calendars_slot(
    app: EventsApp,
) -> None:
    # Given two users' calendars (six), all pulled at the same moment
    app.connect("ann@example.com", calendars=EXTRA)
    app.connect("ben@example.com", calendars=EXTRA[:1])
    ids = calendar_ids(app)
    assert len(ids) == 6
    pulled_at = app.clock()
    for calendar_id in ids:
        app.pull(None, calendar_id)  # type: ignore[arg-type]
    interval = timedelta(seconds=app.services.settings.safety_net_interval_seconds)
    steps = 20
    step = interval / steps

    # When the scheduler sweeps every twentieth of the interval, through one interval
    claimed_at: dict[uuid.UUID, int] = {}
    for tick in range(1, steps + 1):
        for calendar_id in due_calendars(app.services, pulled_at + tick * step):
            claimed_at.setdefault(calendar_id, tick)  # (a claim unanswered for a lease
            # is claimed again: no worker runs here)

    # Then every calendar was polled within the interval, at the first sweep after its
    # own slot, so the polls are spread rather than all at the interval's end
    assert set(claimed_at) == set(ids)
    for calendar_id, tick in claimed_at.items():
        slot = kicks.poll_slot(calendar_id, pulled_at, interval)
        assert pulled_at < slot <= pulled_at + interval
        assert tick == -((pulled_at - slot) // step)  # ceil((slot - pulled_at) / step)
    assert len(set(claimed_at.values())) > 1


def test_each_sweep_claims_a_bounded_number_per_kind_most_overdue_first(app: EventsApp) -> None:
    app.connect("ann@example.com", calendars=EXTRA)
    app.connect("ben@example.com", calendars=EXTRA[:1])
    ids = calendar_ids(app)
    now = app.clock()
    # Given six calendars whose polls are overdue by different amounts
    with app.services.sessions.begin() as session:
        for n, calendar_id in enumerate(ids):
            session.execute(
                sa.update(Calendar)
                .where(Calendar.id == calendar_id)
                .values(sync_queued_at=None, dirty=False, next_poll_at=now - timedelta(hours=n))
            )
    interval = timedelta(seconds=app.services.settings.safety_net_interval_seconds)

    def sweep() -> list[uuid.UUID]:
        with app.services.sessions.begin() as session:
            return kicks.claim_due(
                session,
                now=now,
                poll_every=interval,
                slot_lost_before=now - timedelta(hours=1),
                limit=2,
            )

    # And, more overdue than all of them, a disabled user's calendars and an unselected
    # calendar, which are never pulled
    cal = app.connect("cal@example.com", calendars=EXTRA[:1])
    dan = app.connect("dan@example.com")
    never = sorted(set(calendar_ids(app)) - set(ids))
    with app.services.sessions.begin() as session:
        session.execute(
            sa.update(Calendar)
            .where(Calendar.id.in_(never))
            .values(sync_queued_at=None, dirty=True, next_poll_at=now - timedelta(days=9))
        )
        session.execute(sa.update(User).where(User.id == cal.id).values(status="disabled"))
        session.execute(
            sa.update(Calendar).where(Calendar.user_id == dan.id).values(selected=False)
        )

    # When the sweep runs four times with a bound of two
    rounds = [sweep() for _ in range(4)]
    # Then each claimed two, the most overdue first, and nothing was left or taken twice
    assert [len(r) for r in rounds] == [2, 2, 2, 0]
    assert [set(r) for r in rounds[:3]] == [
        set(ids[5:3:-1]),
        set(ids[3:1:-1]),
        set(ids[1::-1]),
    ]


@dataclass
class Sent:
    """Stands in for the broker: records each renewal batch queued."""

    batches: list[list[str]] = field(default_factory=list)

    def send(self, ids: list[str]) -> None:
        self.batches.append(ids)


@dataclass
class Jobs:
    renew_channel_batch: Sent = field(default_factory=Sent)


def connected(stack: SyncStack, email: str, calendars: list[dict[str, Any]]) -> uuid.UUID:
    """`email` connected with a primary and `calendars`, their calendar list stored."""
    stack.connect(email, calendars=calendars or None)
    sync_calendar_list(stack.services, stack.user_id)
    return stack.user_id


def active_channels(stack: SyncStack) -> list[WatchChannel]:
    with stack.services.sessions() as session:
        return list(session.scalars(sa.select(WatchChannel).where(WatchChannel.status == "active")))


def test_renewals_are_claimed_once_fanned_out_in_batches_and_stop_at_their_budget(
    hand_stack: SyncStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from calsync.jobs import fan_out_renewals  # (here: the other tests run without it)
    from calsync.sync.channels import renew_claimed

    services = hand_stack.services
    # Given two users with six channels (calendars and calendar lists), all expiring soon
    ann = connected(hand_stack, "ann@example.com", EXTRA[:2])
    ben = connected(hand_stack, "ben@example.com", [])
    for user_id in (ann, ben):
        ensure_channels(services, user_id)
    old = {c.id: c for c in active_channels(hand_stack)}
    assert len(old) == 6
    with services.sessions.begin() as session:
        session.execute(
            sa.update(WatchChannel).values(expires_at=services.clock() + timedelta(minutes=5))
        )
    monkeypatch.setattr(channels, "RENEW_BATCH", 2)

    # When the scheduler's renewal task runs twice in a row
    jobs: Any = Jobs()
    assert fan_out_renewals(services, jobs) == 6
    assert fan_out_renewals(services, jobs) == 0
    # Then it queued three batches of two, each channel in exactly one
    batches = jobs.renew_channel_batch.batches
    assert [len(b) for b in batches] == [2, 2, 2]
    assert sorted(uuid.UUID(i) for b in batches for i in b) == sorted(old)

    # When the first batch's job runs out of budget after one channel
    ticks = iter([0.0, 0.0, 100.0, 100.0])
    first = renew_claimed(
        services,
        [uuid.UUID(i) for i in batches[0]],
        budget=timedelta(seconds=60),
        monotonic=lambda: next(ticks),
    )
    # Then it renewed one and gave the other back, which the next sweep queues again
    assert (first.renewed, first.failed) == (1, 0)
    for batch in batches[1:]:
        assert renew_claimed(services, [uuid.UUID(i) for i in batch]).renewed == 2
    assert fan_out_renewals(services, jobs) == 1
    assert jobs.renew_channel_batch.batches[-1] == [batches[0][1]]
    assert renew_claimed(services, [uuid.UUID(batches[0][1])]).renewed == 1

    # And every old channel was replaced exactly once: one live channel per calendar and
    # per calendar list, each user's own
    live = active_channels(hand_stack)
    assert not set(old) & {c.id for c in live}
    assert sorted((c.user_id, c.calendar_id or uuid.UUID(int=0)) for c in live) == sorted(
        (c.user_id, c.calendar_id or uuid.UUID(int=0)) for c in old.values()
    )
    # And the renewal job has a time limit above its budget
    limit = services.jobs.renew_channel_batch.options["time_limit"]
    assert limit >= channels.RENEW_JOB_BUDGET.total_seconds() * 1000


def test_a_renewed_channel_google_would_not_stop_is_not_renewed_again(
    hand_stack: SyncStack,
) -> None:
    from calsync.sync.channels import renew_channels

    services = hand_stack.services
    # Given two users' channels expiring soon, and Google failing every channels.stop
    for email in ("ann@example.com", "ben@example.com"):
        ensure_channels(services, connected(hand_stack, email, []))
    before = {c.id for c in active_channels(hand_stack)}
    assert len(before) == 4
    with services.sessions.begin() as session:
        session.execute(
            sa.update(WatchChannel).values(expires_at=services.clock() + timedelta(minutes=5))
        )
    hand_stack.control.add_fault(kind="status", status=400, count=None, path="/channels/stop")
    # When the renewal runs, and runs again after its claims ran out
    assert renew_channels(services).renewed == 4
    with services.sessions.begin() as session:
        session.execute(sa.update(WatchChannel).values(renewal_claimed_at=None))
    again = renew_channels(services)
    # Then each channel was replaced once: one live channel per calendar and list
    assert again.renewed == 0
    live = active_channels(hand_stack)
    assert len(live) == 4
    assert not before & {c.id for c in live}
