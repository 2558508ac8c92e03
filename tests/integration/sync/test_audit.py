"""The convergence audit, on both databases with two users: it finds and repairs what
differs from Google behind calsync's back, logs it with counts, moves the metrics, never
touches another user's calendars, and is scheduled spread out and bounded per tick."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from calsync.config import Settings
from calsync.runtime import worker_threads
from calsync.scheduler import build_scheduler, due_audits
from calsync.store.tables import Calendar, SyncLog
from calsync.sync.audit import audit_slot
from tests.conftest import FakeGoogle
from tests.integration.events.conftest import EventsApp, running
from tests.integration.events.test_crud import MEETING
from tests.integration.sync.conftest import wait_until
from tests.integration.sync.guarded import (
    audit,
    calendar_json,
    counter,
    delete_behind_calsyncs_back,
    forget_sync_token,
    google_rows,
    hide_events,
    local_rows,
    logs,
    pull,
    seeded,
    set_title_behind_calsyncs_back,
)
from tests.integration.sync.seed import timed

pytestmark = pytest.mark.integration


def test_the_audit_repairs_what_differs_behind_calsyncs_back_and_only_for_its_user(
    app: EventsApp,
) -> None:
    alice = seeded(app, "alice@example.com", 6)
    bob = seeded(app, "bob@example.com", 6)
    ids = sorted(local_rows(app, alice))
    google = app.remote(alice)
    # Given Alice's local copy diverges from Google's without calsync knowing:
    delete_behind_calsyncs_back(app, ids[0])  # a row lost here
    set_title_behind_calsyncs_back(app, ids[1], "changed in the database")  # same etag
    google.delete(calendarId=alice.primary, eventId=ids[2]).execute()  # never pulled
    google.patch(calendarId=alice.primary, eventId=ids[3], body={"summary": "x"}).execute()
    added = google.insert(calendarId=alice.primary, body=timed(40)).execute()  # never pulled
    assert local_rows(app, alice) != google_rows(app, alice)
    # And Bob's copy diverges too (Alice's audit must leave it alone)
    bob_id = sorted(local_rows(app, bob))[0]
    set_title_behind_calsyncs_back(app, bob_id, "Bob's own divergence")
    repaired, converged = (
        counter("calsync_audits_total", outcome="repaired"),
        counter("calsync_audits_total", outcome="converged"),
    )
    repairs = {
        kind: counter("calsync_audit_repairs_total", kind=kind)
        for kind in ("missing", "extra", "different")
    }
    app.control.clear_requests()

    # When Alice's calendar is audited
    app.clock.advance(seconds=1)
    audit(app, alice)

    # Then it spoke to Google as Alice only
    assert {r["user"] for r in app.control.requests()} == {alice.email}
    # And her copy equals Google's again, field by field
    assert local_rows(app, alice) == google_rows(app, alice)
    assert added["id"] in local_rows(app, alice)
    assert ids[2] not in local_rows(app, alice)
    # And the audit row counts what differed and what was repaired
    entry = logs(app, alice, kind="audit")[0]
    assert entry["status"] == "ok"
    assert entry["calendar_id"] == str(alice.calendar_id)
    counts = {key: entry["details"][key] for key in COUNTS}
    assert counts == {
        "compared": 7,  # five of the six, the tombstone of the deleted one, the new one
        "missing_locally": 2,
        "extra_locally": 1,
        "different": 2,
        "drifted": 1,
        "repaired": 5,
    }
    # And the metrics moved
    assert counter("calsync_audits_total", outcome="repaired") == repaired + 1
    assert counter("calsync_audit_repairs_total", kind="missing") == repairs["missing"] + 2
    assert counter("calsync_audit_repairs_total", kind="extra") == repairs["extra"] + 1
    assert counter("calsync_audit_repairs_total", kind="different") == repairs["different"] + 2
    # And Bob's calendar was not touched: his divergence is still there, unlogged
    assert local_rows(app, bob)[bob_id]["title"] == "Bob's own divergence"
    assert logs(app, bob, kind="audit") == []

    # When Alice's calendar is audited again, there is nothing left to repair
    app.clock.advance(seconds=1)
    audit(app, alice)
    again = logs(app, alice, kind="audit")[0]
    assert again["details"]["repaired"] == 0
    assert again["details"]["compared"] == 7
    assert counter("calsync_audits_total", outcome="converged") == converged + 1


def test_an_audit_finds_nothing_to_repair_in_what_calsync_wrote_itself(app: EventsApp) -> None:
    alice = seeded(app, "alice@example.com", 2)
    # Given events written through the API (attendees, reminders, metadata, a series, an
    # all-day event) and pushed to Google
    for body in WRITTEN:
        app.create(alice, body)
    app.push_all()
    pull(app, alice)
    converged = counter("calsync_audits_total", outcome="converged")

    # When the calendar is audited
    app.clock.advance(seconds=1)
    audit(app, alice)

    # Then nothing differed: calsync's own writes read back equal from Google
    entry = logs(app, alice, kind="audit")[0]
    assert entry["details"]["compared"] == 2 + len(WRITTEN)
    assert entry["details"]["repaired"] == 0, entry["details"]
    assert counter("calsync_audits_total", outcome="converged") == converged + 1


WRITTEN = [
    MEETING,  # attendees, reminders, metadata: the richest single the API writes
    {
        "title": "Stand-up",
        "start_time": "2031-03-05T09:00:00",
        "end_time": "2031-03-05T09:15:00",
        "timezone": "America/New_York",
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=10"],
    },
    {"title": "Holiday", "start_time": "2031-03-10", "end_time": "2031-03-11", "all_day": True},
]


COUNTS = ("compared", "missing_locally", "extra_locally", "different", "drifted", "repaired")


@pytest.fixture(params=["embedded", "production"])
def two_per_tick(request: pytest.FixtureRequest, fake_google: FakeGoogle) -> Iterator[EventsApp]:
    """`app` with at most two audits enqueued per scheduler tick."""
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    yield from running(settings, fake_google, audits_per_minute=2)


def next_audits(app: EventsApp) -> dict[str, datetime]:
    """When each calendar's next audit is due (every calendar has one once placed)."""
    with app.services.sessions() as session:
        rows = session.execute(sa.select(Calendar.id, Calendar.next_audit_at)).all()
    assert all(row.next_audit_at is not None for row in rows)
    return {str(row.id): row.next_audit_at for row in rows}


def test_the_scheduler_spreads_audits_over_the_period_and_bounds_each_tick(
    two_per_tick: EventsApp,
) -> None:
    app = two_per_tick
    app.connect("alice@example.com", calendars=[{"summary": "Work"}, {"summary": "Home"}])
    app.connect("bob@example.com")
    period = timedelta(seconds=app.services.settings.audit_interval_seconds)
    start = app.clock()

    # When the scheduler first looks, every calendar gets its slot in the coming period
    assert due_audits(app.services, start) == []
    slots = next_audits(app)
    assert len(slots) == 4
    for calendar_id, slot in slots.items():
        assert slot == audit_slot(uuid.UUID(calendar_id), start, period)
        assert start < slot <= start + period

    # When a period has passed, each tick claims at most two, the most overdue first
    later = start + period
    first = due_audits(app.services, later)
    second = due_audits(app.services, later)
    assert len(first) == len(second) == 2
    assert due_audits(app.services, later) == []
    assert sorted(map(str, first + second)) == sorted(slots)
    assert max(slots[str(i)] for i in first) <= min(slots[str(i)] for i in second)

    # When the claims have run out, and the scheduler's task runs for two ticks (two
    # audits each) with workers running the jobs
    app.clock.now = later + timedelta(minutes=10)
    [task] = [t for t in build_scheduler(app.services).tasks if t.name == "audit_calendars"]
    with worker_threads(app.services, threads=2):
        task.action(app.clock())
        wait_until(lambda: len(audited(app)) == 2, what="the first tick's two audits")
        task.action(app.clock())
        wait_until(lambda: audited(app) == set(slots), what="an audit of every calendar")
    # Then each calendar's next audit is its slot in the following period
    for calendar_id, slot in next_audits(app).items():
        assert slot == audit_slot(uuid.UUID(calendar_id), app.clock(), period)


def audited(app: EventsApp) -> set[str]:
    """The calendars with an audit row in the sync log."""
    with app.services.sessions() as session:
        found = session.scalars(sa.select(SyncLog.calendar_id).where(SyncLog.kind == "audit"))
        return {str(calendar_id) for calendar_id in found}


def scrape(app: EventsApp) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = app.client.get("/metrics")
    assert answer.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def test_the_state_metrics_show_held_and_overdue_calendars(app: EventsApp) -> None:
    alice = seeded(app, "alice@example.com", 30)
    bob = seeded(app, "bob@example.com", 25)
    found = scrape(app)
    assert found[("calsync_calendars_pull_overdue", ())] == 0
    assert found[("calsync_calendars_by_sync_status", (("status", "ok"),))] == 2
    assert found[("calsync_calendars_by_sync_status", (("status", "held"),))] == 0

    # When Alice's calendar holds deletions
    forget_sync_token(app, alice)
    hide_events(app, alice, keep=0, count=1)
    pull(app, alice)
    assert calendar_json(app, alice)["sync"]["status"] == "held"
    found = scrape(app)
    assert found[("calsync_calendars_by_sync_status", (("status", "held"),))] == 1
    assert found[("calsync_calendars_by_sync_status", (("status", "ok"),))] == 1

    # When no pull succeeds for three safety-net periods, both calendars are overdue
    poll = app.services.settings.safety_net_interval_seconds
    app.clock.advance(seconds=3 * poll + 1)
    assert scrape(app)[("calsync_calendars_pull_overdue", ())] == 2
    # And a successful pull of Bob's calendar leaves only Alice's overdue
    pull(app, bob)
    assert scrape(app)[("calsync_calendars_pull_overdue", ())] == 1
