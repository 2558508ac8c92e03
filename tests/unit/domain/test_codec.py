"""The JSON form of events that base versions and conflict records are stored in."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from hypothesis import given, settings

from calsync.domain.codec import event_from_document, event_to_document
from calsync.domain.models import Event, EventTime
from tests.strategies import events


@settings(max_examples=200, deadline=None)
@given(event=events())
def test_every_field_survives_a_trip_through_json(event: Event) -> None:
    event = dataclasses.replace(
        event,
        organizer_email="Boss@Example.com",
        calsync_id="c1",
        provider_event_id="abc123",
        etag='"9"',
        sequence=3,
        updated=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    assert event_from_document(json.loads(json.dumps(event_to_document(event)))) == event


def test_an_exception_keeps_the_instance_it_replaces() -> None:
    original = EventTime.at(datetime(2026, 3, 29, 9), "Europe/Berlin")
    exception = Event(
        start=EventTime.at(datetime(2026, 3, 29, 11), "Europe/Berlin"),
        end=EventTime.at(datetime(2026, 3, 29, 12), "Europe/Berlin"),
        recurring_event_id="series1",
        original_start=original,
    )
    back = event_from_document(event_to_document(exception))
    assert back.original_start == original
    assert back.recurring_event_id == "series1"
