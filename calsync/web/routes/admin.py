"""Admin routes: list users, change a role or status, release a user's email, read the audit
trail."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from calsync.bootstrap import Services
from calsync.domain.accounts import AccountStatus, Role, UserAccount
from calsync.store import audit, keyset, user_calendars, users
from calsync.store.tables import User
from calsync.store.users import to_account
from calsync.sync.connect import queue_pulls
from calsync.web import paging
from calsync.web.auth.principal import require_admin
from calsync.web.errors import APIError
from calsync.web.requests import invalid_fields, read_json_object, unknown_fields
from calsync.web.serializers import account_json


async def list_users(request: Request) -> Response:
    """The users by email, one page at a time (admins only): ``limit``, ``cursor``."""
    require_admin(request)
    services: Services = request.app.state.services
    params = request.query_params
    paging.reject_unknown_params(params, ())
    limit = paging.page_size(params)
    scope = paging.list_scope("users", None, params)
    after = paging.read_name_cursor(params, scope)

    def load() -> list[UserAccount]:
        with services.sessions() as session:
            return users.list_accounts(session, limit=limit + 1, after_email=after)

    found = await run_in_threadpool(load)
    page, more = found[:limit], len(found) > limit
    cursor = keyset.encode_name(page[-1].email, scope=scope) if more else None
    return JSONResponse({"users": [account_json(a) for a in page], "next_cursor": cursor})


async def update_user(request: Request) -> Response:
    """Change a user's role and/or status (admins only); each change is audited.

    ``status``: ``disabled`` stops the user's pulls, pushes, channels and notices (the
    channel sweep is kicked to stop their channels now); ``active`` resumes them (the
    sweep opens their channels again and their calendars are pulled). ``needs_reauth``
    is not set by hand: only Google's refusal sets it, and signing in clears it.
    """
    admin = require_admin(request)
    services: Services = request.app.state.services
    body = await read_json_object(request)
    details = unknown_fields(body, allowed={"role", "status"}, query=request.query_params)
    role = _choice(body, "role", Role, "must be admin or user", details)
    status = _choice(body, "status", _SettableStatus, "must be active or disabled", details)
    if details:
        # Every bad field in one answer; a lone bad choice keeps its own message.
        if len(details) == 1 and details[0]["issue"] == "invalid":
            raise APIError(422, f"{details[0]['field']} {details[0]['message']}", details=details)
        raise invalid_fields(details)
    if role is None and status is None:
        raise APIError(422, "give role or status", details=[{"field": "role", "issue": "required"}])
    user_id = _user_id(request)

    def change() -> tuple[UserAccount, bool] | None:
        with services.sessions.begin() as session:
            row = users.locked_row(session, user_id)
            if row is None:
                return None
            if role is not None and row.role != role.value:
                _audited(session, row, admin.id, audit.AuditAction.ROLE_CHANGED, "role", role)
                row.role = role.value
            status_changed = status is not None and row.status != status.value
            if status is not None and status_changed:
                _audited(session, row, admin.id, audit.AuditAction.STATUS_CHANGED, "status", status)
                row.status = status.value
            session.flush()
            return to_account(row), status_changed

    changed = await run_in_threadpool(change)
    if changed is None:
        raise APIError(404, "no such user")
    account, status_changed = changed
    if status_changed:
        await run_in_threadpool(_status_took_effect, services, account)
    return JSONResponse(account_json(account))


class _SettableStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


_E = TypeVar("_E", bound=StrEnum)


def _choice(
    body: dict[str, Any], field: str, kind: type[_E], message: str, details: list[dict[str, str]]
) -> _E | None:
    """The value of `field` (None when left out); a bad one is added to `details`."""
    if field not in body:
        return None
    try:
        return kind(str(body[field]))
    except ValueError:
        details.append({"field": field, "issue": "invalid", "message": message})
        return None


def _audited(
    session: Any, row: User, admin_id: uuid.UUID, action: audit.AuditAction, field: str, to: StrEnum
) -> None:
    audit.record(
        session,
        action,
        actor_id=admin_id,
        subject_id=row.id,
        details={"from": getattr(row, field), "to": to.value},
    )


def _status_took_effect(services: Services, account: UserAccount) -> None:
    """Kick the channel sweep (it stops a disabled user's channels and opens an enabled
    user's), and pull an enabled user's calendars now. Best effort: the scheduler's
    sweeps do the same on their own schedule."""
    services.jobs.renew_channels.send()
    if account.status is AccountStatus.ACTIVE:
        with services.sessions() as session:
            calendar_ids = user_calendars.selected_ids(session, account.id)
        queue_pulls(services, calendar_ids)


async def release_email(request: Request) -> Response:
    """Detach a user from their email and disable them (admins only; audited): the
    decision that the Google account refused at sign-in with that email (409
    ``email_of_another_account``) is someone else, who may now sign in as a new user.
    The released user keeps their data (see :func:`calsync.store.users.release_email`).
    An admin cannot release themselves."""
    admin = require_admin(request)
    services: Services = request.app.state.services
    user_id = _user_id(request)
    if user_id == admin.id:
        raise APIError(409, "an admin cannot release their own email", code="own_account")

    def release() -> UserAccount | None:
        with services.sessions.begin() as session:
            released = users.release_email(session, user_id)
            if released is None:
                return None
            email, account = released
            audit.record(
                session,
                audit.AuditAction.EMAIL_RELEASED,
                actor_id=admin.id,
                subject_id=account.id,
                details={"email": email, "now": account.email},
            )
            return account

    account = await run_in_threadpool(release)
    if account is None:
        raise APIError(404, "no such user")
    await run_in_threadpool(_status_took_effect, services, account)  # stop their channels
    return JSONResponse(account_json(account))


async def list_audit_events(request: Request) -> Response:
    """The audit events, newest first, one page at a time (admins only): ``limit``,
    ``cursor``, ``action``."""
    require_admin(request)
    services: Services = request.app.state.services
    params = request.query_params
    paging.reject_unknown_params(params, {"action"})
    limit = paging.page_size(params)
    action = paging.one_of(params, "action", (a.value for a in audit.AuditAction))
    scope = paging.list_scope("audit", None, params)
    position = paging.read_cursor(params, scope)
    before = None
    if position is not None:
        try:
            before = position[0], uuid.UUID(position[1])
        except ValueError:
            raise paging.invalid("cursor", "is not a cursor this API gave out") from None

    def load() -> tuple[list[dict[str, Any]], str | None]:
        with services.sessions() as session:
            found = audit.recent(session, limit=limit + 1, before=before, action=action)
            page = found[:limit]
            cursor = None
            if len(found) > limit:
                cursor = paging.next_cursor(scope, page[-1].occurred_at, str(page[-1].id))
            return [
                {
                    "id": str(event.id),
                    "occurred_at": event.occurred_at.isoformat(),
                    "action": event.action,
                    "actor_id": str(event.actor_id) if event.actor_id else None,
                    "subject_id": str(event.subject_id) if event.subject_id else None,
                    "remote_addr": event.remote_addr,
                    "details": event.details or {},
                    "count": event.count,
                }
                for event in page
            ], cursor

    events, cursor = await run_in_threadpool(load)
    return JSONResponse({"events": events, "next_cursor": cursor})


def _user_id(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params["user_id"])
    except ValueError:
        raise APIError(404, "no such user") from None
