"""The daily Google budget and adaptive polling (decisions Y1-Y6), on both databases with
several users, the budget's counters in the real Redis (``CALSYNC_TEST_REDIS``).

- priorities: a lower priority stops at its ceiling, higher ones go on, and the day's
  total never passes the budget, even with threads of several users spending at once;
- deferral, not loss: a poll or a notification's pull the budget has no room for makes
  no Google request, stays due, and brings its change once the next quota day begins;
- adaptive interval: a calendar with a live channel is polled rarely (at the latest
  when its channel expires), one without often, and often again after a poll found a
  change no notification had announced.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from calsync.jobs import fan_out_renewals
from calsync.providers.budget import (
    CEILINGS,
    BudgetDeferred,
    DailyBudget,
    Priority,
    RedisBudgetStore,
    daily_budget,
    next_quota_day,
    quota_day,
)
from calsync.providers.quota import REDIS_PREFIX
from calsync.providers.quota_store import RedisQuotaBuckets
from calsync.scheduler import due_audits, due_pulls
from calsync.store.tables import Calendar, Event, WatchChannel
from calsync.sync import kicks
from calsync.sync.polling import budget_report
from calsync.web.state_metrics import collect_state
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, User, running

pytestmark = pytest.mark.integration

BUDGET = 200


@pytest.fixture(params=["embedded", "embedded, quota in Redis", "production"])
def budget_app(
    request: pytest.FixtureRequest, fake_google: FakeGoogle, redis_url: str
) -> Iterator[EventsApp]:
    """SQLite and PostgreSQL, each with a daily budget of `BUDGET` counted in Redis. The
    quota's buckets are in Redis in production (the budget is then spent in the quota's
    script, decisions IN) and in SQLite's second variant, in this process in the first
    (the budget's own script after the buckets)."""
    settings = request.getfixturevalue(f"{request.param.split(',')[0]}_settings")
    quota_client = redis.Redis.from_url(redis_url)
    for app in running(settings, fake_google, google_daily_budget=BUDGET):
        app.services.budget.close()
        app.services.budget = daily_budget(redis_url, BUDGET, clock=app.clock)
        limiter: Any = app.services.providers.limiter
        limiter.budget = app.services.budget
        if request.param == "embedded, quota in Redis":
            limiter.buckets = RedisQuotaBuckets(quota_client, prefix=REDIS_PREFIX)
        assert isinstance(limiter.buckets, RedisQuotaBuckets) == (request.param != "embedded")
        yield app
    quota_client.close()


def spend_until_refused(budget: DailyBudget, priority: Priority) -> int:
    spent = 0
    while True:
        try:
            budget.spend(priority)
        except BudgetDeferred:
            return spent
        spent += 1


@pytest.fixture
def redis_budget(redis_url: str) -> Iterator[tuple[DailyBudget, list[datetime]]]:
    now = [datetime(2031, 3, 3, 20, 0, tzinfo=UTC)]  # noon in California
    client = redis.Redis.from_url(redis_url)
    budget = DailyBudget(RedisBudgetStore(client), per_day=1000, clock=lambda: now[0])
    yield budget, now
    budget.close()


def test_lower_priorities_stop_at_their_ceilings_and_the_total_never_passes_the_budget(
    redis_budget: tuple[DailyBudget, list[datetime]],
) -> None:
    budget, _ = redis_budget
    # Polls spend until the day's total reaches their ceiling (600 of 1000), then stop
    assert spend_until_refused(budget, Priority.POLL) == 600
    assert budget.room(Priority.POLL) == 0
    # Higher priorities still have room, each up to its own ceiling
    assert budget.room(Priority.NOTIFICATION) == 200
    assert spend_until_refused(budget, Priority.NOTIFICATION) == 200
    assert spend_until_refused(budget, Priority.INTERACTIVE) == 100
    assert spend_until_refused(budget, Priority.WRITE) == 100
    # And nothing more, whatever the priority
    for priority in Priority:
        assert budget.room(priority) == 0
        with pytest.raises(BudgetDeferred):
            budget.spend(priority)
    usage = budget.usage()
    assert usage.total == 1000
    assert dict(usage.spent) == {
        Priority.POLL: 600,
        Priority.NOTIFICATION: 200,
        Priority.INTERACTIVE: 100,
        Priority.WRITE: 100,
    }


def test_writes_get_their_reserve_even_when_polls_spent_first_from_many_threads(
    redis_budget: tuple[DailyBudget, list[datetime]],
) -> None:
    budget, _ = redis_budget
    counts: dict[Priority, int] = dict.fromkeys(Priority, 0)
    lock = threading.Lock()

    def worker(priority: Priority) -> None:
        for _ in range(400):
            try:
                budget.spend(priority)
            except BudgetDeferred:
                continue
            with lock:
                counts[priority] += 1

    # Eight threads (as many users' jobs) poll, two notify, two write, all at once
    threads = [threading.Thread(target=worker, args=(Priority.POLL,)) for _ in range(8)]
    threads += [threading.Thread(target=worker, args=(Priority.NOTIFICATION,)) for _ in range(2)]
    threads += [threading.Thread(target=worker, args=(Priority.WRITE,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The counters agree with what was allowed, the polls stayed within their ceiling
    # (the store's check and increment are one atomic step), and the total within budget
    spent = budget.usage().spent
    assert {p: spent.get(p, 0) for p in Priority} == counts
    assert counts[Priority.POLL] <= 600
    assert sum(counts.values()) <= 1000
    # The writes asked for 800 and got at least the 10 % no one else may touch
    assert counts[Priority.WRITE] >= 100


def test_the_day_rolls_over_at_midnight_pacific(
    redis_budget: tuple[DailyBudget, list[datetime]],
) -> None:
    budget, now = redis_budget
    spend_until_refused(budget, Priority.POLL)
    # 23:59:59 in California (PST, UTC-8) is still the same quota day
    midnight = next_quota_day(now[0])
    assert midnight == datetime(2031, 3, 4, 8, 0, tzinfo=UTC)
    now[0] = midnight - timedelta(seconds=1)
    assert budget.room(Priority.POLL) == 0
    with pytest.raises(BudgetDeferred) as refused:
        budget.spend(Priority.POLL)
    assert refused.value.until == midnight
    # At midnight Pacific a new day begins, with the whole budget
    now[0] = midnight
    assert quota_day(now[0]).isoformat() == "2031-03-04"
    assert budget.room(Priority.POLL) == 600
    budget.spend(Priority.POLL)
    assert budget.usage().total == 1
    # Summer time: midnight is 07:00 UTC
    assert next_quota_day(datetime(2031, 7, 1, 12, 0, tzinfo=UTC)) == datetime(
        2031, 7, 2, 7, 0, tzinfo=UTC
    )


def _users(app: EventsApp) -> list[User]:
    return [app.connect(f"{name}@example.com") for name in ("ann", "ben", "cat")]


def _row(app: EventsApp, calendar_id: uuid.UUID) -> Calendar:
    with app.services.sessions() as session:
        row = session.get(Calendar, calendar_id)
        assert row is not None
        session.expunge(row)
        return row


def _add_remote_event(app: EventsApp, user: User, summary: str) -> str:
    start = app.clock() + timedelta(days=1)
    body = {
        "summary": summary,
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
    }
    created: dict[str, str] = app.remote(user).insert(calendarId=user.primary, body=body).execute()
    return created["id"]


def _local_google_ids(app: EventsApp, calendar_id: uuid.UUID) -> set[str]:
    with app.services.sessions() as session:
        return set(
            session.scalars(
                sa.select(Event.google_event_id).where(Event.calendar_id == calendar_id)
            )
        )


def _fill(app: EventsApp, priority: Priority) -> None:
    """Spend the day's budget up to `priority`'s ceiling (other work did)."""
    room = app.services.budget.room(priority)
    if room:
        app.services.budget.spend(priority, cost=room)


def _run_pulls(app: EventsApp, due: list[kicks.DuePull]) -> None:
    for pull in due:
        app.services.jobs.sync_calendar.fn(
            str(pull.calendar_id), "notification" if pull.dirty else "poll"
        )


def test_a_poll_without_room_is_deferred_to_the_next_quota_day_and_loses_nothing(
    budget_app: EventsApp,
) -> None:
    app = budget_app
    users = _users(app)
    for user in users:
        app.pull(user)
    added = {
        user.id: _add_remote_event(app, user, f"made on Google by {user.email}") for user in users
    }
    # Given the day's total has reached the polls' ceiling
    _fill(app, Priority.POLL)
    requests_before = len(app.google_requests())
    # When the polls fall due
    later = app.clock() + timedelta(seconds=app.services.settings.safety_net_interval_seconds + 1)
    app.clock.now = later
    # Then the sweep claims none of them (and no audit), and they stay due
    assert due_pulls(app.services, later) == []
    assert due_audits(app.services, later) == []
    for user in users:
        row = _row(app, user.calendar_id)  # type: ignore[arg-type]
        assert row.next_poll_at is not None
        assert row.next_poll_at <= later
        assert row.sync_queued_at is None
    # And a poll job already queued (claimed before the budget ran out) asks Google
    # nothing: it gives its slot back and moves its poll to the next quota day
    ann = users[0]
    app.services.jobs.sync_calendar.fn(str(ann.calendar_id), "poll")
    assert len(app.google_requests()) == requests_before
    row = _row(app, ann.calendar_id)  # type: ignore[arg-type]
    midnight = next_quota_day(later)
    assert row.sync_queued_at is None
    assert midnight <= row.next_poll_at < midnight + timedelta(hours=1)  # type: ignore[operator]
    assert added[ann.id] not in _local_google_ids(app, ann.calendar_id)  # type: ignore[arg-type]
    # When the next quota day begins (the budget rolls over) and the sweep runs
    app.clock.now = midnight + timedelta(hours=1)
    due = due_pulls(app.services, app.clock())
    assert {d.calendar_id for d in due} == {u.calendar_id for u in users}
    _run_pulls(app, due)
    # Then every user's change arrived: deferred, not lost
    for user in users:
        assert added[user.id] in _local_google_ids(app, user.calendar_id)  # type: ignore[arg-type]
    spent = app.services.budget.usage().spent
    assert spent.get(Priority.POLL, 0) >= len(users)


def test_notification_pulls_outrank_polls_and_writes_outrank_both(budget_app: EventsApp) -> None:
    app = budget_app
    ann, ben, cat = _users(app)
    for user in (ann, ben, cat):
        app.pull(user)
    # Given polls have no room left today, but notifications do
    _fill(app, Priority.POLL)
    gone = _add_remote_event(app, ann, "announced by a notification")
    with app.services.sessions.begin() as session:
        kicks.note_change(session, ann.calendar_id, app.clock())  # type: ignore[arg-type]
    # When the notification's pull runs, it pulls (its priority has room)
    app.services.jobs.sync_calendar.fn(str(ann.calendar_id))
    assert gone in _local_google_ids(app, ann.calendar_id)  # type: ignore[arg-type]
    # Given notifications have no room left either
    _fill(app, Priority.NOTIFICATION)
    held = _add_remote_event(app, ben, "announced when the budget is spent")
    with app.services.sessions.begin() as session:
        claim = kicks.note_change(session, ben.calendar_id, app.clock())  # type: ignore[arg-type]
    assert claim is not None
    requests_before = len(app.google_requests())
    app.services.jobs.sync_calendar.fn(str(ben.calendar_id))
    # Then that pull is deferred: no request, the calendar stays dirty with its slot free
    assert len(app.google_requests()) == requests_before
    row = _row(app, ben.calendar_id)  # type: ignore[arg-type]
    assert row.dirty
    assert row.sync_queued_at is None
    # and the sweep leaves it (no room) rather than queue it again and again
    assert due_pulls(app.services, app.clock()) == []
    # But a user's write still reaches Google (its reserve is untouched)
    created = app.create(
        cat,
        {
            "title": "written while the budget is low",
            "start_time": "2031-03-05T10:00:00Z",
            "end_time": "2031-03-05T11:00:00Z",
        },
    )
    app.services.jobs.push_outbox.fn(created["id"])
    assert app.get(cat, created["id"])["sync_state"] == "synced"
    spent = app.services.budget.usage().spent
    assert spent.get(Priority.WRITE, 0) >= 1
    assert sum(spent.values()) <= BUDGET
    # When the next quota day begins, the held notification's pull is claimed and runs
    app.clock.now = next_quota_day(app.clock())
    due = due_pulls(app.services, app.clock())
    assert [(d.calendar_id, d.dirty) for d in due if d.calendar_id == ben.calendar_id] == [
        (ben.calendar_id, True)
    ]
    _run_pulls(app, [d for d in due if d.calendar_id == ben.calendar_id])
    assert held in _local_google_ids(app, ben.calendar_id)  # type: ignore[arg-type]


def _open_channel(app: EventsApp, user: User, expires_at: datetime) -> None:
    with app.services.sessions.begin() as session:
        session.add(
            WatchChannel(
                id=uuid.uuid4(),
                user_id=user.id,
                calendar_id=user.calendar_id,
                kind="events",
                resource_id=f"resource-{user.email}",
                expires_at=expires_at,
                status="active",
            )
        )


def test_polls_are_rare_with_a_live_channel_often_without_and_often_after_a_miss(
    budget_app: EventsApp,
) -> None:
    app = budget_app
    settings = app.services.settings
    often = timedelta(seconds=settings.safety_net_interval_seconds)
    rarely = timedelta(seconds=settings.poll_with_channel_seconds)
    ann, ben, cat = _users(app)
    # Given ann's calendar has a live channel for a week, cat's one that expires in an
    # hour, and ben's none (Google refused it, or it lapsed)
    _open_channel(app, ann, app.clock() + timedelta(days=7))
    _open_channel(app, cat, app.clock() + timedelta(hours=1))
    # When each is pulled
    now = app.clock()
    for user in (ann, ben, cat):
        app.services.jobs.sync_calendar.fn(str(user.calendar_id), "poll")
    # Then ann's next poll is her slot of the long period, ben's his slot of the short,
    # and cat's when her channel expires (before her slot of the long period)
    assert _row(app, ann.calendar_id).next_poll_at == kicks.poll_slot(ann.calendar_id, now, rarely)  # type: ignore[arg-type]
    assert _row(app, ben.calendar_id).next_poll_at == kicks.poll_slot(ben.calendar_id, now, often)  # type: ignore[arg-type]
    cat_next = _row(app, cat.calendar_id).next_poll_at  # type: ignore[arg-type]
    assert cat_next == min(
        app.clock() + timedelta(hours=1), kicks.poll_slot(cat.calendar_id, now, rarely)
    )  # type: ignore[arg-type]
    # When ann's poll finds a change that no notification announced (her channel
    # dropped it)
    _add_remote_event(app, ann, "missed by the channel")
    app.clock.advance(seconds=rarely.total_seconds())
    now = app.clock()
    app.services.jobs.sync_calendar.fn(str(ann.calendar_id), "poll")
    # Then she is polled often again
    assert _row(app, ann.calendar_id).next_poll_at == kicks.poll_slot(ann.calendar_id, now, often)  # type: ignore[arg-type]
    # And once a poll finds nothing new, rarely again
    app.clock.advance(seconds=often.total_seconds())
    now = app.clock()
    app.services.jobs.sync_calendar.fn(str(ann.calendar_id), "poll")
    assert _row(app, ann.calendar_id).next_poll_at == kicks.poll_slot(ann.calendar_id, now, rarely)  # type: ignore[arg-type]
    # A pull a notification asked for finds changes without doubting the channel
    _add_remote_event(app, ann, "announced")
    app.services.jobs.sync_calendar.fn(str(ann.calendar_id), "notification")
    assert _row(app, ann.calendar_id).next_poll_at == kicks.poll_slot(ann.calendar_id, now, rarely)  # type: ignore[arg-type]


def test_the_report_shows_the_spend_by_priority_and_the_days_forecasts(
    budget_app: EventsApp,
) -> None:
    app = budget_app
    ann, _ben, _cat = _users(app)
    _open_channel(app, ann, app.clock() + timedelta(days=7))
    app.clock.advance(hours=6)  # 06:00 in California: a quarter of the quota day gone
    # (connecting the three users read their calendar lists: interactive work)
    assert app.services.budget.usage().spent == {Priority.INTERACTIVE: 3}
    app.services.budget.spend(Priority.POLL, cost=30)
    app.services.budget.spend(Priority.WRITE, cost=2)
    report = budget_report(app.services)
    assert report["budget"] == BUDGET
    assert report["spent"] == {"write": 2, "interactive": 3, "notification": 0, "poll": 30}
    assert report["total"] == 35
    assert report["ceilings"]["poll"] == int(BUDGET * CEILINGS[Priority.POLL])
    scheduled = report["scheduled"]
    assert scheduled["calendars_with_channel"] == 1
    assert scheduled["calendars_without_channel"] == 2
    left = (next_quota_day(app.clock()) - app.clock()).total_seconds()
    settings = app.services.settings
    expected_polls = left / settings.poll_with_channel_seconds + 2 * left / (
        settings.safety_net_interval_seconds
    )
    assert scheduled["polls"] == round(expected_polls)
    assert (
        report["forecast_scheduled"]
        == 35 + scheduled["polls"] + scheduled["audits"] + (scheduled["renewals"])
    )
    assert report["elapsed"] == 0.25
    assert report["forecast_extrapolated"] == 140


class _Batches:
    """Stands in for the broker: records each renewal batch queued."""

    def __init__(self) -> None:
        self.sent: list[list[str]] = []

    def send(self, ids: list[str]) -> None:
        self.sent.append(ids)


def test_channel_renewals_wait_for_room_and_are_claimed_the_next_quota_day(
    budget_app: EventsApp,
) -> None:
    app = budget_app
    users = _users(app)
    # Given every user's channel expires within the renewal margin
    for user in users:
        _open_channel(app, user, app.clock() + timedelta(hours=3))
    jobs = type("Jobs", (), {"renew_channel_batch": _Batches()})()
    # And the day's total has reached the ceiling of channel work
    _fill(app, Priority.NOTIFICATION)
    # When the renewal sweep runs, it claims nothing: they stay due, unclaimed
    assert fan_out_renewals(app.services, jobs) == 0  # type: ignore[arg-type]
    assert jobs.renew_channel_batch.sent == []
    with app.services.sessions() as session:
        claimed = session.scalars(
            sa.select(WatchChannel.renewal_claimed_at).where(WatchChannel.kind == "events")
        ).all()
    assert claimed == [None, None, None]
    # When the next quota day begins, all three are claimed and queued
    app.clock.now = next_quota_day(app.clock())
    assert fan_out_renewals(app.services, jobs) == 3  # type: ignore[arg-type]
    assert sorted(len(batch) for batch in jobs.renew_channel_batch.sent) == [3]


def _overdue(app: EventsApp) -> float:
    poll_period = timedelta(seconds=app.services.settings.safety_net_interval_seconds)
    families = collect_state(
        app.services.sessions, app.services.broker, app.clock(), poll_period=poll_period
    )
    (family,) = [f for f in families if f.name == "calsync_calendars_pull_overdue"]
    return float(family.samples[0].value)


def test_a_calendar_polled_rarely_is_not_overdue_until_its_poll_is_missed(
    budget_app: EventsApp,
) -> None:
    app = budget_app
    ann, ben, cat = _users(app)
    # Ann's polls fall in a slot of the long period that her (random) calendar id picks:
    # pull 1 h after such a slot, so that her next poll is 3 h away, not minutes.
    rarely = timedelta(seconds=app.services.settings.poll_with_channel_seconds)
    app.clock.now = kicks.poll_slot(ann.calendar_id, app.clock(), rarely) + timedelta(hours=1)
    _open_channel(app, ann, app.clock() + timedelta(days=7))
    for user in (ann, ben, cat):
        app.services.jobs.sync_calendar.fn(str(user.calendar_id), "poll")
    # When three short intervals pass without a pull
    app.clock.advance(seconds=3 * app.services.settings.safety_net_interval_seconds + 1)
    # Then ben's and cat's calendars (no channel: their polls are late) are overdue;
    # ann's next poll is still to come
    assert _overdue(app) == 2
    # When ann's poll is missed by three short intervals too, she is overdue
    next_poll = _row(app, ann.calendar_id).next_poll_at  # type: ignore[arg-type]
    assert next_poll is not None
    app.clock.now = next_poll + timedelta(
        seconds=3 * app.services.settings.safety_net_interval_seconds + 1
    )
    assert _overdue(app) == 3
