"""Reading requests: JSON object bodies (unknown fields refused with 422) and id
parameters."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from starlette.requests import Request

from calsync.domain.errors import FieldErrors, ValidationError
from calsync.web.errors import APIError


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object whose texts calsync can store.

    Raises:
        APIError: 415 when not sent as JSON; 400 when not valid JSON in UTF-8 (RFC 8259;
            the bytes of a lone surrogate are not UTF-8); 422 when not an object, or when a
            string in it (a name or a value, at any depth) holds a NUL or a lone surrogate
            (``"\\u0000"``, ``"\\ud800"``), naming the top-level field.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise APIError(415, "send the body as application/json")
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
        body = json.loads(text)
    except (ValueError, RecursionError):
        # ValueError: bytes that are not UTF-8, malformed JSON, and integers past Python's
        # digit limit; RecursionError: arrays or objects nested deeper than the parser's
        # stack.
        raise APIError(400, "the body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise APIError(422, "the body must be a JSON object")
    # JSON spells a NUL or a lone surrogate only as an escape: a body without one (and
    # with no escaped surrogate pair, an astral character some encoders escape) is clean.
    if "\\u0000" in text or _SURROGATE_ESCAPE.search(text):
        field = _field_with_unstorable_text(body)
        if field is not None:
            message = "holds a NUL or a lone surrogate, which is not text calsync can store"
            raise APIError(
                422,
                f"{field} {message}",
                details=[{"field": field, "issue": "invalid", "message": message}],
            )
    return body


_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")
_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")


def _field_with_unstorable_text(body: dict[str, Any]) -> str | None:
    """The top-level field whose value (or name) holds a NUL or a lone surrogate, if any
    (``body`` when it is the name itself, which could not be shown): no database takes
    either, and nothing encodes a lone surrogate as UTF-8. Walks without recursion, so a
    body as deep as the parser allowed is no deeper here."""
    for field, value in body.items():
        pending: list[Any] = [field, value]
        while pending:
            item = pending.pop()
            if isinstance(item, str):
                if _UNSTORABLE.search(item):
                    return "body" if _UNSTORABLE.search(field) else field
            elif isinstance(item, dict):
                pending.extend(item.keys())
                pending.extend(item.values())
            elif isinstance(item, list):
                pending.extend(item)
    return None


def unknown_fields(
    body: dict[str, Any],
    *,
    allowed: Iterable[str],
    forbidden: Iterable[str] = (),
    query: Iterable[str] = (),
) -> list[dict[str, str]]:
    """A 422 detail for each field of ``body`` the client may not set (``read_only``)
    or that does not exist (``unknown``), each with its message, as the events' body
    gives it (``calsync.events.changes_input``): api.md promises every detail one. And
    one for each name of ``query``, the parameters of a route that takes none
    (`unknown_query`)."""
    allowed_set = set(allowed)
    forbidden_set = set(forbidden)
    fields = [
        {"field": name, "issue": "read_only", "message": "this field is set by calsync"}
        if name in forbidden_set
        else {"field": name, "issue": "unknown", "message": "there is no such field"}
        for name in body
        if name not in allowed_set
    ]
    parameters = [
        {"field": p.field, "issue": p.issue, "message": p.message} for p in unknown_query(query)
    ]
    return [*fields, *parameters]


def reject_unknown_fields(
    body: dict[str, Any], *, allowed: Iterable[str], forbidden: Iterable[str] = ()
) -> None:
    """Refuse fields the client may not set (named) and fields that do not exist.

    Raises:
        APIError: 422 naming each offending field.
    """
    details = unknown_fields(body, allowed=allowed, forbidden=forbidden)
    if details:
        raise invalid_fields(details)


def invalid_fields(
    details: Sequence[Mapping[str, Any]], error: ValidationError | None = None
) -> APIError:
    """The one 422 naming every bad field: `details` (unknown or read-only fields, or
    other problems already found) and the problems of `error` (a `FieldErrors` holds
    several). The message is the single problem's own when there is one, else it names
    every field."""
    found = [*details]
    if error is not None:
        problems = error.problems if isinstance(error, FieldErrors) else [error]
        found.extend({"field": p.field, "issue": "invalid", "message": p.message} for p in problems)
    names = ", ".join(dict.fromkeys(str(d["field"]) for d in found))
    if not details and error is not None and len(found) == 1:
        message = f"{error.field}: {error.message}"
    elif error is None and all(d.get("issue") in ("unknown", "read_only") for d in found):
        message = f"these fields cannot be set: {names}"
    else:
        message = f"invalid fields: {names}"
    return APIError(422, message, details=found)


def unknown_query(params: Iterable[str], known: Iterable[str] = ()) -> list[ValidationError]:
    """A problem (``issue: unknown``) for each query parameter the route does not take.

    A write route that ignored one would act on a default the client did not mean:
    ``POST /events?calendar_id=C`` created the event on the primary calendar, and
    ``POST /sync?calendarId=C`` pulled every calendar (api.md: an unknown parameter is
    422 naming it)."""
    taken = set(known)
    return [
        ValidationError(name, "unknown parameter", issue="unknown")
        for name in dict.fromkeys(params)
        if name not in taken
    ]


def optional_uuid(raw: str | None, field: str) -> uuid.UUID | None:
    """The id a query parameter ``field`` holds, None when absent.

    Raises:
        APIError: 422 naming ``field`` when it is not an id.
    """
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise APIError(
            422,
            f"{field} must be an id",
            details=[{"field": field, "issue": "invalid", "message": "must be an id"}],
        ) from None
