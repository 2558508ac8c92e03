"""The building blocks of an operation's description in `OPERATIONS`: references to
the models' schemas (`ref`), JSON answers and error answers (`answer`, `error`), query
parameters (`query`, `paging`), request bodies (`body`), an operation (`op`) and the
parameters and answers several operations share."""

from __future__ import annotations

from typing import Any

REF = "#/components/schemas/"


def ref(name: str) -> dict[str, str]:
    """A reference to the schema of the model `name` (`calsync.web.models`)."""
    return {"$ref": REF + name}


def answer(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    """An answer whose JSON body has `schema`."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error(description: str) -> dict[str, Any]:
    """An error answer (the `Error` body), for `description`."""
    return answer(ref("Error"), description)


DATE_PARAM = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
        {"const": ""},
    ],
    "description": "empty: not given",
}
AUTH_ERRORS = {"401": error("no or invalid token"), "429": error("rate limited")}
#: What any operation with a JSON body can also answer: a body that is not JSON, one over
#: the size limit, one sent as another media type.
BODY_ERRORS = {
    "400": error("the body is not valid JSON"),
    "413": error("body too large"),
    "415": error("the body is not sent as application/json"),
}
EVENT_ID = {
    "name": "event_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "an event id, or an instance id <seriesId>_<YYYYMMDDTHHMMSSZ|YYYYMMDD>",
}
SCOPE = {
    "name": "scope",
    "in": "query",
    "schema": {"enum": ["this", "following"], "default": "this"},
    "description": "on an instance id: this instance, or this and the following (split)",
}
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "schema": {"type": "string"},
    "description": "optional: the event's ETag (its etag field) as read; another is 412",
}


def query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A query parameter, a string unless `schema` says otherwise."""
    return {
        "name": name,
        "in": "query",
        "schema": schema or {"type": "string"},
        "description": description,
    }


def goog_header(name: str, description: str) -> dict[str, Any]:
    """An optional string header of Google's push notifications."""
    return {"name": name, "in": "header", "schema": {"type": "string"}, "description": description}


def path_id(name: str, description: str) -> dict[str, Any]:
    """A required id in the path."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


def paging() -> list[dict[str, Any]]:
    """``limit`` and ``cursor``, the same on every list (`calsync.web.paging`)."""
    return [
        query(
            "limit",
            "page size, 1-200 (default 50); anything else is 422",
            {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
        ),
        query(
            "cursor",
            "next_cursor of the previous page of this list with the same filters; any other is 422",
        ),
    ]


def op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An operation: its summary, its answers by status and any other field."""
    return {"summary": summary, "responses": responses, **extra}


def body(schema_name: str) -> dict[str, Any]:
    """A required JSON request body of the model `schema_name`."""
    return {"required": True, "content": {"application/json": {"schema": ref(schema_name)}}}


#: The extra field of an operation that needs no token.
PUBLIC: dict[str, Any] = {"security": []}
