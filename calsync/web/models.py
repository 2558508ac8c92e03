"""The API's request and response bodies as pydantic models: the source of the OpenAPI
document's schemas (`component_schemas`), so the contract is written once, as types.

The models describe; they do not parse. Request bodies are still read by
`calsync.events.changes_input` and the routes' own readers, whose 422s name every bad field
with calsync's messages (docs/api.md), and answers are still rendered as dicts with
orjson (`calsync.web.json_body`), which is faster than building models per event
(docs/decisions.md M1, M2). Tests hold the two together: every answer schemathesis sees
must match its model, and `tests/integration/events/test_openapi.py` validates rendered
events against `Event`.

Conventions: request models are closed (``additionalProperties: false``: an unknown
field is a 422); response models list every key they always carry as required, and a key
that is sometimes absent is optional and not nullable (`SkipJsonSchema[None]`).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import GenerateJsonSchema, SkipJsonSchema, models_json_schema

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
from calsync.notify.preferences import MAX_LEAD_MINUTES, MAX_REMINDERS

__all__ = ["MODELS", "component_schemas"]

REF_TEMPLATE: Final = "#/components/schemas/{model}"


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


def _text(max_length: int | None = None, description: str | None = None) -> Any:
    return Field(default=None, max_length=max_length, description=description)


# -- errors --------------------------------------------------------------------------

Issue = Literal["invalid", "required", "unknown", "read_only", "forbidden", "reused"]


class FieldError(_Closed):
    """One problem of a request: the field (a body field, a query parameter or a header,
    as the client spelled it; ``keys.auth`` for a nested one) and what is wrong."""

    field: str = Field(description="the body field, query parameter or header at fault")
    issue: Issue = Field(
        description="invalid: a bad value; required: missing; unknown: no such field;"
        " read_only: set by calsync; forbidden: Google lets nobody change it;"
        " reused: an Idempotency-Key sent with another body"
    )
    message: str | SkipJsonSchema[None] = Field(default=None, description="what to fix")


class ErrorBody(_Closed):
    """What went wrong: a stable ``code`` (docs/api.md), words for people, and for a 422
    one entry per bad field (every one at once)."""

    code: str = Field(description="validation_failed, not_found, ... (docs/api.md)")
    message: str
    details: list[FieldError] = Field(description="every invalid field (422s); else empty")


class Error(_Closed):
    """Every error answer: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorBody


# -- events --------------------------------------------------------------------------

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
Email = Annotated[str, Field(json_schema_extra={"format": "email"})]
Uuid = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
Moment = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class AttendeeIn(_Closed):
    """An attendee to invite (an email alone is also accepted)."""

    email: str
    display_name: str | None = None
    optional: bool = False


class OutOfOffice(_Closed):
    auto_decline_mode: DeclineMode | SkipJsonSchema[None] = None
    decline_message: PropertyText | SkipJsonSchema[None] = None


class FocusTime(_Closed):
    auto_decline_mode: DeclineMode | SkipJsonSchema[None] = None
    decline_message: PropertyText | SkipJsonSchema[None] = None
    chat_status: Literal["available", "doNotDisturb"] | SkipJsonSchema[None] = None


class CustomLocation(_Closed):
    label: PropertyText | SkipJsonSchema[None] = None


class OfficeLocation(_Closed):
    building_id: PropertyText | SkipJsonSchema[None] = None
    floor_id: PropertyText | SkipJsonSchema[None] = None
    floor_section_id: PropertyText | SkipJsonSchema[None] = None
    desk_id: PropertyText | SkipJsonSchema[None] = None
    label: PropertyText | SkipJsonSchema[None] = None


class WorkingLocation(_Closed):
    type: Literal["homeOffice", "officeLocation", "customLocation"]
    custom_location: CustomLocation | SkipJsonSchema[None] = None
    office_location: OfficeLocation | SkipJsonSchema[None] = None


class ConferenceRequest(_Closed):
    create: Literal["meet"]


class EventUpdate(_Closed):
    """The writable fields of an event; on PUT and PATCH, fields left out keep their
    values and ``null`` clears a field."""

    title: str | None = _text(MAX_TITLE_LENGTH)
    description: str | None = _text(MAX_DESCRIPTION_LENGTH)
    location: str | None = _text(MAX_LOCATION_LENGTH)
    category: str | None = _text(MAX_CATEGORY_LENGTH)
    start_time: TimeText | SkipJsonSchema[None] = None
    end_time: TimeText | SkipJsonSchema[None] = None
    timezone: str | None = _text(
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


class AttendeeOut(_Closed):
    email: str
    display_name: str | None
    response_status: Literal["needsAction", "declined", "tentative", "accepted"]
    optional: bool
    organizer: bool


class Conference(_Closed):
    status: Literal["pending", "success", "failure"]
    uri: str | None = Field(description="the address to join by video, once created")
    solution: str | None = Field(description="Google's solution type, such as hangoutsMeet")


class ConflictChoice(_Closed):
    field: str
    chosen: str = Field(description="local or remote")
    conflict: bool


class Conflict(_Open):
    """A manual conflict waiting for the user: the policy, each field's choice, and both
    versions (calsync's stored form of an event)."""

    policy: str
    fields: list[ConflictChoice]
    local: dict[str, Any]
    remote: dict[str, Any]


class Birthday(_Open):
    type: str | SkipJsonSchema[None] = None
    custom_type_name: str | SkipJsonSchema[None] = None
    contact: str | SkipJsonSchema[None] = None


class GoogleProperties(_Open):
    """A type's properties as pulled from Google: any keys, none required."""


class Event(_Closed):
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


class EventPage(_Closed):
    events: list[Event]
    next_cursor: str | None


# -- calendars -----------------------------------------------------------------------

ConflictPolicyName = Literal["last_updated_wins", "remote_wins", "local_wins", "manual"]


class CalendarSync(_Closed):
    last_synced_at: str | None
    status: str | None
    dirty: bool
    poll_only: bool


class Calendar(_Closed):
    """One of the caller's calendars, from Google's calendar list."""

    id: Uuid
    google_calendar_id: str
    summary: str
    timezone: str
    access_role: Literal["owner", "writer", "reader", "freeBusyReader"]
    writable: bool
    primary: bool
    selected: bool
    conflict_policy: ConflictPolicyName | None
    sync: CalendarSync


class CalendarList(_Closed):
    calendars: list[Calendar]


class CalendarUpdate(_Closed):
    conflict_policy: ConflictPolicyName | None = Field(
        default=None, description="null: the installation's default"
    )


# -- users and admin -----------------------------------------------------------------


class User(_Closed):
    """A user as ``GET /me``, sign-in and the admin routes show them."""

    id: Uuid
    email: str
    display_name: str | None
    role: Literal["admin", "user"]
    status: Literal["active", "needs_reauth", "disabled"]
    timezone: str
    calendar_access: bool | SkipJsonSchema[None] = Field(
        default=None,
        description="GET /me and sign-in only: the stored Google tokens grant calendar"
        " access (false: not connected)",
    )


class UserUpdate(_Closed):
    """At least one of ``role`` and ``status``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    role: Literal["admin", "user"] | SkipJsonSchema[None] = None
    status: Literal["active", "disabled"] | SkipJsonSchema[None] = None


class UserPage(_Closed):
    users: list[User]
    next_cursor: str | None


class AuditEntry(_Closed):
    id: Uuid
    occurred_at: Moment
    action: str = Field(description="one of the actions the action filter takes")
    actor_id: str | None
    subject_id: str | None
    remote_addr: str | None
    details: dict[str, Any] = Field(description="what the action changed, by action")
    count: int = Field(description="repeats folded into this entry")


class AuditPage(_Closed):
    events: list[AuditEntry]
    next_cursor: str | None


class SignedIn(_Open):
    """The sign-in answer: calsync's JWT and the user."""

    token: str
    user: User


class SignedInWithoutCalendar(_Closed):
    """403 calendar_access_not_granted: signed in, but not connected to the calendar."""

    error: ErrorBody
    token: str
    user: User


# -- notices -------------------------------------------------------------------------

ClockTime = Annotated[str, Field(pattern="^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Channel = Literal["email", "push", "webhook"]


class QuietHours(_Closed):
    start: ClockTime
    end: ClockTime
    timezone: str | None = None


class Preferences(_Closed):
    """The caller's notice preferences; the webhook secret is shown to its owner only."""

    reminder_minutes: list[int] | None = Field(description="null: the events' own reminders")
    channels: list[Channel]
    webhook_url: str | None
    webhook_secret: str | None
    change_notices: bool
    quiet_hours: QuietHours | None


class PreferencesUpdate(_Closed):
    """Fields left out keep their values."""

    reminder_minutes: list[Annotated[int, Field(ge=0, le=MAX_LEAD_MINUTES)]] | None = Field(
        default=None, max_length=MAX_REMINDERS
    )
    channels: (
        Annotated[list[Channel], Field(json_schema_extra={"uniqueItems": True})]
        | (SkipJsonSchema[None])
    ) = None
    webhook_url: Annotated[str, Field(json_schema_extra={"format": "uri"})] | None = None
    change_notices: bool | SkipJsonSchema[None] = None
    quiet_hours: QuietHours | None = None


class PushKeys(_Closed):
    p256dh: str = Field(description="uncompressed P-256 key")
    auth: str = Field(description="16-byte secret")


class PushSubscription(_Closed):
    """A browser's ``PushSubscription.toJSON()``."""

    endpoint: Annotated[str, Field(json_schema_extra={"format": "uri"})]
    keys: PushKeys
    expirationTime: float | None = None  # noqa: N815 - the browser's spelling


class PushSubscriptionSaved(_Closed):
    id: Uuid
    endpoint: str


class Notice(_Closed):
    """One delivery record: a reminder or change notice on one channel."""

    id: Uuid
    kind: Literal["reminder", "change"]
    channel: Channel
    status: Literal["pending", "sent", "failed", "skipped"]
    reason: str | None
    event_id: str | None
    title: str | None
    occurrence_start: str | None
    lead_minutes: int | None
    change: str | None
    changed: list[str] | None
    due_at: Moment
    sent_at: str | None
    attempts: int
    created_at: Moment


class NoticePage(_Closed):
    notices: list[Notice]
    next_cursor: str | None


# -- sync ----------------------------------------------------------------------------


class SyncQueued(_Closed):
    """The pulls ``POST /sync`` queued, and those already queued or running."""

    queued: list[Uuid]
    already_queued: list[Uuid]


class SyncLog(_Closed):
    id: Uuid
    user_id: Uuid
    calendar_id: str | None
    event_id: str | None
    kind: Literal["pull", "full_sync", "push", "conflict", "auth", "channel", "calendars", "audit"]
    status: Literal["ok", "error", "retry", "resolved", "manual", "held"]
    time: Moment
    pulled: int
    changed: int
    conflicts: int
    api_calls: int
    duration_ms: int
    message: str | None
    details: dict[str, Any] | None


class SyncLogPage(_Closed):
    logs: list[SyncLog]
    next_cursor: str | None


# -- operations ----------------------------------------------------------------------


class Health(_Closed):
    status: Literal["ok"]


class Readiness(_Closed):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(description="each dependency: ok, or what is wrong")


class OpenAPIDocument(_Open):
    """This document."""

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


#: Every model whose schema the document holds, by component name.
MODELS: Final[tuple[type[BaseModel], ...]] = (
    Error,
    Event,
    EventCreate,
    EventUpdate,
    EventPage,
    Calendar,
    CalendarList,
    CalendarUpdate,
    User,
    UserUpdate,
    UserPage,
    AuditPage,
    SignedIn,
    SignedInWithoutCalendar,
    Preferences,
    PreferencesUpdate,
    PushSubscription,
    PushSubscriptionSaved,
    NoticePage,
    SyncQueued,
    SyncLogPage,
    Health,
    Readiness,
    OpenAPIDocument,
)


class _Generator(GenerateJsonSchema):
    """Pydantic's generator without a title per field (the property name says it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def component_schemas(models: tuple[type[BaseModel], ...] = MODELS) -> dict[str, Any]:
    """``components.schemas`` of the document: each model and the models it uses, by
    class name, referenced as ``#/components/schemas/<Name>``."""
    _, top = models_json_schema(
        [(model, "serialization" if model.__name__ in _OUT else "validation") for model in models],
        ref_template=REF_TEMPLATE,
        schema_generator=_Generator,
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    _drop_null_defaults(schemas)
    return schemas


def _drop_null_defaults(node: Any) -> None:
    """Remove ``"default": null``: pydantic writes it for every optional field, but a
    field left out of a PUT keeps its value (it does not become null), and in answers
    an optional key is absent, never null."""
    if isinstance(node, dict):
        if "default" in node and node["default"] is None:
            del node["default"]
        for value in node.values():
            _drop_null_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _drop_null_defaults(value)


#: Models that describe answers (their serialization schema: what is sent).
_OUT: Final = frozenset(
    {
        "Error",
        "Event",
        "EventPage",
        "Calendar",
        "CalendarList",
        "User",
        "UserPage",
        "AuditPage",
        "SignedIn",
        "SignedInWithoutCalendar",
        "Preferences",
        "PushSubscriptionSaved",
        "NoticePage",
        "SyncQueued",
        "SyncLogPage",
        "Health",
        "Readiness",
        "OpenAPIDocument",
    }
)
