"""The OpenAPI document's ``components.schemas``, generated from the models: `MODELS`
(every model a body or answer names), and `component_schemas`, which renders them
with the models they use, by class name."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

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
from calsync.web.models.sync import SyncLogPage, SyncQueued

REF_TEMPLATE: Final = "#/components/schemas/{model}"

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
