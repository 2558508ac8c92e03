"""The control API under ``/emulator/``: set up users, inject faults, read logs, move time.

It is the emulator's own API (not Google's): tests and ``calsync dev`` use it for setup
and inspection only. Bodies and answers are JSON; a bad body is 400 ``{"error": ...}``,
an unknown user or calendar 404. The full reference is in ``docs/emulator.md``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from calsync.emulator import event_service, timefmt
from calsync.emulator.accounts import FULL_SCOPES, AccessToken, canonical_scope
from calsync.emulator.calendars import ROLES, CalendarRecord
from calsync.emulator.errors import GoogleApiError
from calsync.emulator.event_model import new_etag
from calsync.emulator.event_service import EventScope
from calsync.emulator.faults import Fault
from calsync.emulator.state import EmulatorState

Endpoint = Callable[[Request], Awaitable[Response]]


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _guarded(endpoint: Endpoint) -> Endpoint:
    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ControlError as err:
            return JSONResponse({"error": str(err)}, status_code=err.status)
        except ValueError as err:
            return JSONResponse({"error": str(err)}, status_code=400)
        except KeyError as err:
            return JSONResponse({"error": f"not found: {err.args[0]}"}, status_code=404)

    return wrapper


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ControlError(400, "body is not JSON") from None
    if not isinstance(body, dict):
        raise ControlError(400, "body must be a JSON object")
    return body


def _token_json(token: AccessToken, now_seconds: float) -> dict[str, Any]:
    return {
        "email": token.email,
        "access_token": token.token,
        "refresh_token": token.grant.refresh_token,
        "expires_in": round(token.expires_at.timestamp() - now_seconds),
        "scope": " ".join(token.grant.scopes),
    }


def _calendar_json(calendar: CalendarRecord, email: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": calendar.id,
        "summary": calendar.summary,
        "owner": calendar.owner,
        "time_zone": calendar.time_zone,
        "acl": dict(calendar.acl),
        "sync_epoch": calendar.sync_epoch,
        "events": len(calendar.events),
    }
    if email is not None:
        data["access_role"] = calendar.role_of(email)
    return data


class Control:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return JSONResponse({"ok": True})

    async def get_config(self, request: Request) -> Response:
        with self.state.lock:
            return JSONResponse(self.state.config.to_json())

    async def update_config(self, request: Request) -> Response:
        body = await _body(request)
        with self.state.lock:
            self.state.config.update(body)
            self.state.requests.resize(self.state.config.request_log_limit)
            return JSONResponse(self.state.config.to_json())

    def _add_calendar(self, email: str, spec: dict[str, Any]) -> CalendarRecord:
        """A calendar for ``email``: owned by them, or by ``owner`` and shared with them."""
        summary = spec.get("summary")
        if not isinstance(summary, str) or not summary:
            raise ValueError("each calendar needs a summary")
        role = spec.get("access_role", "owner")
        if role not in ROLES[1:]:
            raise ValueError(f"access_role must be one of {ROLES[1:]}")
        owner = spec.get("owner") or (email if role == "owner" else f"owner-of-{email}")
        if "@" not in owner:
            owner = f"{owner.replace('@', '.')}@emulator.invalid"
        calendar = self.state.create_calendar(
            owner,
            summary=summary,
            calendar_id=spec.get("id"),
            time_zone=spec.get("time_zone"),
            description=spec.get("description"),
        )
        if owner.lower() != email.lower():
            self.state.share_calendar(calendar.id, email, role)
        return calendar

    async def create_user(self, request: Request) -> Response:
        body = await _body(request)
        email = body.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise ValueError("email is required")
        scopes = body.get("scopes")
        with self.state.lock:
            user = self.state.create_user(
                email, name=body.get("name"), time_zone=body.get("time_zone", "UTC")
            )
            calendars = [
                self._add_calendar(user.email, spec) for spec in body.get("calendars") or []
            ]
            token = self.state.issue_tokens(
                user.email, scopes=tuple(scopes) if isinstance(scopes, list) else FULL_SCOPES
            )
            answer = _token_json(token, self.state.clock.now().timestamp())
            answer["name"] = user.name
            answer["calendars"] = [
                _calendar_json(c, user.email)
                for c in [self.state.calendars[user.email], *calendars]
            ]
        return JSONResponse(answer, status_code=201)

    async def list_users(self, request: Request) -> Response:
        with self.state.lock:
            users = [
                {
                    "email": u.email,
                    "name": u.name,
                    "sub": u.sub,
                    "calendars": {
                        cid: self.state.calendars[cid].role_of(u.email) for cid in u.calendar_list
                    },
                }
                for u in self.state.accounts.users.values()
            ]
        return JSONResponse({"users": users})

    def _existing_user(self, request: Request) -> str:
        email = str(request.path_params["email"]).lower()
        if self.state.accounts.user(email) is None:
            raise KeyError(email)
        return email

    async def user_tokens(self, request: Request) -> Response:
        body = await _body(request)
        scopes = body.get("scopes")
        with self.state.lock:
            email = self._existing_user(request)
            token = self.state.issue_tokens(
                email, scopes=tuple(scopes) if isinstance(scopes, list) else FULL_SCOPES
            )
            return JSONResponse(_token_json(token, self.state.clock.now().timestamp()), 201)

    async def user_consent(self, request: Request) -> Response:
        """What the user ticks on the granular consent screen from now on: ``{"grant":
        [scopes]}`` (Sign-In scopes are always granted, naming them changes nothing);
        ``DELETE`` ticks every box again. Answers ``{"email", "grant"}`` (None: all)."""
        body = {} if request.method == "DELETE" else await _body(request)
        grant = body.get("grant")
        if request.method != "DELETE" and (
            not isinstance(grant, list) or not all(isinstance(s, str) for s in grant)
        ):
            raise ValueError("grant must be a list of scopes")
        with self.state.lock:
            email = self._existing_user(request)
            if grant is None:
                self.state.accounts.consents.pop(email, None)
                return JSONResponse({"email": email, "grant": None})
            ticked = frozenset(canonical_scope(s) for s in grant)
            self.state.accounts.consents[email] = ticked
            return JSONResponse({"email": email, "grant": sorted(ticked)})

    async def user_revoke(self, request: Request) -> Response:
        with self.state.lock:
            email = self._existing_user(request)
            return JSONResponse({"revoked": self.state.accounts.revoke_user(email)})

    async def user_recreate(self, request: Request) -> Response:
        """Delete the account and create a new one with the same email (a new ``sub``)."""
        with self.state.lock:
            email = self._existing_user(request)
            user = self.state.recreate_user(email)
            return JSONResponse({"email": user.email, "name": user.name, "sub": user.sub})

    async def user_calendars(self, request: Request) -> Response:
        body = await _body(request)
        with self.state.lock:
            email = self._existing_user(request)
            calendar = self._add_calendar(email, body)
            return JSONResponse(_calendar_json(calendar, email), status_code=201)

    async def create_calendar(self, request: Request) -> Response:
        body = await _body(request)
        owner, summary = body.get("owner"), body.get("summary")
        if not isinstance(owner, str) or "@" not in owner or not isinstance(summary, str):
            raise ValueError("owner (an email) and summary are required")
        with self.state.lock:
            calendar = self.state.create_calendar(
                owner,
                summary=summary,
                calendar_id=body.get("id"),
                time_zone=body.get("time_zone"),
                description=body.get("description"),
            )
            for email, role in (body.get("share") or {}).items():
                self.state.share_calendar(calendar.id, email, role)
            return JSONResponse(_calendar_json(calendar), status_code=201)

    async def share_calendar(self, request: Request) -> Response:
        body = await _body(request)
        email, role = body.get("email"), body.get("role")
        if not isinstance(email, str) or not isinstance(role, str):
            raise ValueError("email and role are required")
        with self.state.lock:
            calendar = self.state.share_calendar(request.path_params["calendar_id"], email, role)
            return JSONResponse(_calendar_json(calendar, email))

    async def invalidate_sync_tokens(self, request: Request) -> Response:
        with self.state.lock:
            calendar = self.state.calendars.get(request.path_params["calendar_id"])
            if calendar is None:
                raise KeyError(request.path_params["calendar_id"])
            calendar.sync_epoch += 1
            calendar.etag = new_etag()
            return JSONResponse(_calendar_json(calendar))

    async def seed_event(self, request: Request) -> Response:
        """An event Google itself puts in a calendar (Gmail's ``fromGmail``, a contact's
        ``birthday``): the body is the Event resource, any type, made as the owner."""
        body = await _body(request)
        with self.state.lock:
            calendar = self.state.calendars.get(request.path_params["calendar_id"])
            if calendar is None or calendar.deleted:
                raise KeyError(request.path_params["calendar_id"])
            scope = EventScope(calendar, "owner", calendar.owner, self.state.clock.now())
            try:
                stored = event_service.seed_event(scope, body)
            except GoogleApiError as err:
                raise ControlError(err.status, err.message) from None
            self.state.notify_events(calendar.id, stored.resource.get("eventType"))
            return JSONResponse(stored.resource, status_code=201)

    async def add_fault(self, request: Request) -> Response:
        fault = Fault.from_spec(await _body(request))
        with self.state.lock:
            self.state.faults.add(fault)
        return JSONResponse(fault.to_json(), status_code=201)

    async def list_faults(self, request: Request) -> Response:
        with self.state.lock:
            return JSONResponse({"faults": self.state.faults.to_json()})

    async def clear_faults(self, request: Request) -> Response:
        with self.state.lock:
            if "fault_id" in request.path_params:
                if not self.state.faults.remove(request.path_params["fault_id"]):
                    raise KeyError(request.path_params["fault_id"])
            else:
                self.state.faults.clear()
        return JSONResponse({"ok": True})

    async def list_requests(self, request: Request) -> Response:
        filters = dict(request.query_params)
        with self.state.lock:
            entries = self.state.requests.query(filters)
        return JSONResponse({"count": len(entries), "requests": [e.to_json() for e in entries]})

    async def clear_requests(self, request: Request) -> Response:
        with self.state.lock:
            self.state.requests.clear()
        return JSONResponse({"ok": True})

    def _clock_json(self) -> dict[str, Any]:
        clock = self.state.clock
        return {"now": timefmt.utc_millis(clock.now()), "offset_seconds": clock.offset_seconds}

    async def get_clock(self, request: Request) -> Response:
        return JSONResponse(self._clock_json())

    async def advance_clock(self, request: Request) -> Response:
        body = await _body(request)
        seconds = body.get("advance_seconds")
        if not isinstance(seconds, int | float) or seconds < 0:
            raise ValueError("advance_seconds must be a non-negative number")
        self.state.clock.advance(float(seconds))
        return JSONResponse(self._clock_json())

    async def list_channels(self, request: Request) -> Response:
        with self.state.lock:
            now = self.state.clock.now()
            channels = [c.to_json(now) for c in self.state.channels.channels.values()]
        return JSONResponse({"channels": channels})

    async def list_deliveries(self, request: Request) -> Response:
        with self.state.lock:
            deliveries = list(self.state.deliveries)
        return JSONResponse({"deliveries": deliveries})

    async def clear_deliveries(self, request: Request) -> Response:
        with self.state.lock:
            self.state.deliveries.clear()
        return JSONResponse({"ok": True})


def control_routes(state: EmulatorState) -> list[Route]:
    c = Control(state)
    table: list[tuple[str, Endpoint, list[str]]] = [
        ("/emulator/reset", c.reset, ["POST"]),
        ("/emulator/config", c.get_config, ["GET"]),
        ("/emulator/config", c.update_config, ["POST", "PATCH"]),
        ("/emulator/users", c.create_user, ["POST"]),
        ("/emulator/users", c.list_users, ["GET"]),
        ("/emulator/users/{email}/tokens", c.user_tokens, ["POST"]),
        ("/emulator/users/{email}/consent", c.user_consent, ["POST", "DELETE"]),
        ("/emulator/users/{email}/revoke", c.user_revoke, ["POST"]),
        ("/emulator/users/{email}/recreate", c.user_recreate, ["POST"]),
        ("/emulator/users/{email}/calendars", c.user_calendars, ["POST"]),
        ("/emulator/calendars", c.create_calendar, ["POST"]),
        ("/emulator/calendars/{calendar_id}/acl", c.share_calendar, ["POST"]),
        ("/emulator/calendars/{calendar_id}/events", c.seed_event, ["POST"]),
        (
            "/emulator/calendars/{calendar_id}/invalidate-sync-tokens",
            c.invalidate_sync_tokens,
            ["POST"],
        ),
        ("/emulator/faults", c.add_fault, ["POST"]),
        ("/emulator/faults", c.list_faults, ["GET"]),
        ("/emulator/faults", c.clear_faults, ["DELETE"]),
        ("/emulator/faults/{fault_id}", c.clear_faults, ["DELETE"]),
        ("/emulator/requests", c.list_requests, ["GET"]),
        ("/emulator/requests", c.clear_requests, ["DELETE"]),
        ("/emulator/clock", c.get_clock, ["GET"]),
        ("/emulator/clock", c.advance_clock, ["POST"]),
        ("/emulator/channels", c.list_channels, ["GET"]),
        ("/emulator/deliveries", c.list_deliveries, ["GET"]),
        ("/emulator/deliveries", c.clear_deliveries, ["DELETE"]),
    ]
    return [Route(path, _guarded(endpoint), methods=methods) for path, endpoint, methods in table]
