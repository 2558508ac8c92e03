"""``GET /openapi.json`` describes every route of the running app, and answers fit it."""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from openapi_spec_validator import validate

from calsync.web import models
from calsync.web.openapi import ANSWERED_BEFORE_ROUTING, undocumented
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
    routed = {
        (method, route.path)
        for route in any_app.client.app.routes  # type: ignore[attr-defined]
        for method in getattr(route, "methods", ()) or ()
        if method != "HEAD"
    }
    # and what the middleware answers before routing (the intake: decisions N7), which
    # the app does answer (a notification without headers is refused there)
    for method, path in ANSWERED_BEFORE_ROUTING:
        assert any_app.client.request(method, path).status_code == 400
    served = routed | set(ANSWERED_BEFORE_ROUTING)
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


def _resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        resolved: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return resolved
    return schema


def test_every_answer_is_typed_and_carries_its_headers(any_app: EventsApp) -> None:
    """Issue 18 item 9: no bare object answers, typed error details, every parameter of
    the lists, and the headers the middleware adds on every operation."""
    document = any_app.client.get("/openapi.json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "503" in responses, (method, path)
            for status, response in responses.items():
                headers = response.get("headers", {})
                assert headers["X-Request-ID"]["required"] is True, (method, path, status)
                if status in ("429", "503"):
                    assert "Retry-After" in headers, (method, path, status)
                for content in response.get("content", {}).values():
                    schema = _resolved(document, content["schema"])
                    if schema.get("type") == "object" or "$ref" in content["schema"]:
                        assert schema.get("properties"), (method, path, status, schema)
    details = document["components"]["schemas"]["ErrorBody"]["properties"]["details"]
    assert details["items"] == {"$ref": "#/components/schemas/FieldError"}
    names = {
        (method.upper(), path): {p["name"] for p in operation.get("parameters", [])}
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert all("X-Request-ID" in taken for taken in names.values())
    names = {key: taken - {"X-Request-ID"} for key, taken in names.items()}
    assert names[("GET", "/sync/logs")] == {"limit", "cursor", "kind", "calendar_id", "user_id"}
    assert names[("POST", "/sync")] == {"calendar_id"}
    assert names[("GET", "/admin/audit")] == {"limit", "cursor", "action"}
    created = document["paths"]["/events"]["post"]["responses"]["201"]["headers"]
    assert {"ETag", "Location", "RateLimit-Limit", "RateLimit-Remaining"} <= set(created)
    shown = document["paths"]["/events/{event_id}"]["get"]["responses"]["200"]["headers"]
    assert "ETag" in shown


def test_answers_fit_the_models_the_document_is_made_of(any_app: EventsApp) -> None:
    """The models are the contract: what the routes render (dicts, with orjson) fits
    them, for each of several users."""
    app = any_app
    for name in ("alice", "bob"):
        user = app.connect(f"{name}@example.com")
        created = app.create(
            user,
            {
                "title": name,
                "start_time": "2031-03-04T10:00:00Z",
                "end_time": "2031-03-04T11:00:00Z",
                "recurrence": ["RRULE:FREQ=DAILY;COUNT=2"],
                "attendees": ["carol@example.com"],
                "reminders": [5],
            },
        )
        models.Event.model_validate(created)
        page = app.client.get(
            "/events",
            params={"start_date": "2031-03-01", "end_date": "2031-03-31", "expand": "true"},
            headers=user.headers,
        ).json()
        assert len(models.EventPage.model_validate(page).events) == 2
        for path, model in (
            ("/calendars", models.CalendarList),
            ("/me", models.User),
            ("/me/preferences", models.Preferences),
            ("/me/notices", models.NoticePage),
            ("/sync/logs", models.SyncLogPage),
        ):
            answer = app.client.get(path, headers=user.headers)
            assert answer.status_code == 200, answer.text
            model.model_validate(answer.json())
        refused = app.client.post("/events", json={"nope": 1}, headers=user.headers).json()
        assert models.Error.model_validate(refused).error.details[0].issue == "unknown"


def test_every_parameter_says_what_it_is_and_the_key_limits_are_the_served_ones(
    any_app: EventsApp,
) -> None:
    """A reader of the document (and of api-reference.md, made from it) learns what each
    parameter means: `If-Match` and `Idempotency-Key` used to have no description, and
    the key's schema allowed the empty string the route refuses."""
    document = any_app.client.get("/openapi.json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                assert parameter.get("description"), (method, path, parameter["name"])
    (key,) = [
        p
        for p in document["paths"]["/events"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    ]
    alice = any_app.connect("alice@example.com")
    body = {"title": "x", "start_time": "2031-03-04T10:00:00Z", "end_time": "2031-03-04T11:00:00Z"}
    for length, status in ((0, 422), (1, 201), (255, 201), (256, 422)):
        fits = key["schema"]["minLength"] <= length <= key["schema"]["maxLength"]
        answer = any_app.client.post(
            "/events", json=body, headers={**alice.headers, "Idempotency-Key": "k" * length}
        )
        assert answer.status_code == status, answer.text
        assert fits == (status == 201), length
