"""HTTP routes of the Calendar API v3 under ``/calendar/v3`` (the subset calsync uses).

Each handler authenticates (401 for a missing, unknown or expired token, 403 for
missing scopes or an exceeded rate limit), runs one operation under the state lock,
queues push notifications for what changed, and answers JSON in Google's shapes.
Routes follow the bundled discovery document's paths, so the real
``googleapiclient`` built with ``api_endpoint=<base>/calendar/v3/`` lands here.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from functools import wraps
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from calsync.emulator import calendar_service, conference, errors, event_service, listing
from calsync.emulator.accounts import (
    CALENDAR_READ_SCOPES,
    CALENDAR_WRITE_SCOPES,
    EVENT_READ_SCOPES,
    EVENT_WRITE_SCOPES,
    User,
)
from calsync.emulator.event_service import EventScope
from calsync.emulator.event_types import event_types_filter
from calsync.emulator.frontend import USER_SCOPE_KEY
from calsync.emulator.state import EmulatorState

PREFIX = "/calendar/v3"
Handler = Callable[[Request], Awaitable[Response]]


def json_response(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type="application/json; charset=UTF-8",
    )


def no_content() -> Response:
    return Response(status_code=204)


def google_errors(handler: Handler) -> Handler:
    """Turn ``GoogleApiError`` raised below a route into Google's error answer."""

    @wraps(handler)
    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except errors.GoogleApiError as err:
            return err.to_response()

    return wrapper


async def read_json(request: Request) -> dict[str, Any]:
    """The JSON object body; 400 ``parseError`` when it is not one."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise errors.GoogleApiError(400, "parseError", "Parse Error") from None
    if not isinstance(body, dict):
        raise errors.GoogleApiError(400, "parseError", "Parse Error")
    return body


def _conference_version(request: Request) -> int:
    return conference.parse_version(request.query_params.get("conferenceDataVersion"))


def _query(request: Request) -> listing.Query:
    return listing.Query(request.query_params.getlist)


class CalendarApi:
    """The route handlers, bound to one ``EmulatorState``."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def authenticate(self, request: Request, scopes: frozenset[str]) -> User:
        """The calling user; 401/403 in Google's shape otherwise. Counts rate limits."""
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else None
        token = token or request.query_params.get("access_token")
        if not token:
            raise errors.login_required()
        state = self.state
        with state.lock:
            now = state.clock.now()
            found = state.accounts.lookup_access(token, now=now)
            if found is None:
                raise errors.invalid_credentials()
            request.scope[USER_SCOPE_KEY] = found.email
            if not scopes.intersection(found.grant.scopes):
                raise errors.insufficient_scopes()
            limits = state.config.rate_limits
            if not state.project_rate.allow(
                "project", limit=limits.per_project_per_minute, now=now
            ):
                raise errors.GoogleApiError(limits.status, "rateLimitExceeded")
            if not state.user_rate.allow(found.email, limit=limits.per_user_per_minute, now=now):
                reason = "userRateLimitExceeded" if limits.status == 403 else "rateLimitExceeded"
                raise errors.GoogleApiError(limits.status, reason)
            user = state.accounts.user(found.email)
            if user is None:
                raise errors.invalid_credentials()
            return user

    def _scope(self, user: User, calendar_id: str) -> EventScope:
        calendar, role = self.state.visible_calendar(user.email, calendar_id)
        return EventScope(calendar, role, user.email, self.state.clock.now())

    def _read_scope(self, user: User, calendar_id: str) -> EventScope:
        """`_scope` for a read, which first completes the calendar's conference requests
        that are due (`conference.complete_due`); call under the lock."""
        scope = self._scope(user, calendar_id)
        config = self.state.config
        if scope.log.pending_conferences and conference.complete_due(
            scope.log,
            now=scope.now,
            delay_seconds=config.conference_delay_seconds,
            outcome=config.conference_outcome,
            calendar_id=scope.calendar.id,
        ):
            self.state.notify_events(scope.calendar.id)
        return scope

    def _resource_uri(self, request: Request, path: str) -> str:
        return f"{str(request.base_url).rstrip('/')}{PREFIX}/{path}?alt=json"

    # calendarList and calendars ------------------------------------------------------

    async def calendar_list(self, request: Request) -> Response:
        user = self.authenticate(request, CALENDAR_READ_SCOPES)
        with self.state.lock:
            body = calendar_service.list_calendar_list(self.state, user, _query(request))
        return json_response(body)

    async def calendar_list_entry(self, request: Request) -> Response:
        user = self.authenticate(request, CALENDAR_READ_SCOPES)
        with self.state.lock:
            body = calendar_service.get_calendar_list_entry(
                self.state, user, request.path_params["calendarId"]
            )
        return json_response(body)

    async def calendar_list_watch(self, request: Request) -> Response:
        user = self.authenticate(request, CALENDAR_READ_SCOPES)
        body = await read_json(request)
        channel = self.state.open_channel(
            body,
            kind="calendarList",
            target=user.email,
            owner=user.email,
            resource_uri=self._resource_uri(request, "users/me/calendarList"),
        )
        return json_response(channel.resource())

    async def calendar_get(self, request: Request) -> Response:
        user = self.authenticate(request, CALENDAR_READ_SCOPES | EVENT_READ_SCOPES)
        calendar, _ = self.state.visible_calendar(user.email, request.path_params["calendarId"])
        return json_response(calendar.resource())

    async def calendar_insert(self, request: Request) -> Response:
        user = self.authenticate(request, CALENDAR_WRITE_SCOPES)
        body = await read_json(request)
        with self.state.lock:
            calendar = calendar_service.insert_calendar(self.state, user, body)
        return json_response(calendar.resource())

    async def calendar_delete(self, request: Request) -> Response:
        user = self.authenticate(request, CALENDAR_WRITE_SCOPES)
        with self.state.lock:
            calendar_service.delete_calendar(self.state, user, request.path_params["calendarId"])
        return no_content()

    # events --------------------------------------------------------------------------

    async def events_list(self, request: Request) -> Response:
        user = self.authenticate(request, EVENT_READ_SCOPES)
        with self.state.lock:
            scope = self._read_scope(user, request.path_params["calendarId"])
            body = listing.list_events(
                scope,
                _query(request),
                sync_token_ttl=self.state.config.sync_token_ttl_seconds,
                encoded=True,
            )
        return Response(listing.encode_listing(body), media_type="application/json; charset=UTF-8")

    async def events_get(self, request: Request) -> Response:
        user = self.authenticate(request, EVENT_READ_SCOPES)
        with self.state.lock:
            scope = self._read_scope(user, request.path_params["calendarId"])
            resource = event_service.get_event(scope, request.path_params["eventId"])
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None and if_none_match.strip() == resource["etag"]:
            return Response(status_code=304)
        return json_response(resource)

    async def events_instances(self, request: Request) -> Response:
        user = self.authenticate(request, EVENT_READ_SCOPES)
        with self.state.lock:
            scope = self._read_scope(user, request.path_params["calendarId"])
            body = listing.list_instances(scope, request.path_params["eventId"], _query(request))
        return json_response(body)

    async def _write(
        self,
        request: Request,
        operation: Callable[[EventScope, dict[str, Any]], Mapping[str, Any]],
        *,
        status: int = 200,
        answer: bool = True,
    ) -> Response:
        """Run a write; `operation` returns the event as stored, which is the answer
        (with `answer`) and whose type says which watch channels are told."""
        user = self.authenticate(request, EVENT_WRITE_SCOPES)
        body = await read_json(request) if request.method in ("POST", "PUT", "PATCH") else {}
        with self.state.lock:
            scope = self._scope(user, request.path_params["calendarId"])
            result = operation(scope, body)
            self.state.notify_events(scope.calendar.id, result.get("eventType", "default"))
        return json_response(result, status) if answer else no_content()

    async def events_insert(self, request: Request) -> Response:
        version = _conference_version(request)
        return await self._write(
            request,
            lambda scope, body: (
                event_service.insert_event(scope, body, conference_version=version).resource
            ),
        )

    async def events_import(self, request: Request) -> Response:
        version = _conference_version(request)
        return await self._write(
            request,
            lambda scope, body: (
                event_service.import_event(scope, body, conference_version=version).resource
            ),
        )

    async def events_update(self, request: Request) -> Response:
        event_id = request.path_params["eventId"]
        if_match = request.headers.get("if-match")
        patch = request.method == "PATCH"
        version = _conference_version(request)
        return await self._write(
            request,
            lambda scope, body: (
                event_service.update_event(
                    scope,
                    event_id,
                    body,
                    if_match=if_match,
                    patch=patch,
                    conference_version=version,
                ).resource
            ),
        )

    async def events_delete(self, request: Request) -> Response:
        event_id = request.path_params["eventId"]
        if_match = request.headers.get("if-match")

        def delete(scope: EventScope, body: dict[str, Any]) -> Mapping[str, Any]:
            return event_service.delete_event(scope, event_id, if_match=if_match).resource

        return await self._write(request, delete, answer=False)

    async def events_watch(self, request: Request) -> Response:
        user = self.authenticate(request, EVENT_READ_SCOPES)
        body = await read_json(request)
        event_types = event_types_filter(request.query_params.getlist("eventTypes"))
        with self.state.lock:
            scope = self._scope(user, request.path_params["calendarId"])
            event_service.require_reader(scope)
            channel = self.state.open_channel(
                body,
                kind="events",
                target=scope.calendar.id,
                owner=user.email,
                resource_uri=self._resource_uri(
                    request, f"calendars/{quote(scope.calendar.id, safe='@')}/events"
                ),
                event_types=event_types,
            )
        return json_response(channel.resource())

    async def channels_stop(self, request: Request) -> Response:
        user = self.authenticate(request, EVENT_READ_SCOPES | CALENDAR_READ_SCOPES)
        body = await read_json(request)
        channel_id, resource_id = body.get("id"), body.get("resourceId")
        if not isinstance(channel_id, str) or not isinstance(resource_id, str):
            raise errors.required("Both id and resourceId are required.", "resourceId")
        self.state.stop_channel(channel_id, resource_id, user=user.email)
        return no_content()


def calendar_routes(state: EmulatorState) -> list[Route]:
    api = CalendarApi(state)
    cal = PREFIX + "/calendars/{calendarId}"
    event = cal + "/events/{eventId}"
    return [
        Route(PREFIX + "/users/me/calendarList", google_errors(api.calendar_list), methods=["GET"]),
        Route(
            PREFIX + "/users/me/calendarList/watch",
            google_errors(api.calendar_list_watch),
            methods=["POST"],
        ),
        Route(
            PREFIX + "/users/me/calendarList/{calendarId}",
            google_errors(api.calendar_list_entry),
            methods=["GET"],
        ),
        Route(PREFIX + "/calendars", google_errors(api.calendar_insert), methods=["POST"]),
        Route(PREFIX + "/channels/stop", google_errors(api.channels_stop), methods=["POST"]),
        Route(cal + "/events/import", google_errors(api.events_import), methods=["POST"]),
        Route(cal + "/events/watch", google_errors(api.events_watch), methods=["POST"]),
        Route(cal + "/events", google_errors(api.events_list), methods=["GET"]),
        Route(cal + "/events", google_errors(api.events_insert), methods=["POST"]),
        Route(event + "/instances", google_errors(api.events_instances), methods=["GET"]),
        Route(event, google_errors(api.events_get), methods=["GET"]),
        Route(event, google_errors(api.events_update), methods=["PUT", "PATCH"]),
        Route(event, google_errors(api.events_delete), methods=["DELETE"]),
        Route(cal, google_errors(api.calendar_get), methods=["GET"]),
        Route(cal, google_errors(api.calendar_delete), methods=["DELETE"]),
    ]
