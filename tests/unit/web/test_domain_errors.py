"""The one map from the use cases' domain errors to the API's answers (decision HE2).

A tiny Starlette app with calsync's handlers raises each domain error from a route; the
answer is the status and the exact body the events API gave before the use cases left
the web layer (tests/integration/events check the same bodies through the real routes).
"""

from __future__ import annotations

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from calsync.domain.errors import (
    FieldErrors,
    Forbidden,
    IdempotencyKeyReused,
    NeverOccurs,
    NotConnectedYet,
    NotFound,
    Refused,
    Stale,
    ValidationError,
)
from calsync.web.errors import EXCEPTION_HANDLERS, REFUSALS, domain_error


def answer(error: Exception) -> tuple[int, bytes]:
    async def route(_request: Request) -> Response:
        raise error

    app = Starlette(routes=[Route("/", route)], exception_handlers=EXCEPTION_HANDLERS)
    with TestClient(app, raise_server_exceptions=False) as client:
        got = client.get("/")
    return got.status_code, got.content


def body(code: str, message: str, *details: tuple[str, str, str]) -> bytes:
    shown = [{"field": f, "issue": i, "message": m} for f, i, m in details]
    return orjson.dumps({"error": {"code": code, "message": message, "details": shown}})


@pytest.mark.parametrize(
    ("error", "status", "expected"),
    [
        (NotFound("no such event"), 404, body("not_found", "no such event")),
        (NotFound("no such calendar"), 404, body("not_found", "no such calendar")),
        (
            Forbidden("you may not write to this calendar"),
            403,
            body("forbidden", "you may not write to this calendar"),
        ),
        (
            Forbidden(
                "Google does not allow this change: event_type",
                [ValidationError("event_type", "only on primary", issue="forbidden")],
            ),
            403,
            body(
                "forbidden",
                "Google does not allow this change: event_type",
                ("event_type", "forbidden", "only on primary"),
            ),
        ),
        (
            NotConnectedYet("your Google calendars are still being connected; try again"),
            409,
            body(
                "calendars_connecting", "your Google calendars are still being connected; try again"
            ),
        ),
        (
            Stale("the event changed since you read it; GET it again"),
            412,
            body("precondition_failed", "the event changed since you read it; GET it again"),
        ),
        (
            IdempotencyKeyReused(
                "this Idempotency-Key was used with a different request body",
                [ValidationError("Idempotency-Key", "new body", issue="reused")],
            ),
            422,
            body(
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request body",
                ("Idempotency-Key", "reused", "new body"),
            ),
        ),
        (
            ValidationError("scope", "scope=following needs an instance id"),
            422,
            body(
                "validation_failed",
                "invalid fields: scope",
                ("scope", "invalid", "scope=following needs an instance id"),
            ),
        ),
        (
            FieldErrors(
                [
                    ValidationError("id", "this field is set by calsync", issue="read_only"),
                    ValidationError("start_time", "this field is required", issue="required"),
                    ValidationError("title", "too long"),
                    ValidationError("title", "has NUL"),
                ]
            ),
            422,
            body(
                "validation_failed",
                "invalid fields: id, start_time, title",
                ("id", "read_only", "this field is set by calsync"),
                ("start_time", "required", "this field is required"),
                ("title", "invalid", "too long"),
                ("title", "invalid", "has NUL"),
            ),
        ),
        (
            NeverOccurs("recurrence", "the rule yields no instance"),
            422,
            body(
                "validation_failed",
                "invalid fields: recurrence",
                ("recurrence", "invalid", "the rule yields no instance"),
            ),
        ),
    ],
)
def test_each_domain_error_answers_its_status_and_body(
    error: Exception, status: int, expected: bytes
) -> None:
    assert answer(error) == (status, expected)


def test_every_refusal_has_a_status() -> None:
    # A new kind of refusal without an entry would answer 500: each has one.
    kinds = set(Refused.__subclasses__())
    assert kinds == set(REFUSALS)
    for kind in kinds:
        assert domain_error(kind("why")).status in {403, 404, 409, 412, 422}


def test_a_refusal_of_a_subclass_answers_as_its_kind() -> None:
    class Gone(NotFound):
        pass

    assert answer(Gone("no such event")) == (404, body("not_found", "no such event"))
