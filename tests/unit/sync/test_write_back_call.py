"""The push's decision table: which Google write brings Google to a stored event."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest

from calsync.domain.models import Event, EventStatus, EventTime
from calsync.store.events import StoredEvent
from calsync.sync.write_back_call import Operation, operation_for

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
SINGLE = Event(
    title="Planning",
    start=EventTime.at(datetime(2024, 5, 6, 9), "Europe/Berlin"),
    end=EventTime.at(datetime(2024, 5, 6, 10), "Europe/Berlin"),
)
INSTANCE = dataclasses.replace(
    SINGLE,
    recurring_event_id="series1",
    original_start=EventTime.at(datetime(2024, 5, 6, 7, tzinfo=UTC), "UTC"),
)
CANCELLED = EventStatus.CANCELLED


def stored(
    event: Event, *, etag: str | None, deleted: bool = False, **changes: object
) -> StoredEvent:
    return StoredEvent(
        id=uuid.uuid4(),
        calendar_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        event=dataclasses.replace(event, etag=etag, **changes),  # type: ignore[arg-type]
        sync_state="pending",
        sync_error=None,
        conflict=None,
        version=2,
        base=None,
        created_at=T0,
        updated_at=T0,
        deleted_at=T0 if deleted else None,
    )


@pytest.mark.parametrize(
    ("event", "etag", "deleted", "status", "operation"),
    [
        # a single event or a series master
        (SINGLE, None, False, None, Operation.INSERT),  # Google never acknowledged it
        (SINGLE, '"1"', False, None, Operation.UPDATE),
        (SINGLE, None, True, None, Operation.DELETE),  # may have reached Google: delete
        (SINGLE, '"1"', True, None, Operation.DELETE),
        # a cancelled single event is still patched (only a local delete deletes it)
        (SINGLE, '"1"', False, CANCELLED, Operation.UPDATE),
        (SINGLE, None, False, CANCELLED, Operation.INSERT),
        # an instance of a series is on Google with its series: never inserted
        (INSTANCE, None, False, None, Operation.UPDATE),
        (INSTANCE, '"1"', False, None, Operation.UPDATE),
        (INSTANCE, None, True, None, Operation.DELETE),
        (INSTANCE, '"1"', True, None, Operation.DELETE),
        # a cancelled instance is the delete of that instance
        (INSTANCE, None, False, CANCELLED, Operation.DELETE),
        (INSTANCE, '"1"', False, CANCELLED, Operation.DELETE),
    ],
)
def test_operation_for_each_stored_event(
    event: Event, etag: str | None, deleted: bool, status: EventStatus | None, operation: Operation
) -> None:
    changes = {} if status is None else {"status": status}
    assert operation_for(stored(event, etag=etag, deleted=deleted, **changes)) is operation


def test_each_operation_is_the_label_the_push_logs_and_counts() -> None:
    # the values are the sync log's message and the outbox metric's label
    assert {o.value for o in Operation} == {"insert", "update", "delete"}
