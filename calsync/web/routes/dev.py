"""``GET /dev/notices``: the notices ``calsync dev`` kept instead of sending them.

Served only in dev mode (``Settings.notice_sink_dir``, see :mod:`calsync.notify.sink`);
not part of the API contract. A user reads their own; an admin reads everyone's, or one
user's with ``user_id``.
"""

from __future__ import annotations

import uuid

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from calsync.bootstrap import Services
from calsync.domain.accounts import Role
from calsync.notify.sink import NoticeSink
from calsync.web.auth.principal import require_user
from calsync.web.paging import page_size
from calsync.web.requests import optional_uuid


async def list_kept_notices(request: Request) -> Response:
    """``{"notices": [...]}``, newest first (``limit``, 1-200, default 50)."""
    account = require_user(request)
    services: Services = request.app.state.services
    assert services.settings.notice_sink_dir is not None  # the route exists only then
    limit = page_size(request)
    user_id: uuid.UUID | None = account.id
    if account.role is Role.ADMIN:
        user_id = optional_uuid(request.query_params.get("user_id"), "user_id")
    sink = NoticeSink(services.settings.notice_sink_dir)
    notices = await run_in_threadpool(sink.entries, user_id=user_id, limit=limit)
    return JSONResponse({"notices": notices, "folder": str(sink.folder.resolve())})
