"""The state metrics' arithmetic on seeded rows, on PostgreSQL and SQLite: lag buckets and
the worst calendars, channels by time left, outbox depth and age, notices due and overdue,
and what a scrape says when the database is down."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.core import Metric

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.store.tables import (
    Calendar,
    Event,
    NotificationDelivery,
    OutboxEntry,
    User,
    WatchChannel,
)
from calsync.store.users import ensure_user
from calsync.web.state_metrics import WORST_CALENDARS, collect_state
from tests.migrated import upgrade

pytestmark = pytest.mark.integration

NOW = datetime(2031, 5, 6, 12, 0, tzinfo=UTC)


def samples(families: list[Metric]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families
        for s in family.samples
    }


def get(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def seed(services: Services) -> list[uuid.UUID]:
    with services.sessions.begin() as session:
        user = ensure_user(session, "state@example.com")
        gone = ensure_user(session, "gone@example.com")
        session.get(User, gone.id).status = "disabled"  # type: ignore[union-attr]
        lags = [30, 200, 600, 7200, 7200, 100_000]  # seconds since the last pull
        calendars = []
        for i, lag in enumerate(lags):
            calendar = Calendar(
                user_id=user.id,
                provider_calendar_id=f"c{i}",
                last_synced_at=NOW - timedelta(seconds=lag),
            )
            session.add(calendar)
            calendars.append(calendar)
        session.add(Calendar(user_id=user.id, provider_calendar_id="never"))
        session.add(Calendar(user_id=user.id, provider_calendar_id="off", selected=False))
        session.add(  # a disabled user's calendar does not count
            Calendar(
                user_id=gone.id,
                provider_calendar_id="old",
                last_synced_at=NOW - timedelta(days=30),
            )
        )
        session.flush()
        lefts = [-60, 1800, 5 * 3600, 3 * 86400, 10 * 86400, None]
        for left in lefts:
            session.add(
                WatchChannel(
                    user_id=user.id,
                    calendar_id=calendars[0].id,
                    kind="events",
                    expires_at=None if left is None else NOW + timedelta(seconds=left),
                )
            )
        session.add(  # stopped channels are not counted
            WatchChannel(
                user_id=user.id,
                kind="calendar_list",
                status="stopped",
                expires_at=NOW + timedelta(hours=2),
            )
        )
        event = Event(
            calendar_id=calendars[0].id,
            user_id=user.id,
            start_time=NOW,
            end_time=NOW + timedelta(hours=1),
        )
        session.add(event)
        session.flush()
        for age, status in ((120, "pending"), (30, "pending"), (999, "done"), (5000, "failed")):
            at = NOW - timedelta(seconds=age)
            session.add(
                OutboxEntry(
                    event_id=event.id,
                    user_id=user.id,
                    calendar_id=calendars[0].id,
                    operation="update",
                    status=status,
                    created_at=at,
                    due_at=at,
                )
            )
        notices = [
            ("reminder", "pending", -30),  # due 30 s ago
            ("reminder", "pending", -600),  # overdue
            ("reminder", "pending", 600),  # not due yet
            ("reminder", "sent", -600),
            ("change", "pending", -3600),  # overdue
        ]
        for i, (kind, status, due_in) in enumerate(notices):
            session.add(
                NotificationDelivery(
                    user_id=user.id,
                    kind=kind,
                    channel="email",
                    dedupe_key=f"k{i}",
                    status=status,
                    due_at=NOW + timedelta(seconds=due_in),
                )
            )
        return [c.id for c in calendars]


@pytest.mark.parametrize("mode", ["embedded", "production"])
def test_state_metrics_count_what_the_rows_say(mode: str, request: pytest.FixtureRequest) -> None:
    settings: Settings = request.getfixturevalue(f"{mode}_settings")
    services = bootstrap(settings)
    upgrade(services.engine)
    calendars = seed(services)
    found = samples(collect_state(services.sessions, services.broker, NOW))
    services.close()

    assert get(found, "calsync_state_source_up", source="database") == 1
    assert get(found, "calsync_state_source_up", source="broker") == 1
    # Six synced calendars of active users (not the unselected one, not the disabled user's)
    expected_le = {"60": 1, "300": 2, "900": 3, "1800": 3, "3600": 3, "21600": 5, "86400": 5}
    for le, count in expected_le.items():
        assert get(found, "calsync_calendars_by_sync_lag", le=le) == count, le
    assert get(found, "calsync_calendars_by_sync_lag", le="+Inf") == 6
    assert get(found, "calsync_sync_lag_max_seconds") == 100_000
    assert get(found, "calsync_calendars_never_synced") == 1
    worst = {
        dict(labels)["calendar_id"]: value
        for (name, labels), value in found.items()
        if name == "calsync_sync_lag_worst_seconds"
    }
    assert len(worst) == WORST_CALENDARS
    assert worst[str(calendars[-1])] == 100_000
    assert str(calendars[0]) not in worst  # the freshest is not among the worst five
    # Active channels only: expired, <1h, <1d, <7d, more (10 days and no expiry)
    left = {"expired": 1, "lt_1h": 1, "lt_1d": 1, "lt_7d": 1, "more": 2}
    for bucket, count in left.items():
        assert get(found, "calsync_channels_by_time_left", left=bucket) == count, bucket
    assert get(found, "calsync_outbox_depth") == 2
    assert get(found, "calsync_outbox_oldest_age_seconds") == 120
    assert get(found, "calsync_outbox_failed") == 1
    assert get(found, "calsync_notices_due", kind="reminder") == 2
    assert get(found, "calsync_notices_overdue", kind="reminder") == 1
    assert get(found, "calsync_notices_due", kind="change") == 1
    assert get(found, "calsync_notices_overdue", kind="change") == 1
    for queue in ("writes", "sync", "maintenance"):
        assert get(found, "calsync_queue_depth", queue=queue) == 0


def test_an_unreachable_database_and_broker_are_reported_not_raised(
    production_settings: Settings,
) -> None:
    services = bootstrap(
        replace(
            production_settings,
            database_url="postgresql://postgres@127.0.0.1:1/nowhere",
            redis_url="redis://127.0.0.1:1/0",
        )
    )
    found = samples(collect_state(services.sessions, services.broker, NOW))
    services.close()

    assert get(found, "calsync_state_source_up", source="database") == 0
    assert get(found, "calsync_state_source_up", source="broker") == 0
    assert not any(name == "calsync_outbox_depth" for name, _ in found)
