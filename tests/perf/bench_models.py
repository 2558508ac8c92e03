"""pydantic v2 against msgspec on the create and list paths (issue 18 item 9, decision M1).

Run: ``.venv/bin/python -m tests.perf.bench_models [--repeat 7]``

msgspec is not a dependency of calsync: install it in the venv to compare
(``pip install msgspec==0.22.0``); without it only pydantic and today's code are timed.
No database, no network: CPU per call (``time.process_time``, the best of `--repeat`
rounds of many calls), in microseconds.

- create: one realistic ``POST /events`` body (attendees, reminders, recurrence,
  metadata) from JSON bytes to checked fields: today's ``json.loads`` + `read_changes`,
  pydantic ``EventCreate.model_validate_json``, msgspec ``json.decode(type=...)``;
- list: a page of 200 rendered events (dicts, as `event_json` makes them) to the
  answer's bytes: today's orjson per item + `list_body`; through models (validate, then
  dump: what answering with models would add); msgspec the same; msgspec's plain encoder.

A request costs several milliseconds (docs/benchmarks.md), so a difference of a few
microseconds per create or of well under a millisecond per page does not matter.
"""

# No `from __future__ import annotations`: msgspec reads the local Structs' annotations.
import argparse
import json
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

import orjson
from pydantic import TypeAdapter

from calsync.events.changes_input import read_changes
from calsync.web.json_body import list_body
from calsync.web.models import Event, EventCreate

CREATE: dict[str, Any] = {
    "title": "Weekly planning",
    "description": "Agenda: " + "roadmap, hiring, budget. " * 8,
    "location": "Room 4.12, Building B",
    "start_time": "2031-03-04T10:00:00",
    "end_time": "2031-03-04T11:00:00",
    "timezone": "Europe/Berlin",
    "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=40", "EXDATE:20310318T090000Z"],
    "attendees": [
        "bob@example.com",
        {"email": "carol@example.com", "display_name": "Carol", "optional": True},
        {"email": "dave@example.com", "display_name": "Dave"},
        "erin@example.com",
    ],
    "reminders": [10, 60],
    "metadata": {"project": "apollo", "owner": "team-a"},
    "transparency": "opaque",
    "visibility": "default",
}


def rendered_event(i: int) -> dict[str, Any]:
    """One item of a page as `event_json` renders it (a series instance with guests)."""
    day = 1 + i % 28
    return {
        "id": f"8f0c5e0e-3f7b-4c59-9a53-0a6f8d6c{i:04d}_203103{day:02d}T090000Z",
        "calendar_id": "5b1f7d2e-1111-4c59-9a53-0a6f8d6c0001",
        "series_id": "8f0c5e0e-3f7b-4c59-9a53-0a6f8d6c0000",
        "original_start_time": f"2031-03-{day:02d}T10:00:00+01:00",
        "title": f"Weekly planning {i}",
        "description": "Agenda: roadmap, hiring, budget.",
        "location": "Room 4.12",
        "category": "work",
        "start_time": f"2031-03-{day:02d}T10:00:00+01:00",
        "end_time": f"2031-03-{day:02d}T11:00:00+01:00",
        "timezone": "Europe/Berlin",
        "all_day": False,
        "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=40"],
        "recurrence_error": None,
        "attendees": [
            {
                "email": f"guest{n}@example.com",
                "display_name": f"Guest {n}",
                "response_status": "accepted",
                "optional": False,
                "organizer": n == 0,
            }
            for n in range(4)
        ],
        "reminders": [10, 60],
        "metadata": {"project": "apollo"},
        "status": "confirmed",
        "transparency": "opaque",
        "visibility": "default",
        "color_id": None,
        "conference": None,
        "organizer": "guest0@example.com",
        "sync_state": "synced",
        "sync_error": None,
        "conflict": None,
        "etag": f'"{i}-3"',
        "google_event_id": f"abc{i}_20310304T090000Z",
        "created_at": "2031-03-01T08:00:00+00:00",
        "updated_at": "2031-03-01T08:00:00+00:00",
        "event_type": "default",
    }


def per_call(fn: Callable[[], object], calls: int, repeat: int) -> float:
    """Microseconds of CPU per call of `fn`: the best of `repeat` rounds of `calls`."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for _ in range(calls):
            fn()
        best = min(best, time.process_time() - started)
    return best / calls * 1e6


def msgspec_types() -> tuple[Any, Any] | None:
    """msgspec types equal to `EventCreate` and a list of `Event` (their constraints
    included), or None when msgspec is not installed."""
    try:
        import msgspec
    except ImportError:
        return None
    from msgspec import Meta, Struct

    Text = Annotated[str, Meta(max_length=1024)]  # noqa: N806 - a type alias
    Minutes = Annotated[int, Meta(ge=0, le=40320)]  # noqa: N806 - a type alias

    class AttendeeIn(Struct, forbid_unknown_fields=True):
        email: str
        display_name: str | None = None
        optional: bool = False

    class CreateStruct(Struct, forbid_unknown_fields=True):
        start_time: str
        end_time: str
        title: Text | None = None
        description: Annotated[str, Meta(max_length=8192)] | None = None
        location: Text | None = None
        category: Annotated[str, Meta(max_length=64)] | None = None
        timezone: str | None = None
        all_day: bool | None = None
        calendar_id: str | None = None
        recurrence: Annotated[list[str], Meta(max_length=20)] | None = None
        attendees: Annotated[list[str | AttendeeIn], Meta(max_length=200)] | None = None
        reminders: Annotated[list[Minutes], Meta(max_length=5)] | None = None
        metadata: dict[str, Text] | None = None
        transparency: Literal["opaque", "transparent"] | None = None
        visibility: Literal["default", "public", "private", "confidential"] | None = None

    class AttendeeOut(Struct, forbid_unknown_fields=True):
        email: str
        display_name: str | None
        response_status: Literal["needsAction", "declined", "tentative", "accepted"]
        optional: bool
        organizer: bool

    class EventStruct(Struct, forbid_unknown_fields=True):
        id: str
        calendar_id: str
        series_id: str | None
        original_start_time: str | None
        title: str
        description: str
        location: str
        category: str | None
        start_time: str
        end_time: str
        timezone: str | None
        all_day: bool
        recurrence: list[str]
        recurrence_error: str | None
        attendees: list[AttendeeOut]
        reminders: list[int] | None
        metadata: dict[str, str]
        status: Literal["confirmed", "tentative", "cancelled"]
        transparency: Literal["opaque", "transparent"]
        visibility: Literal["default", "public", "private", "confidential"]
        color_id: str | None
        conference: dict[str, Any] | None
        organizer: str | None
        sync_state: Literal["synced", "pending", "conflict", "error"]
        sync_error: str | None
        conflict: dict[str, Any] | None
        etag: str
        google_event_id: str | None
        created_at: str
        updated_at: str
        event_type: str

    del msgspec
    return CreateStruct, list[EventStruct]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    repeat: int = args.repeat
    raw = json.dumps(CREATE).encode()
    page = [rendered_event(i) for i in range(200)]
    EventCreate.model_validate_json(raw)  # the bodies fit the models (and warm them up)
    events = TypeAdapter(list[Event])
    events.validate_python(page)

    figures: dict[str, float] = {
        "create: json.loads + read_changes (today)": per_call(
            lambda: read_changes(json.loads(raw), require_times=True), 2000, repeat
        ),
        "create: pydantic model_validate_json": per_call(
            lambda: EventCreate.model_validate_json(raw), 2000, repeat
        ),
        "list 200: orjson per item + list_body (today)": per_call(
            lambda: list_body([orjson.dumps(e) for e in page], None), 50, repeat
        ),
        "list 200: orjson of the whole document": per_call(
            lambda: orjson.dumps({"events": page, "next_cursor": None}), 50, repeat
        ),
        "list 200: pydantic validate + dump_json": per_call(
            lambda: events.dump_json(events.validate_python(page)), 20, repeat
        ),
    }
    found = msgspec_types()
    if found is not None:
        import msgspec

        create_struct, page_type = found
        msgspec.json.decode(raw, type=create_struct)
        encoder = msgspec.json.Encoder()
        msgspec.convert(page, page_type)
        figures |= {
            "create: msgspec json.decode(type=...)": per_call(
                lambda: msgspec.json.decode(raw, type=create_struct), 2000, repeat
            ),
            "list 200: msgspec convert + encode": per_call(
                lambda: encoder.encode(msgspec.convert(page, page_type)), 20, repeat
            ),
            "list 200: msgspec encode of the dicts": per_call(
                lambda: encoder.encode({"events": page, "next_cursor": None}), 50, repeat
            ),
        }
    else:
        print("msgspec is not installed: pip install msgspec==0.22.0 to compare")
    for name, micros in figures.items():
        print(f"{name:50} {micros:10.1f} us/call")


if __name__ == "__main__":
    main()
