"""The event metrics move where the things happen: pushes, conflicts, pulls, Google calls,
quota waits and notices, against PostgreSQL, Redis, SMTP and the emulator.

Each test reads the counters before and after (the registry is process-wide), so they
hold whatever ran earlier.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session, sessionmaker

from calsync.config import Settings
from calsync.domain.models import Attendee, Event, EventTime
from calsync.notify.deliveries import deliver_due
from calsync.notify.on_event_change import event_changed
from calsync.providers.errors import NotFound, RateLimited
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, running
from tests.integration.notify.conftest import (  # noqa: F401 - fixtures used by name
    SmtpServer,
    add_calendar,
    add_event,
    add_user,
    dispatcher_for,
    pg_sessions,
    smtp_server,
)

pytestmark = pytest.mark.integration

BODY = {
    "title": "Base",
    "location": "Room 1",
    "start_time": "2031-03-04T10:00:00Z",
    "end_time": "2031-03-04T11:00:00Z",
}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Counters:
    """Differences of chosen samples since it was made."""

    def __init__(self, *samples: tuple[str, dict[str, str]]) -> None:
        self.samples = samples
        self.before = [sample(name, **labels) for name, labels in samples]

    def moved(self) -> list[float]:
        return [
            sample(name, **labels) - before
            for (name, labels), before in zip(self.samples, self.before, strict=True)
        ]


@pytest.fixture
def app(production_settings: Settings, fake_google: FakeGoogle) -> Iterator[EventsApp]:
    yield from running(production_settings, fake_google)


def test_a_push_counts_its_write_and_its_google_calls(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    counters = Counters(
        ("calsync_outbox_writes_total", {"operation": "insert", "outcome": "ok"}),
        ("calsync_google_calls_total", {"method": "events.insert", "status": "200"}),
        ("calsync_google_call_duration_seconds_count", {"method": "events.insert"}),
    )

    created = app.create(alice, BODY)
    [result] = app.push_all()

    assert result.status == "synced", created
    assert counters.moved() == [1, 1, 1]


def test_a_push_that_meets_a_concurrent_edit_counts_a_conflict(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    created = app.create(alice, BODY)
    app.push_all()
    counters = Counters(
        ("calsync_conflicts_total", {"policy": "last_updated_wins", "found_in": "push"}),
        ("calsync_google_calls_total", {"method": "events.patch", "status": "412"}),
    )

    # Given the same field edited on Google and through the API
    app.remote(alice).patch(
        calendarId=alice.primary, eventId=created["google_event_id"], body={"summary": "Google"}
    ).execute()
    assert app.put(alice, created["id"], {"title": "Local"}).status_code == 200

    # When the push meets Google's newer copy (412) and merges
    app.push_all()

    # Then one conflict by the installation's policy, found by the push
    assert counters.moved() == [1, 1]


def test_pulls_count_by_kind_with_the_changes_they_applied(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    counters = Counters(
        ("calsync_sync_runs_total", {"kind": "full", "outcome": "ok"}),
        ("calsync_sync_runs_total", {"kind": "incremental", "outcome": "ok"}),
        ("calsync_sync_changes_total", {}),
    )
    remote = app.remote(alice)
    for title in ("one", "two"):
        remote.insert(calendarId=alice.primary, body=_google_body(title)).execute()

    app.pull(alice)  # first pull: a full listing
    remote.insert(calendarId=alice.primary, body=_google_body("three")).execute()
    app.pull(alice)  # then with the sync token

    assert counters.moved() == [1, 1, 3]


def test_a_google_error_counts_under_its_status(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    counters = Counters(("calsync_google_calls_total", {"method": "events.get", "status": "404"}))
    provider = app.services.providers.for_user(alice.id)

    with pytest.raises(NotFound):
        provider.get_event(alice.primary, "nosuchevent")

    assert counters.moved() == [1]


def test_a_call_that_got_no_answer_counts_as_network(app: EventsApp) -> None:
    alice = app.connect("alice@example.com")
    counters = Counters(
        ("calsync_google_calls_total", {"method": "events.get", "status": "network"}),
        ("calsync_google_calls_total", {"method": "events.get", "status": "404"}),
    )
    app.control.add_fault(kind="reset", count=1, path="/events/")

    # The reset connection is retried within the call; the retry gets Google's answer
    with pytest.raises(NotFound):
        app.services.providers.for_user(alice.id).get_event(alice.primary, "nosuchevent")

    assert counters.moved() == [1, 1]


@pytest.fixture
def tight_quota_app(production_settings: Settings, fake_google: FakeGoogle) -> Iterator[EventsApp]:
    """12 Google requests a minute per user (one per 5 s once spent, under the limiter's
    10 s patience); the limiter's waits are recorded, not slept."""
    yield from running(production_settings, fake_google, google_user_requests_per_minute=12)


def test_waits_for_the_shared_quota_are_counted_by_the_bucket_that_made_them(
    tight_quota_app: EventsApp,
) -> None:
    # Given a user with a quota of 12 requests a minute
    app = tight_quota_app
    alice = app.connect("alice@example.com")  # spends the two on the calendar list
    counters = Counters(
        ("calsync_rate_limit_waits_total", {"scope": "user"}),
        ("calsync_rate_limit_wait_seconds_total", {"scope": "user"}),
        ("calsync_rate_limit_waits_total", {"scope": "project"}),
    )

    # When calls go on, the limiter waits (as long as it may) once the budget is spent
    provider = app.services.providers.for_user(alice.id)
    with pytest.raises(RateLimited):  # noqa: PT012 - the calls up to the refusal
        for _ in range(13):
            with contextlib.suppress(NotFound):
                provider.get_event(alice.primary, "any")

    waits, seconds, project = counters.moved()
    assert waits >= 1
    assert seconds == pytest.approx(sum(app.sleeps[-int(waits) :]))
    assert seconds > 0
    assert project == 0


def test_a_delivered_notice_is_counted(
    pg_sessions: sessionmaker[Session],  # noqa: F811
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    now = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    planning = Event(
        start=EventTime.at(datetime(2026, 6, 3, 14, 0), "UTC"),
        end=EventTime.at(datetime(2026, 6, 3, 15, 0), "UTC"),
        title="Planning",
        organizer_email="alice@example.com",
        attendees=(
            Attendee(email="alice@example.com", organizer=True),
            Attendee(email="bob@example.com"),
        ),
        provider_event_id="plan1",
    )
    with pg_sessions.begin() as session:
        alice = add_user(session, "alice@example.com")
        add_user(session, "bob@example.com")
        event_id = add_event(
            session, planning, user_id=alice, calendar_id=add_calendar(session, alice)
        )
        moved = planning.__class__(**{**planning.__dict__, "location": "Room 9"})
        event_changed(
            session,
            before=planning,
            after=moved,
            event_id=event_id,
            actor_user_id=alice,
            source="api",
            now=now,
        )
    counters = Counters(
        ("calsync_notices_sent_total", {"kind": "change", "channel": "email", "outcome": "sent"})
    )

    report = deliver_due(pg_sessions, dispatcher_for(smtp=smtp_server), now=now)

    assert report.sent == 1
    assert counters.moved() == [1]


def _google_body(title: str) -> dict[str, object]:
    return {
        "summary": title,
        "start": {"dateTime": "2031-05-01T10:00:00Z"},
        "end": {"dateTime": "2031-05-01T11:00:00Z"},
    }
