"""The API's request and response bodies as pydantic models: the source of the OpenAPI
document's schemas (`component_schemas`), so the contract is written once, as types.

The models describe; they do not parse. Request bodies are still read by
`calsync.events.changes_input` and the routes' own readers, whose 422s name every bad field
with calsync's messages (docs/api.md), and answers are still rendered as dicts with
orjson (`calsync.web.json_body`), which is faster than building models per event
(docs/decisions.md M1, M2). Tests hold the two together: every answer schemathesis sees
must match its model, and `tests/integration/events/test_openapi.py` validates rendered
events against `Event`.

One module per resource (`events`, `calendars`, `accounts`, `notices`, `sync`,
`operations`), with `errors` and `base` (what they share); `schemas` renders them.
Import the models from here.

Conventions: request models are closed (``additionalProperties: false``: an unknown
field is a 422); response models list every key they always carry as required, and a key
that is sometimes absent is optional and not nullable (`SkipJsonSchema[None]`).
"""

from __future__ import annotations

from calsync.web.models.accounts import (
    AuditPage,
    SignedIn,
    SignedInWithoutCalendar,
    User,
    UserPage,
    UserUpdate,
)
from calsync.web.models.calendars import Calendar, CalendarList, CalendarUpdate
from calsync.web.models.errors import Error
from calsync.web.models.events import Event, EventCreate, EventPage, EventUpdate
from calsync.web.models.notices import (
    NoticePage,
    Preferences,
    PreferencesUpdate,
    PushSubscription,
    PushSubscriptionSaved,
)
from calsync.web.models.operations import Health, OpenAPIDocument, Readiness
from calsync.web.models.schemas import MODELS, REF_TEMPLATE, component_schemas
from calsync.web.models.sync import SyncLogPage, SyncQueued

__all__ = [
    "MODELS",
    "REF_TEMPLATE",
    "AuditPage",
    "Calendar",
    "CalendarList",
    "CalendarUpdate",
    "Error",
    "Event",
    "EventCreate",
    "EventPage",
    "EventUpdate",
    "Health",
    "NoticePage",
    "OpenAPIDocument",
    "Preferences",
    "PreferencesUpdate",
    "PushSubscription",
    "PushSubscriptionSaved",
    "Readiness",
    "SignedIn",
    "SignedInWithoutCalendar",
    "SyncLogPage",
    "SyncQueued",
    "User",
    "UserPage",
    "UserUpdate",
    "component_schemas",
]
