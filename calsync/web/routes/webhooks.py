"""``POST /webhooks/google``: the receiver of Google's push channel notifications.

In the served app `calsync.web.push_intake.PushIntakeMiddleware` answers this path
before routing, so this route only runs in an app built without that middleware; both
give the same answers (see that module): 202 recorded, 200 acknowledged or ignored
(also for unknown or forged channels: no oracle for guessing ids), 400 without the
required headers, 5xx only when the notification could not be recorded (the shared
handlers answer 503 for an unreachable database or queue), so that Google retries.
Never calls Google.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from calsync.sync.notifications import receive
from calsync.web.errors import APIError
from calsync.web.push_intake import notification_from_headers, status_for


async def google_notification(request: Request) -> Response:
    """Record one notification; see the module docstring for the answers."""
    note = notification_from_headers(request.scope["headers"])
    if note is None:
        raise APIError(
            400, "X-Goog-Channel-ID and X-Goog-Resource-State are required", code="bad_request"
        )
    state = request.app.state
    outcome = await receive(state.services, note, state.channel_cache, state.dirty_marks)
    return Response(status_code=status_for(outcome))
