"""`instance_json` renders a generated instance from another instance's document exactly
as `event_json` renders it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from calsync.domain.models import Attendee, Event, EventTime, Metadata, Reminder, Reminders
from calsync.domain.recurrence import expand, instance_id
from calsync.events.views import EventView, event_json, instance_json
from calsync.store.events import StoredEvent


def master(start: EventTime, end: EventTime, rule: str) -> StoredEvent:
    now = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    event = Event(
        start=start,
        end=end,
        title="standup",
        description="daily",
        location="room 1",
        timezone=start.timezone,
        category="work",
        recurrence=(rule,),
        attendees=(Attendee(email="bob@example.com", display_name="Bob", optional=True),),
        reminders=Reminders(use_default=False, overrides=(Reminder(minutes=10),)),
        metadata=Metadata({"matter": "42"}),
        organizer_email="alice@example.com",
        provider_event_id="series1",
    )
    return StoredEvent(
        id=uuid.uuid4(),
        calendar_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        event=event,
        sync_state="pending",
        sync_error=None,
        conflict=None,
        version=3,
        base=None,
        created_at=now,
        updated_at=now + timedelta(hours=1),
        deleted_at=None,
    )


BERLIN = datetime(2031, 3, 27, 8, tzinfo=UTC)  # the last Thursday before summer time


@pytest.mark.parametrize(
    "stored",
    [
        master(
            EventTime(instant=BERLIN, timezone="Europe/Berlin"),
            EventTime(instant=BERLIN + timedelta(hours=1), timezone="America/New_York"),
            "RRULE:FREQ=DAILY;COUNT=6",
        ),
        master(
            EventTime.on(date(2031, 3, 27)), EventTime.on(date(2031, 3, 29)), "RRULE:FREQ=WEEKLY"
        ),
    ],
)
def test_instances_rendered_from_a_template_equal_their_own_documents(stored: StoredEvent) -> None:
    instances = expand(
        stored.event, datetime(2031, 3, 1, tzinfo=UTC), datetime(2031, 5, 1, tzinfo=UTC)
    )
    assert len(instances) >= 5
    views = [
        EventView(instance_id(str(stored.id), i.start), i, stored, series=stored) for i in instances
    ]
    template = event_json(views[0])
    for view in views[1:]:
        expected = event_json(view)
        assert instance_json(template, view) == expected
        assert list(instance_json(template, view)) == list(expected)  # the same key order


def test_a_master_shows_why_its_rule_is_not_expanded_and_others_show_null() -> None:
    start = EventTime(instant=BERLIN, timezone="Europe/Berlin")
    end = EventTime(instant=BERLIN + timedelta(hours=1), timezone="Europe/Berlin")
    hostile = master(start, end, "RRULE:FREQ=YEARLY;BYYEARDAY=366;BYMONTH=2")
    ordinary = master(start, end, "RRULE:FREQ=DAILY;COUNT=6")
    shown = event_json(EventView(str(hostile.id), hostile.event, hostile))
    assert "finds no instance within the work calsync allows" in shown["recurrence_error"]
    assert (
        event_json(EventView(str(ordinary.id), ordinary.event, ordinary))["recurrence_error"]
        is None
    )
    instance = expand(ordinary.event, BERLIN, BERLIN + timedelta(days=2))[1]
    view = EventView(instance_id(str(ordinary.id), instance.start), instance, ordinary, ordinary)
    assert event_json(view)["recurrence_error"] is None
