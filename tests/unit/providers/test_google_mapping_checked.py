"""`event_from_google` builds events without `Event`'s checks (`Event.trusted`), doing them
itself: it must give the same value, or the same kind of error, as building the event
through the checked constructors (`reference` below: the mapping as it was written before
the fast path), on resources as Google sends them and on ones it should not send."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.domain.models import (
    EMPTY_METADATA,
    Attendee,
    Event,
    EventStatus,
    EventTime,
    ResponseStatus,
)
from calsync.providers.google import mapping
from calsync.providers.google.mapping import (
    CALSYNC_CATEGORY_KEY,
    CALSYNC_ID_KEY,
    CALSYNC_META_PREFIX,
    event_from_google,
    event_to_google,
)
from calsync.providers.google.props import conference_from_google
from tests.strategies import events

_EPOCH = EventTime.on(date(1970, 1, 1))
_RESPONSES = frozenset(status.value for status in ResponseStatus)


def _time(value: Mapping[str, Any], calendar_timezone: str) -> EventTime:
    if value.get("date"):
        return EventTime.on(date.fromisoformat(value["date"]))
    if not value.get("dateTime"):
        raise ValueError("an EventDateTime needs date or dateTime")
    when = datetime.fromisoformat(value["dateTime"])
    return EventTime.at(when, value.get("timeZone") or calendar_timezone)


def _attendee(value: Mapping[str, Any]) -> Attendee:
    status = value.get("responseStatus", ResponseStatus.NEEDS_ACTION)
    return Attendee(
        email=value["email"],
        display_name=value.get("displayName") or None,
        response_status=ResponseStatus(status)
        if status in _RESPONSES
        else ResponseStatus.NEEDS_ACTION,
        optional=bool(value.get("optional", False)),
        organizer=bool(value.get("organizer", False)),
    )


def reference(resource: Mapping[str, Any], calendar_timezone: str) -> Event:
    """The mapping through the checked constructors (`Event(...)`, `EventTime.at/on`)."""
    if not isinstance(resource.get("id"), str):
        raise ValueError("a Google event resource needs an id")
    status = EventStatus(resource.get("status", EventStatus.CONFIRMED))
    original = resource.get("originalStartTime")
    original_start = _time(original, calendar_timezone) if original else None
    start_json, end_json = resource.get("start"), resource.get("end")
    if start_json and end_json:
        start = _time(start_json, calendar_timezone)
        end = _time(end_json, calendar_timezone)
    elif status == EventStatus.CANCELLED:
        start = original_start or _EPOCH
        end = start.shifted(timedelta(days=1)) if start.is_all_day else start
    else:
        raise ValueError("no start or end")
    properties = (resource.get("extendedProperties") or {}).get("private") or {}
    private = {str(k): str(v) for k, v in properties.items() if v is not None}
    organizer = resource.get("organizer") or {}
    return Event(
        title=resource.get("summary") or "",
        description=resource.get("description") or "",
        location=resource.get("location") or "",
        start=start,
        end=end,
        timezone=calendar_timezone if start.is_all_day else None,
        category=private.get(CALSYNC_CATEGORY_KEY),
        recurrence=tuple(resource.get("recurrence") or ()),
        # one attendee per email (the first): the store keeps one row per email
        attendees=tuple(
            {
                person.email: person
                for person in reversed(
                    [_attendee(a) for a in resource.get("attendees") or () if a.get("email")]
                )
            }.values()
        ),
        reminders=mapping._reminders(resource.get("reminders")),
        metadata={
            key.removeprefix(CALSYNC_META_PREFIX): value
            for key, value in private.items()
            if key.startswith(CALSYNC_META_PREFIX)
        }
        or EMPTY_METADATA,
        status=status,
        organizer_email=organizer.get("email"),
        recurring_event_id=resource.get("recurringEventId"),
        original_start=original_start,
        calsync_id=private.get(CALSYNC_ID_KEY),
        provider_event_id=resource["id"],
        etag=resource.get("etag"),
        sequence=int(resource.get("sequence", 0)),
        updated=datetime.fromisoformat(resource["updated"]) if resource.get("updated") else None,
        transparency=resource.get("transparency", "opaque"),
        visibility=resource.get("visibility", "default"),
        color_id=resource.get("colorId"),
        conference=conference_from_google(resource.get("conferenceData")),
    )


CALENDAR_ZONES = st.sampled_from(["UTC", "Europe/Berlin", "Asia/Kathmandu", "", "Mars/Olympus"])


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    """Resources as Google sends them, then bent in the ways a bad one could be."""
    event = draw(events())
    body = json.loads(json.dumps(event_to_google(event, calsync_id="c1")))
    resource: dict[str, Any] = {
        **body,
        "id": "abcde12345",
        "etag": '"1"',
        "updated": draw(st.sampled_from(["2024-01-01T00:00:00.000Z", "2024-01-01T00:00:00", ""])),
        "organizer": draw(
            st.sampled_from([{}, {"email": " Owner@Example.COM "}, {"displayName": "x"}])
        ),
    }
    for key in ("start", "end"):
        part = resource[key]
        if "dateTime" in part:
            how = draw(st.sampled_from(["as is", "no zone", "naive", "bad zone", "date"]))
            if how == "no zone":
                del part["timeZone"]
            elif how == "naive":
                part["dateTime"] = part["dateTime"][:19]
            elif how == "bad zone":
                part["timeZone"] = "Nowhere/Special"
            elif how == "date":
                resource[key] = {"date": part["dateTime"][:10]}
    if draw(st.booleans()):
        resource["recurrence"] = [f"  {line} " for line in resource.get("recurrence", [])]
    if draw(st.booleans()) and resource["attendees"]:
        resource["attendees"].append({**resource["attendees"][0], "displayName": "Twin"})
        resource["attendees"].append({"displayName": "no email"})
        resource["attendees"][0]["email"] = resource["attendees"][0]["email"].upper()
    if draw(st.booleans()):
        resource["status"] = draw(st.sampled_from(["cancelled", "tentative", "bogus"]))
        if resource["status"] == "cancelled" and draw(st.booleans()):
            del resource["start"], resource["end"]
            resource["recurringEventId"] = "series1"
            resource["originalStartTime"] = body["start"]
    return resource


def _outcome(build: Any, resource: dict[str, Any], zone: str) -> Event | type[Exception]:
    try:
        return build(copy.deepcopy(resource), zone)  # type: ignore[no-any-return]
    except (ValueError, TypeError, AttributeError) as err:
        return type(err)


@settings(max_examples=400, deadline=None)
@given(resource=resources(), zone=CALENDAR_ZONES)
def test_the_unchecked_build_equals_the_checked_one(resource: dict[str, Any], zone: str) -> None:
    fast, checked = _outcome(event_from_google, resource, zone), _outcome(reference, resource, zone)
    assert fast == checked
    if isinstance(fast, Event):
        # the fields are the normalised ones: running the checks again changes nothing
        assert dataclasses.replace(fast) == fast
        assert dataclasses.replace(fast.start) == fast.start
        assert dataclasses.replace(fast.end) == fast.end
        assert type(fast.metadata) is type(checked.metadata)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("start", "error"),
    [
        ({"dateTime": "0001-01-01T00:00:00+14:00", "timeZone": "UTC"}, ValueError),
        ({"dateTime": "2024-01-01T00:00:00", "timeZone": 5}, ValueError),
        ({"dateTime": "2024-01-01T25:00:00Z"}, ValueError),
        ({"date": "2024-13-01"}, ValueError),
    ],
)
def test_times_google_would_not_send_are_refused_alike(
    start: dict[str, Any], error: type[Exception]
) -> None:
    resource = {"id": "x1", "start": start, "end": start}
    with pytest.raises(error):
        event_from_google(resource, "UTC")
    with pytest.raises(error):
        reference(resource, "UTC")
