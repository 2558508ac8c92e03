"""``GET /me``: the caller, with their role and account status."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from calsync.web.auth.principal import require_user
from calsync.web.serializers import account_json


async def get_me(request: Request) -> Response:
    """The calling user; ``status`` is ``needs_reauth`` when Google access was lost."""
    return JSONResponse(account_json(require_user(request)))
