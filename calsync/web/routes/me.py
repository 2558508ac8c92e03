"""``GET /me``: the caller, with their role, account status and calendar access."""

from __future__ import annotations

import uuid

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from calsync.bootstrap import Services
from calsync.providers.google.oauth import grants_calendar
from calsync.store import credentials
from calsync.web.auth.principal import require_user
from calsync.web.serializers import account_json


async def get_me(request: Request) -> Response:
    """The calling user; ``status`` is ``needs_reauth`` when Google access was lost, and
    ``calendar_access`` is false while the user's Google tokens do not grant the calendar
    scope (none stored, or it was left unticked on Google's consent screen)."""
    account = require_user(request)
    services: Services = request.app.state.services
    access = await run_in_threadpool(_calendar_access, services, account.id)
    return JSONResponse(account_json(account) | {"calendar_access": access})


def _calendar_access(services: Services, user_id: uuid.UUID) -> bool:
    with services.sessions() as session:
        scopes = credentials.granted_scopes(session, user_id)
    return scopes is not None and grants_calendar(scopes)
