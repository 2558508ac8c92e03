"""``GET /openapi.json`` describes every route of the running app, and answers fit it."""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from openapi_spec_validator import validate

from calsync.web.openapi import undocumented
from tests.integration.events.conftest import EventsApp

pytestmark = pytest.mark.integration


def schema_of(document: dict[str, Any], name: str) -> dict[str, Any]:
    """A component schema with its $refs resolvable (the whole document as the root)."""
    return {"$ref": f"#/components/schemas/{name}", "components": document["components"]}


def test_the_document_is_valid_openapi_and_covers_every_route(any_app: EventsApp) -> None:
    response = any_app.client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert undocumented(any_app.client.app.routes) == []  # type: ignore[attr-defined]
    served = {
        (method, route.path)
        for route in any_app.client.app.routes  # type: ignore[attr-defined]
        for method in getattr(route, "methods", ()) or ()
        if method != "HEAD"
    }
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert documented == served


def test_sample_answers_validate_against_their_schemas(any_app: EventsApp) -> None:
    app = any_app
    document = app.client.get("/openapi.json").json()
    alice = app.connect("alice@example.com")
    created = app.create(
        alice,
        {
            "title": "x",
            "start_time": "2031-03-04T10:00:00Z",
            "end_time": "2031-03-04T11:00:00Z",
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=2"],
            "attendees": ["bob@example.com"],
            "reminders": [5],
            "metadata": {"a": "b"},
        },
    )
    jsonschema.validate(created, schema_of(document, "Event"))
    page = app.client.get(
        "/events",
        params={"start_date": "2031-03-01", "end_date": "2031-03-31", "expand": "true"},
        headers=alice.headers,
    ).json()
    jsonschema.validate(page, schema_of(document, "EventPage"))
    calendars = app.client.get("/calendars", headers=alice.headers).json()
    jsonschema.validate(calendars, schema_of(document, "CalendarList"))
    error = app.client.post("/events", json={"nope": 1}, headers=alice.headers).json()
    jsonschema.validate(error, schema_of(document, "Error"))
    me = app.client.get("/me", headers=alice.headers).json()
    jsonschema.validate(me, schema_of(document, "User"))
