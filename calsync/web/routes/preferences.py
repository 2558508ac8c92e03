"""The caller's notices: preferences, push subscriptions and delivery records.

``GET``/``PUT /me/preferences``, ``POST /me/push-subscriptions``, ``DELETE
/me/push-subscriptions/{subscription_id}``, ``GET /me/notices``. Every route acts on the
caller's own data only; another user's subscription id is a 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from calsync.bootstrap import Services
from calsync.domain.errors import ValidationError
from calsync.notify import notices, preferences, subscriptions
from calsync.notify.reminders import reschedule_user
from calsync.store.tables import DELIVERY_STATUSES, NOTICE_KINDS
from calsync.web import paging
from calsync.web.auth.principal import require_user
from calsync.web.errors import APIError
from calsync.web.requests import invalid_fields, read_json_object, unknown_fields


async def get_preferences(request: Request) -> Response:
    """The caller's notification preferences (defaults until they set some)."""
    account = require_user(request)
    services: Services = request.app.state.services

    def load() -> dict[str, Any]:
        with services.sessions() as session:
            prefs = preferences.load_preferences(session, account.id)
            secret = preferences.load_webhook_secret(session, account.id, services.secrets)
            return preferences.preferences_json(prefs, secret)

    return JSONResponse(await run_in_threadpool(load))


async def put_preferences(request: Request) -> Response:
    """Change the caller's preferences; fields left out keep their values. Replans the
    caller's upcoming reminders in the same transaction."""
    account = require_user(request)
    services: Services = request.app.state.services
    body = await read_json_object(request)
    refused = unknown_fields(
        body,
        allowed=preferences.FIELDS,
        forbidden={"webhook_secret"},
        query=request.query_params,
    )
    known = {k: v for k, v in body.items() if k in preferences.FIELDS}

    def save() -> dict[str, Any]:
        with services.sessions.begin() as session:
            current = preferences.load_preferences(session, account.id)
            try:
                updated = preferences.parse_update(known, current)
            except ValidationError as err:
                raise invalid_fields(refused, err) from None
            if refused:
                raise invalid_fields(refused)
            secret = preferences.save_preferences(session, account.id, updated, services.secrets)
            reschedule_user(session, account.id, now=services.clock())
            return preferences.preferences_json(updated, secret)

    return JSONResponse(await run_in_threadpool(save))


async def register_push_subscription(request: Request) -> Response:
    """Register a browser's Web Push subscription (``PushSubscription.toJSON()``).
    201 when new, 200 when the endpoint was known (its keys are refreshed)."""
    account = require_user(request)
    services: Services = request.app.state.services
    body = await read_json_object(request)
    refused = unknown_fields(body, allowed=subscriptions.FIELDS, query=request.query_params)
    try:
        subscription = subscriptions.parse(body)
    except ValidationError as err:
        raise invalid_fields(refused, err) from None
    if refused:
        raise invalid_fields(refused)

    def save() -> tuple[uuid.UUID, bool]:
        with services.sessions.begin() as session:
            return subscriptions.save_subscription(
                session, account.id, subscription, now=services.clock()
            )

    subscription_id, created = await run_in_threadpool(save)
    return JSONResponse(
        {"id": str(subscription_id), "endpoint": subscription.endpoint},
        status_code=201 if created else 200,
    )


async def delete_push_subscription(request: Request) -> Response:
    """Forget one of the caller's push subscriptions."""
    account = require_user(request)
    services: Services = request.app.state.services
    try:
        subscription_id = uuid.UUID(request.path_params["subscription_id"])
    except ValueError:
        raise APIError(404, "no such push subscription") from None

    def delete() -> bool:
        with services.sessions.begin() as session:
            return subscriptions.delete_subscription(session, account.id, subscription_id)

    if not await run_in_threadpool(delete):
        raise APIError(404, "no such push subscription")
    return Response(status_code=204)


async def list_notices(request: Request) -> Response:
    """The caller's delivery records, newest first: ``limit`` (1-200), ``cursor``,
    ``status`` and ``kind`` filters. ``next_cursor`` is null on the last page."""
    account = require_user(request)
    services: Services = request.app.state.services
    params = request.query_params
    paging.reject_unknown_params(params, {"status", "kind"})
    limit = paging.page_size(params, default=notices.DEFAULT_PAGE, maximum=notices.MAX_PAGE)
    status = paging.one_of(params, "status", DELIVERY_STATUSES)
    kind = paging.one_of(params, "kind", NOTICE_KINDS)
    scope = paging.list_scope("notices", account.id, params)
    cursor = params.get("cursor") or None

    def load() -> notices.NoticePage:
        with services.sessions() as session:
            return notices.list_notices(
                session,
                account.id,
                limit=limit,
                cursor=cursor,
                status=status,
                kind=kind,
                scope=scope,
            )

    try:
        page = await run_in_threadpool(load)
    except notices.InvalidCursor as err:
        raise paging.invalid("cursor", f"is not the next_cursor of this list ({err})") from None
    return JSONResponse({"notices": page.notices, "next_cursor": page.next_cursor})


#: The routes of this module, for ``create_app``.
ROUTES = [
    Route("/me/preferences", get_preferences, methods=["GET"]),
    Route("/me/preferences", put_preferences, methods=["PUT"]),
    Route("/me/push-subscriptions", register_push_subscription, methods=["POST"]),
    Route("/me/push-subscriptions/{subscription_id}", delete_push_subscription, methods=["DELETE"]),
    Route("/me/notices", list_notices, methods=["GET"]),
]
