"""``GET /calendars`` (the caller's calendars) and ``PATCH /calendars/{id}`` (its policy)."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from calsync.bootstrap import Services
from calsync.domain.conflicts import ConflictPolicy
from calsync.events.views import calendar_json
from calsync.store.calendar_views import calendar_of, calendars_of, set_conflict_policy
from calsync.web.auth.principal import require_user
from calsync.web.errors import APIError
from calsync.web.requests import invalid_fields, read_json_object, unknown_fields


async def list_calendars(request: Request) -> Response:
    """The caller's calendars (from Google's calendar list) with access role and sync state."""
    account = require_user(request)
    services: Services = request.app.state.services

    def load() -> list[dict[str, Any]]:
        with services.sessions() as session:
            return [calendar_json(c) for c in calendars_of(session, account.id)]

    return JSONResponse({"calendars": await run_in_threadpool(load)})


async def update_calendar(request: Request) -> Response:
    """Set the calendar's own ``conflict_policy`` (``null``: the installation's default)."""
    account = require_user(request)
    services: Services = request.app.state.services
    body = await read_json_object(request)
    details = unknown_fields(body, allowed={"conflict_policy"}, query=request.query_params)
    policy = body.get("conflict_policy")
    if policy is not None:
        try:
            policy = ConflictPolicy(policy).value
        except ValueError:
            allowed = ", ".join(p.value for p in ConflictPolicy)
            message = f"must be one of {allowed} or null"
            details.append({"field": "conflict_policy", "issue": "invalid", "message": message})
            if len(details) == 1:
                raise APIError(422, f"conflict_policy {message}", details=details) from None
    if details:
        raise invalid_fields(details)
    try:
        calendar_id = uuid.UUID(request.path_params["calendar_id"])
    except ValueError:
        raise APIError(404, "no such calendar") from None

    def change() -> dict[str, Any] | None:
        with services.sessions.begin() as session:
            found = calendar_of(session, calendar_id)
            if found is None or found[0] != account.id:
                return None
            set_conflict_policy(session, calendar_id, policy)
            updated = calendar_of(session, calendar_id)
            assert updated is not None
            return calendar_json(updated[1])

    answer = await run_in_threadpool(change)
    if answer is None:
        raise APIError(404, "no such calendar")
    return JSONResponse(answer)
