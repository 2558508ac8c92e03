"""``POST /sync`` (pull the caller's calendars now) and ``GET /sync/logs`` (what syncs did).

Neither calls Google: ``POST /sync`` only queues pulls, coalesced with any already queued
or running, and (for all calendars) a read of the caller's calendar list, and answers
202 with the pulls it queued.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from calsync.bootstrap import Services
from calsync.domain.accounts import AccountStatus, Role
from calsync.domain.errors import FieldErrors
from calsync.store import sync_logs, user_calendars
from calsync.sync.connect import queue_pulls
from calsync.web import paging
from calsync.web.auth.principal import require_user
from calsync.web.errors import APIError
from calsync.web.requests import optional_uuid, unknown_query


async def trigger_sync(request: Request) -> Response:
    """Queue a pull of each of the caller's synced calendars (or of ``calendar_id``)."""
    account = require_user(request)
    if account.status is AccountStatus.NEEDS_REAUTH:
        raise APIError(409, "Google access was lost; sign in again to sync", code="needs_reauth")
    services: Services = request.app.state.services
    unknown = unknown_query(request.query_params, {"calendar_id"})
    if unknown:
        raise FieldErrors(unknown)
    only = optional_uuid(request.query_params.get("calendar_id"), "calendar_id")

    def queue() -> dict[str, Any]:
        with services.sessions() as session:
            calendar_ids = user_calendars.selected_ids(session, account.id, only=only)
        if only is not None and not calendar_ids:
            raise APIError(404, "no such calendar")
        if only is None:
            # The calendar list is otherwise read only at sign-in and when its channel
            # notifies: a calendar shared or removed while a notification was lost would
            # never show. Reading it again adds the new calendars and queues their pulls.
            services.jobs.sync_calendar_list.send(str(account.id))
        queued = queue_pulls(services, calendar_ids)
        return {
            "queued": [str(c) for c in queued],
            "already_queued": [str(c) for c in calendar_ids if c not in queued],
        }

    return JSONResponse(await run_in_threadpool(queue), status_code=202)


async def list_sync_logs(request: Request) -> Response:
    """The caller's sync log, newest first; admins may read anyone's (``user_id``)."""
    account = require_user(request)
    services: Services = request.app.state.services
    params = request.query_params
    paging.reject_unknown_params(params, _LOG_PARAMS)
    wanted = optional_uuid(params.get("user_id"), "user_id")
    if wanted is not None and wanted != account.id and account.role is not Role.ADMIN:
        raise APIError(404, "no such user")
    user_id = wanted or account.id
    limit = paging.page_size(params)
    scope = paging.list_scope("sync_logs", user_id, params)
    before = _log_cursor(params, scope)
    calendar_id = optional_uuid(params.get("calendar_id"), "calendar_id")
    kind = paging.one_of(params, "kind", _LOG_KINDS)

    def load() -> list[sync_logs.LogEntry]:
        with services.sessions() as session:
            return sync_logs.list_entries(
                session,
                user_id=user_id,
                limit=limit + 1,
                before=before,
                kind=kind,
                calendar_id=calendar_id,
            )

    entries = await run_in_threadpool(load)
    page, more = entries[:limit], len(entries) > limit
    cursor = paging.next_cursor(scope, page[-1].time, str(page[-1].id)) if more else None
    return JSONResponse({"logs": [_log_json(e) for e in page], "next_cursor": cursor})


def _log_json(entry: sync_logs.LogEntry) -> dict[str, Any]:
    return {
        "id": str(entry.id),
        "user_id": str(entry.user_id),
        "calendar_id": str(entry.calendar_id) if entry.calendar_id else None,
        "event_id": str(entry.event_id) if entry.event_id else None,
        "kind": entry.kind,
        "status": entry.status,
        "time": entry.time.isoformat(),
        "pulled": entry.pulled,
        "changed": entry.changed,
        "conflicts": entry.conflicts,
        "api_calls": entry.api_calls,
        "duration_ms": entry.duration_ms,
        "message": entry.message,
        "details": entry.details,
    }


def _log_cursor(params: Any, scope: str) -> tuple[datetime, uuid.UUID] | None:
    position = paging.read_cursor(params, scope)
    if position is None:
        return None
    try:
        return position[0], uuid.UUID(position[1])
    except ValueError:
        raise paging.invalid("cursor", "is not a cursor this API gave out") from None


_LOG_PARAMS: Final = frozenset({"user_id", "calendar_id", "kind"})
_LOG_KINDS: Final = frozenset(kind.value for kind in sync_logs.LogKind)
