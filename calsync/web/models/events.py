"""Events: the bodies of ``/events`` (`EventCreate`, `EventUpdate`) and its answers
(`Event`, `EventPage`), with their parts (attendees, conferences, conflicts, the
properties of each event type).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import Field, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from calsync.domain.validation import (
    MAX_ATTENDEES,
    MAX_CATEGORY_LENGTH,
    MAX_DESCRIPTION_LENGTH,
    MAX_LOCATION_LENGTH,
    MAX_METADATA_ENTRIES,
    MAX_METADATA_VALUE_LENGTH,
    MAX_REMINDER_MINUTES,
    MAX_REMINDER_OVERRIDES,
    MAX_TITLE_LENGTH,
)
from calsync.events.changes_input import MAX_RECURRENCE_LINES
from calsync.web.models.base import Closed, Email, Moment, Open, Uuid, optional_text

_TIME_SCHEMA: Final = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
    ],
    "description": "YYYY-MM-DD for all-day events (end exclusive), else ISO 8601 date-time",
}
TimeText = Annotated[str, WithJsonSchema(_TIME_SCHEMA)]
EventTypeName = Literal[
    "default", "outOfOffice", "focusTime", "workingLocation", "birthday", "fromGmail"
]
DeclineMode = Literal[
    "declineNone", "declineAllConflictingInvitations", "declineOnlyNewConflictingInvitations"
]
PropertyText = Annotated[str, Field(max_length=1024)]


class AttendeeIn(Closed):
    """An attendee to invite (an email alone is also accepted)."""

    email: str
    display_name: str | None = None
    optional: bool = False


class OutOfOffice(Closed):
    auto_decline_mode: DeclineMode | SkipJsonSchema[None] = None
    decline_message: PropertyText | SkipJsonSchema[None] = None


class FocusTime(Closed):
    auto_decline_mode: DeclineMode | SkipJsonSchema[None] = None
    decline_message: PropertyText | SkipJsonSchema[None] = None
    chat_status: Literal["available", "doNotDisturb"] | SkipJsonSchema[None] = None


class CustomLocation(Closed):
    label: PropertyText | SkipJsonSchema[None] = None


class OfficeLocation(Closed):
    building_id: PropertyText | SkipJsonSchema[None] = None
    floor_id: PropertyText | SkipJsonSchema[None] = None
    floor_section_id: PropertyText | SkipJsonSchema[None] = None
    desk_id: PropertyText | SkipJsonSchema[None] = None
    label: PropertyText | SkipJsonSchema[None] = None


class WorkingLocation(Closed):
    type: Literal["homeOffice", "officeLocation", "customLocation"]
    custom_location: CustomLocation | SkipJsonSchema[None] = None
    office_location: OfficeLocation | SkipJsonSchema[None] = None


class ConferenceRequest(Closed):
    create: Literal["meet"]


class EventUpdate(Closed):
    """The writable fields of an event; on PUT and PATCH, fields left out keep their
    values and ``null`` clears a field."""

    title: str | None = optional_text(MAX_TITLE_LENGTH)
    description: str | None = optional_text(MAX_DESCRIPTION_LENGTH)
    location: str | None = optional_text(MAX_LOCATION_LENGTH)
    category: str | None = optional_text(MAX_CATEGORY_LENGTH)
    start_time: TimeText | SkipJsonSchema[None] = None
    end_time: TimeText | SkipJsonSchema[None] = None
    timezone: str | None = optional_text(
        description="IANA zone, such as Europe/Berlin (not localtime, posixrules, Factory)"
    )
    all_day: bool | SkipJsonSchema[None] = None
    calendar_id: Uuid | SkipJsonSchema[None] = None
    recurrence: list[str] | None = Field(
        default=None,
        max_length=MAX_RECURRENCE_LINES,
        description="RRULE, EXDATE and RDATE lines; their dates (UNTIL, RDATE, EXDATE) lie"
        " from 0002-01-01 to 9998-12-31 (leave UNTIL out for a series without end)",
    )
    attendees: list[Email | AttendeeIn] | None = Field(default=None, max_length=MAX_ATTENDEES)
    reminders: list[Annotated[int, Field(ge=0, le=MAX_REMINDER_MINUTES)]] | None = Field(
        default=None,
        max_length=MAX_REMINDER_OVERRIDES,
        description="minutes before the start; null = the calendar's default reminders",
    )
    metadata: dict[str, Annotated[str, Field(max_length=MAX_METADATA_VALUE_LENGTH)]] | None = Field(
        default=None, json_schema_extra={"maxProperties": MAX_METADATA_ENTRIES}
    )
    transparency: Literal["opaque", "transparent"] | None = Field(
        default=None,
        description="busy (opaque, the default) or free (transparent); null: the default",
    )
    visibility: Literal["default", "public", "private", "confidential"] | None = Field(
        default=None, description="Google's visibility; null: default (the calendar's)"
    )
    color_id: Literal["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"] | None = Field(
        default=None, description="Google's event colour id (colors.get, event palette)"
    )
    conference: ConferenceRequest | None = Field(
        default=None,
        description='{"create": "meet"} asks Google for a Meet link (no change when the'
        " event has a conference that did not fail); null removes the conference",
    )
    event_type: EventTypeName | SkipJsonSchema[None] = Field(
        default=None,
        description="Google's event type, set on create (default: default) and read-only"
        " after (a PUT may repeat it); calsync creates default and the status types"
        " (outOfOffice, focusTime, workingLocation: only on the user's primary calendar,"
        " without attendees); birthday and fromGmail come from Google",
    )
    out_of_office: OutOfOffice | None = Field(default=None, description="of outOfOffice")
    focus_time: FocusTime | None = Field(default=None, description="of focusTime")
    working_location: WorkingLocation | None = Field(default=None, description="of workingLocation")


class EventCreate(EventUpdate):
    """A new event or series: ``start_time`` and ``end_time`` are required."""

    start_time: TimeText
    end_time: TimeText


class AttendeeOut(Closed):
    email: str
    display_name: str | None
    response_status: Literal["needsAction", "declined", "tentative", "accepted"]
    optional: bool
    organizer: bool


class Conference(Closed):
    status: Literal["pending", "success", "failure"]
    uri: str | None = Field(description="the address to join by video, once created")
    solution: str | None = Field(description="Google's solution type, such as hangoutsMeet")


class ConflictChoice(Closed):
    field: str
    chosen: str = Field(description="local or remote")
    conflict: bool


class Conflict(Open):
    """A manual conflict waiting for the user: the policy, each field's choice, and both
    versions (calsync's stored form of an event)."""

    policy: str
    fields: list[ConflictChoice]
    local: dict[str, Any]
    remote: dict[str, Any]


class Birthday(Open):
    type: str | SkipJsonSchema[None] = None
    custom_type_name: str | SkipJsonSchema[None] = None
    contact: str | SkipJsonSchema[None] = None


class GoogleProperties(Open):
    """A type's properties as pulled from Google: any keys, none required."""


class Event(Closed):
    """One event, series master or instance as the API shows it."""

    id: str = Field(description="uuid, or <seriesId>_<instance> for instances")
    calendar_id: Uuid
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
    recurrence_error: str | None = Field(
        description="why the series is not expanded (a rule Google holds that calsync"
        " refuses, such as one over the work limit): it is shown as its master alone"
    )
    attendees: list[AttendeeOut]
    reminders: list[int] | None
    metadata: dict[str, str]
    status: Literal["confirmed", "tentative", "cancelled"]
    transparency: Literal["opaque", "transparent"]
    visibility: Literal["default", "public", "private", "confidential"]
    color_id: str | None
    conference: Conference | None
    organizer: str | None
    sync_state: Literal["synced", "pending", "conflict", "error"]
    sync_error: str | None
    conflict: Conflict | None
    etag: str
    google_event_id: str | None
    created_at: Moment
    updated_at: Moment
    event_type: str = Field(
        description="one of default, outOfOffice, focusTime, workingLocation, birthday,"
        " fromGmail, or a newer type Google added (read-only in calsync)"
    )
    out_of_office: GoogleProperties | SkipJsonSchema[None] = None
    focus_time: GoogleProperties | SkipJsonSchema[None] = None
    working_location: GoogleProperties | SkipJsonSchema[None] = None
    birthday: Birthday | SkipJsonSchema[None] = None


class EventPage(Closed):
    events: list[Event]
    next_cursor: str | None
