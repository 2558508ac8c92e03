"""A create plans its new event's reminders from the values in hand (decision HT1).

The create no longer re-reads its row, the owner's zone and the pending reminders to
replan: the reminders it leaves must be exactly those a full replan
(`reschedule_reminders`) of the committed row makes, for events soon, later and far
ahead, singles, all-day events and series, with the event's own reminders or the
owner's preferences, for several users (one with a zone of their own); and a create of
an event far ahead sends no reminder statement. Both databases.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from calsync.notify.on_event_change import reschedule_reminders
from calsync.store.tables import NotificationDelivery, User
from tests.integration.events.conftest import EventsApp

pytestmark = pytest.mark.integration


def body(app: EventsApp, title: str, hours: float, **extra: Any) -> dict[str, Any]:
    start = app.clock() + timedelta(hours=hours)
    return {
        "title": title,
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(minutes=45)).isoformat(),
        **extra,
    }


def all_day(app: EventsApp, title: str, days: int) -> dict[str, Any]:
    day = (app.clock() + timedelta(days=days)).date()
    return {"title": title, "start_time": str(day), "end_time": str(day + timedelta(days=1))}


def pending(app: EventsApp, ids: list[str]) -> set[tuple[Any, ...]]:
    """The pending reminders of the events `ids`, as comparable tuples."""
    with app.services.sessions() as session:
        rows = session.scalars(
            sa.select(NotificationDelivery).where(
                NotificationDelivery.event_id.in_([uuid.UUID(i) for i in ids]),
                NotificationDelivery.kind == "reminder",
                NotificationDelivery.status == "pending",
            )
        ).all()
        return {
            (
                str(r.event_id),
                r.user_id,
                r.channel,
                r.dedupe_key,
                r.lead_minutes,
                r.due_at.replace(tzinfo=None),
                r.occurrence_start.replace(tzinfo=None),
            )
            for r in rows
        }


def test_a_creates_reminders_are_those_a_full_replan_makes(any_app: EventsApp) -> None:
    app = any_app
    alice, bob, carol = (
        app.connect(f"rem{n}-{uuid.uuid4().hex[:6]}@example.com") for n in range(3)
    )
    # bob: his own lead times and channels; carol: a zone of her own (all-day reminders)
    answer = app.client.put(
        "/me/preferences",
        json={
            "reminder_minutes": [30, 1440],
            "channels": ["email", "webhook"],
            "webhook_url": "https://hooks.example.com/x",
        },
        headers=bob.headers,
    )
    assert answer.status_code == 200, answer.text
    with app.services.sessions.begin() as session:
        session.execute(
            sa.update(User).where(User.id == carol.id).values(timezone="Pacific/Auckland")
        )
    own = {"reminders": [120]}
    made = []
    for user in (alice, bob, carol):
        made += [
            app.create(user, body(app, "in an hour", 1)),
            app.create(user, body(app, "tomorrow", 26, **own)),
            app.create(user, body(app, "in ten days", 240)),
            app.create(
                user,
                body(
                    app,
                    "in ten days, a week's lead",
                    240,
                    reminders=[10080],
                ),
            ),
            app.create(user, body(app, "in 90 days", 90 * 24)),
            app.create(user, all_day(app, "all day tomorrow", 1)),
            app.create(user, body(app, "daily", 5, recurrence=["RRULE:FREQ=DAILY;COUNT=5"])),
            app.create(user, body(app, "ended", -3)),
        ]
    ids = [m["id"] for m in made]
    planned = pending(app, ids)
    # not vacuous: soon events of each user have reminders, far ones none
    assert {r[1] for r in planned} == {alice.id, bob.id, carol.id}
    assert not {r for r in planned if r[0] in {m["id"] for m in made if m["title"] == "in 90 days"}}
    with app.services.sessions.begin() as session:
        for event_id in ids:
            reschedule_reminders(session, uuid.UUID(event_id), now=app.clock())
    assert pending(app, ids) == planned


@pytest.fixture
def statements(any_app: EventsApp) -> Iterator[list[str]]:
    """The statements the app's engine sends, one string each, from now on."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(" ".join(str(args[2]).split()).lower())

    event.listen(any_app.services.engine, "before_cursor_execute", record)
    yield seen
    event.remove(any_app.services.engine, "before_cursor_execute", record)


def test_a_create_far_ahead_reads_nothing_for_its_reminders(
    any_app: EventsApp, statements: list[str]
) -> None:
    app = any_app
    users = [app.connect(f"far{n}-{uuid.uuid4().hex[:6]}@example.com") for n in range(2)]
    for user in users:
        statements.clear()
        app.create(user, body(app, "in 60 days", 60 * 24))
        for needless in (
            "from notification_deliveries",  # a new id has no pending reminder
            "from notification_preferences",  # nothing can be due within the horizon
            "select users.timezone",
        ):
            assert not [s for s in statements if needless in s], needless
        # the row is not read back (its insert returns it, decision HV3), nor for the
        # reminders
        reads = [s for s in statements if s.startswith("select") and "events.title" in s]
        assert reads == [], reads


def test_a_create_within_the_horizon_reads_only_the_preferences_once(
    any_app: EventsApp, statements: list[str]
) -> None:
    """The load's create (a timed single tomorrow, decision IF1): its reminders are
    planned from the row it inserted and one read of the owner's preferences."""
    app = any_app
    users = [app.connect(f"soon{n}-{uuid.uuid4().hex[:6]}@example.com") for n in range(3)]
    answer = app.client.put(  # the second user has a row of preferences, the others none
        "/me/preferences", json={"reminder_minutes": [15, 90]}, headers=users[1].headers
    )
    assert answer.status_code == 200, answer.text
    for user in users:
        statements.clear()
        made = app.create(user, body(app, "tomorrow", 26))
        preferences = [s for s in statements if "from notification_preferences" in s]
        assert len(preferences) == 1, preferences
        assert not [s for s in statements if "from notification_deliveries" in s]
        assert not [s for s in statements if "users.timezone" in s and "events" in s]
        reads = [s for s in statements if s.startswith("select") and "events.title" in s]
        assert reads == [], reads
        assert pending(app, [made["id"]])  # not vacuous: it has reminders


def payloads(app: EventsApp, ids: list[str]) -> dict[str, Any]:
    """The pending reminders of the events `ids` by dedupe key: due time and payload."""
    with app.services.sessions() as session:
        rows = session.execute(
            sa.select(
                NotificationDelivery.dedupe_key,
                NotificationDelivery.due_at,
                NotificationDelivery.payload,
            ).where(
                NotificationDelivery.event_id.in_([uuid.UUID(i) for i in ids]),
                NotificationDelivery.kind == "reminder",
                NotificationDelivery.status == "pending",
            )
        ).all()
        return {r.dedupe_key: (r.due_at.replace(tzinfo=None), r.payload) for r in rows}


def test_a_creates_reminders_say_what_a_full_replan_says(any_app: EventsApp) -> None:
    """Not only the same reminders as a replan (above) but the same payloads (review RY):
    an event with attendees, some of them users, planned on its create and then by the
    per-event planner, is reminded of with the same words either way, so a reminder
    does not depend on whether a replan ran before it was sent."""
    app = any_app
    users = [app.connect(f"say{n}-{uuid.uuid4().hex[:6]}@example.com") for n in range(3)]
    answer = app.client.put(  # the event's own reminders, two channels, quiet nights
        "/me/preferences",
        json={
            "reminder_minutes": None,
            "channels": ["email", "webhook"],
            "webhook_url": "https://hooks.example.com/say",
            "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Asia/Tokyo"},
        },
        headers=users[1].headers,
    )
    assert answer.status_code == 200, answer.text
    made = []
    for n, user in enumerate(users):
        others = [u.email for u in users if u is not user]
        people = [{"email": e} for e in [*others, f"guest{n}@example.com"]]
        made += [
            app.create(user, body(app, "with people", 5, attendees=people)),
            app.create(user, body(app, "alone", 7, location="Room 1", reminders=[30, 90])),
            app.create(user, body(app, "none", 3, reminders=[])),
            app.create(user, body(app, "long", 4, description="x" * 5000, timezone="Asia/Tokyo")),
            app.create(user, body(app, "under way", -0.5, reminders=[60])),
        ]
    ids = [m["id"] for m in made]
    planned = payloads(app, ids)
    assert len(planned) >= 6, planned  # not vacuous: every event has reminders
    with app.services.sessions.begin() as session:
        for event_id in ids:
            reschedule_reminders(session, uuid.UUID(event_id), now=app.clock())
    assert payloads(app, ids) == planned
