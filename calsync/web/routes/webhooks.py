"""``POST /webhooks/google``: the receiver of Google's push channel notifications.

Google sends the channel's metadata in ``X-Goog-*`` headers and no body. The answer is
2xx whenever calsync recorded (or deliberately ignored) the message, so Google does not
retry: also for unknown or forged channels, which are ignored and counted (no oracle for
guessing ids). It is 5xx only when the database cannot record it (the shared
`OperationalError` handler answers 503), so that Google retries. Never calls Google.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from calsync.sync.notifications import ChannelCache, Intake, Notification, receive
from calsync.web.errors import APIError

_STATUS = {Intake.QUEUED: 202, Intake.COALESCED: 202}


async def google_notification(request: Request) -> Response:
    """Record one notification; see the module docstring for the answers."""
    headers = request.headers
    channel_id = headers.get("x-goog-channel-id")
    state = headers.get("x-goog-resource-state")
    if not channel_id or not state:
        raise APIError(
            400, "X-Goog-Channel-ID and X-Goog-Resource-State are required", code="bad_request"
        )
    number = headers.get("x-goog-message-number", "")
    note = Notification(
        channel_id=channel_id,
        token=headers.get("x-goog-channel-token", ""),
        resource_id=headers.get("x-goog-resource-id", ""),
        state=state,
        message_number=int(number) if number.isdigit() else None,
    )
    cache: ChannelCache = request.app.state.channel_cache
    outcome = await run_in_threadpool(
        receive, request.app.state.services, note, cache, request.app.state.dirty_marks
    )
    return Response(status_code=_STATUS.get(outcome, 200))
