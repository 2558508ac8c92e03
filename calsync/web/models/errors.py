"""The body of calsync's error answers (docs/api.md): `Error`, with `FieldError` details."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from calsync.web.models.base import Closed

Issue = Literal["invalid", "required", "unknown", "read_only", "forbidden", "reused"]


class FieldError(Closed):
    """One problem of a request: the field (a body field, a query parameter or a header,
    as the client spelled it; ``keys.auth`` for a nested one) and what is wrong."""

    field: str = Field(description="the body field, query parameter or header at fault")
    issue: Issue = Field(
        description="invalid: a bad value; required: missing; unknown: no such field;"
        " read_only: set by calsync; forbidden: Google lets nobody change it;"
        " reused: an Idempotency-Key sent with another body"
    )
    message: str | SkipJsonSchema[None] = Field(default=None, description="what to fix")


class ErrorBody(Closed):
    """What went wrong: a stable ``code`` (docs/api.md), words for people, and for a 422
    one entry per bad field (every one at once)."""

    code: str = Field(description="validation_failed, not_found, ... (docs/api.md)")
    message: str
    details: list[FieldError] = Field(description="every invalid field (422s); else empty")


class Error(Closed):
    """Every error answer: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorBody
