"""Google's texts are made storable at the mapping edge, a malformed resource is a
`ValueError` whatever is wrong with it, and a patch never sends back what calsync had to
clean (decisions H1)."""

from __future__ import annotations

import copy
import dataclasses
import logging
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.domain.models import Attendee, Event
from calsync.providers.google import calendar_calls, event_listing, mapping
from calsync.providers.google.mapping import MARK, event_from_google, event_to_google
from calsync.providers.google.mapping import storable_text as storable
from calsync.store.tables import Calendar, EventAttendee
from calsync.store.tables import Event as EventRow

EVENT: dict[str, Any] = {
    "id": "abcde12345",
    "etag": '"1"',
    "summary": "Review",
    "description": "Bring the draft",
    "location": "Room 4",
    "start": {"dateTime": "2031-03-05T09:00:00Z", "timeZone": "UTC"},
    "end": {"dateTime": "2031-03-05T10:00:00Z", "timeZone": "UTC"},
    "attendees": [{"email": "guest@example.org", "displayName": "Guest"}],
    "extendedProperties": {"private": {"calsync_category": "work", "calsync_meta_matter": "7"}},
}


def resource(**changes: Any) -> dict[str, Any]:
    return copy.deepcopy(EVENT) | changes


@pytest.mark.parametrize(
    ("text", "made"),
    [
        ("plain", "plain"),
        ("a\x00b\x00", f"a{MARK}b{MARK}"),
        ("high \ud800 surrogate", f"high {MARK} surrogate"),
        ("low \udfff surrogate", f"low {MARK} surrogate"),
        ("reversed pair \ude00\ud83d", f"reversed pair {MARK}{MARK}"),
        ("astral \U0001f600 and a pair that json.loads joined", None),
        ("non\uffff\ufffecharacters \u202ebidi\u202c e\u0301 \u05e9\u05dc\u05d5\u05dd\r\n", None),
        ("\x01\x1f\x7f other controls are storable", None),
    ],
)
def test_a_text_is_made_storable_and_only_what_cannot_be_stored_changes(
    text: str, made: str | None
) -> None:
    assert storable(text) == (text if made is None else made)


def test_a_long_text_is_cut_to_its_limit_ending_in_the_mark() -> None:
    assert storable("x" * 10, 10) == "x" * 10
    assert storable("x" * 11, 10) == "x" * 9 + MARK
    assert storable("\x00" * 70_000, 1024) == MARK * 1024


def test_a_text_that_is_not_a_string_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        storable(5)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(text=st.text(), limit=st.none() | st.integers(min_value=1, max_value=50))
def test_any_text_comes_out_utf8_within_its_limit_and_stays_so(
    text: str, limit: int | None
) -> None:
    made = storable(text, limit)
    made.encode("utf-8")  # no lone surrogate
    assert "\x00" not in made
    assert limit is None or len(made) <= limit
    assert storable(made, limit) == made
    assert len(made) <= len(text)


def test_the_limits_are_the_lengths_of_the_columns() -> None:
    def length(column: Any) -> int:
        return int(column.type.length)

    events, people = EventRow.__table__.c, EventAttendee.__table__.c
    assert length(events.title) == mapping.TITLE_LIMIT
    assert length(events.location) == mapping.LOCATION_LIMIT
    assert length(events.category) == mapping.CATEGORY_LIMIT
    assert mapping.EMAIL_LIMIT == length(events.organizer_email) == length(people.email)
    assert length(people.display_name) == mapping.DISPLAY_NAME_LIMIT
    assert mapping.ID_LIMIT == length(events.google_event_id) == length(events.recurring_event_id)
    assert length(events.etag) == mapping.ETAG_LIMIT
    assert length(Calendar.__table__.c.summary) == calendar_calls.CALENDAR_SUMMARY_LIMIT
    assert isinstance(events.description.type, sa.Text)


def test_every_text_of_an_event_is_made_storable() -> None:
    bad = "x\x00\ud800"
    event = event_from_google(
        resource(
            summary=bad + "t" * 2000,
            description=bad + "d" * 100_000,
            location=bad,
            organizer={"email": " Boss\x00@Example.com "},
            attendees=[
                {"email": "A\x00@Example.com", "displayName": bad + "n" * 300},
                {"email": "İ" * 320 + "@example.com"},  # lower case is longer
            ],
            extendedProperties={
                "private": {
                    "calsync_category": bad + "c" * 100,
                    "calsync_meta_" + bad: bad,
                    "calsync_id": bad,
                }
            },
        ),
        "UTC",
    )
    clean = f"x{MARK}{MARK}"
    assert event.title == clean + "t" * (1024 - 4) + MARK
    assert event.description == clean + "d" * 100_000
    assert event.location == clean
    assert event.organizer_email == f"boss{MARK}@example.com"
    first, second = event.attendees
    assert first == Attendee(email=f"a{MARK}@example.com", display_name=clean + "n" * 196 + MARK)
    assert len(second.email) == 320
    assert second.email.endswith(MARK)
    assert event.category == clean + "c" * 60 + MARK
    assert dict(event.metadata) == {clean: clean}
    assert event.calsync_id == clean


def test_attendees_with_the_same_email_once_made_storable_are_kept_once() -> None:
    event = event_from_google(
        resource(
            attendees=[
                {"email": "a\x00@example.com", "displayName": "first"},
                {"email": "A\ud800@example.com", "displayName": "second"},
                {"email": "b@example.com"},
            ]
        ),
        "UTC",
    )
    assert [(a.email, a.display_name) for a in event.attendees] == [
        (f"a{MARK}@example.com", "first"),
        ("b@example.com", None),
    ]


def test_recurrence_lines_are_storable_and_come_back_as_the_same_lines() -> None:
    event = event_from_google(
        resource(recurrence=["  RRULE:FREQ=DAILY\r\nRRULE:FREQ=HOURLY ", "   ", "EXDATE:\x00"]),
        "UTC",
    )
    # the store joins the lines with line breaks: one inside a line would split it
    assert event.recurrence == (f"RRULE:FREQ=DAILY\r{MARK}RRULE:FREQ=HOURLY", f"EXDATE:{MARK}")


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"id": "abc\x00de"}, id="nul-in-id"),
        pytest.param({"id": "a" * 1025}, id="id-too-long"),
        pytest.param({"id": 12345}, id="id-a-number"),
        pytest.param({"recurringEventId": "\ud800"}, id="surrogate-in-series-id"),
        pytest.param({"etag": '"' + "1" * 200 + '"'}, id="etag-too-long"),
        pytest.param({"summary": 5}, id="summary-a-number"),
        pytest.param({"description": ["a"]}, id="description-a-list"),
        pytest.param({"attendees": "a@example.com"}, id="attendees-a-string"),
        pytest.param({"attendees": [5]}, id="attendee-a-number"),
        pytest.param({"attendees": [{"email": 5}]}, id="email-a-number"),
        pytest.param({"recurrence": "RRULE:FREQ=DAILY"}, id="recurrence-a-string"),
        pytest.param({"recurrence": [None]}, id="recurrence-line-null"),
        pytest.param({"extendedProperties": ["private"]}, id="properties-a-list"),
        pytest.param({"reminders": {"overrides": [{"minutes": "soon"}]}}, id="minutes-a-word"),
        pytest.param({"sequence": "first"}, id="sequence-a-word"),
        pytest.param({"start": {"dateTime": "2031-03-05T09:00:00Z", "timeZone": "Nowhere/X"}}),
        pytest.param({"start": "2031-03-05"}, id="start-a-string"),
        pytest.param(
            {"status": "cancelled", "start": None, "originalStartTime": {"date": "9999-12-31"}},
            id="cancelled-on-the-last-day",
        ),
        pytest.param(
            {
                "start": {"dateTime": "0001-01-01T00:00:00+14:00"},
                "end": {"dateTime": "0001-01-01T01:00:00Z"},
            },
            id="before-year-1",
        ),
    ],
)
def test_a_malformed_resource_is_a_value_error(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - ValidationError is one too
        event_from_google(resource(**changes), "UTC")


def test_a_listing_leaves_out_and_logs_each_resource_it_cannot_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = [5, resource(id="bad\x00id"), resource(summary=["x"]), resource(id="good12345")]
    with caplog.at_level(logging.WARNING, logger=event_listing.__name__):
        found, unreadable = event_listing.mapped_events(items, "UTC", "cal@example.com")
    assert [e.provider_event_id for e in found] == ["good12345"]
    skipped = [r for r in caplog.records if r.message.startswith("skipping a Google event")]
    assert [getattr(r, "event_id", None) for r in skipped] == [None, "bad\x00id", "abcde12345"]
    # and the listing names them, storably, for the sync log
    assert unreadable == ["", "bad\ufffdid", "abcde12345"]


# --- patches never send back what calsync cleaned -----------------------------------------

CLEANED = event_from_google(
    resource(
        summary="title\x00",
        description="notes\ud800",
        location="x" * 2000,
        attendees=[{"email": "guest@example.org", "displayName": "Gu\x00est"}],
        extendedProperties={
            "private": {
                "calsync_category": "c\x00",
                "calsync_meta_matter": "7\x00",
                "calsync_meta_k\x00": "v",
                "calsync_meta_plain": "p",
            }
        },
    ),
    "UTC",
)


def test_a_patch_leaves_out_each_cleaned_text_the_event_did_not_change() -> None:
    event = dataclasses.replace(CLEANED, start=CLEANED.start.shifted(CLEANED.duration))
    event = dataclasses.replace(event, end=event.start.shifted(CLEANED.duration))
    body = event_to_google(event, calsync_id="c1", previous=CLEANED)
    assert not {"summary", "description", "location", "attendees"} & set(body)
    assert body["extendedProperties"]["private"] == {
        "calsync_id": "c1",
        "calsync_meta_plain": "p",  # not cleaned: sent as always
    }
    assert body["start"]["dateTime"] == "2031-03-05T10:00:00+00:00"


def test_a_patch_sends_a_cleaned_text_the_event_changed() -> None:
    event = dataclasses.replace(
        CLEANED,
        title=CLEANED.title + "!",
        attendees=(*CLEANED.attendees, Attendee(email="new@example.org")),
        metadata={**CLEANED.metadata, "matter": f"8{MARK}"},
        category=None,
    )
    body = event_to_google(event, calsync_id="c1", previous=CLEANED)
    assert body["summary"] == f"title{MARK}!"
    assert [a["email"] for a in body["attendees"]] == ["guest@example.org", "new@example.org"]
    assert body["extendedProperties"]["private"] == {
        "calsync_id": "c1",
        "calsync_category": None,
        "calsync_meta_matter": f"8{MARK}",
        "calsync_meta_plain": "p",
    }
    assert "description" not in body


def test_an_insert_and_a_patch_of_clean_texts_send_everything() -> None:
    inserted = event_to_google(CLEANED, calsync_id="c1")
    assert inserted["summary"] == f"title{MARK}"
    assert inserted["extendedProperties"]["private"]["calsync_meta_k" + MARK] == "v"
    plain = event_from_google(resource(), "UTC")
    patch = event_to_google(plain, calsync_id="c1", previous=plain)
    assert (patch["summary"], patch["description"], patch["location"]) == (
        "Review",
        "Bring the draft",
        "Room 4",
    )
    assert patch["attendees"] == [
        {"email": "guest@example.org", "responseStatus": "needsAction", "displayName": "Guest"}
    ]


def test_an_unchanged_cleaned_recurrence_is_left_out_of_a_patch() -> None:
    series = event_from_google(resource(recurrence=["RRULE:FREQ=DAILY", "EXDATE:\x00"]), "UTC")
    assert "recurrence" not in event_to_google(series, calsync_id="c1", previous=series)
    shorter = dataclasses.replace(series, recurrence=series.recurrence[:1])
    body = event_to_google(shorter, calsync_id="c1", previous=series)
    assert body["recurrence"] == ["RRULE:FREQ=DAILY"]


def test_every_event_value_the_mapping_makes_is_a_valid_event() -> None:
    """`Event.trusted` skips the checks: the cleaned value must pass them unchanged."""
    assert dataclasses.replace(CLEANED) == CLEANED
    assert isinstance(CLEANED, Event)
