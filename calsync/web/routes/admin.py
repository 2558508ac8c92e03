"""Admin routes: list users, change a role, read the audit trail."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from calsync.bootstrap import Services
from calsync.domain.accounts import Role, UserAccount
from calsync.store import audit
from calsync.store.tables import User
from calsync.store.users import to_account
from calsync.web.auth.principal import require_admin
from calsync.web.errors import APIError
from calsync.web.requests import read_json_object, reject_unknown_fields
from calsync.web.serializers import account_json

MAX_PAGE = 200


async def list_users(request: Request) -> Response:
    """Every user, by email (admins only)."""
    require_admin(request)
    services: Services = request.app.state.services

    def load() -> list[UserAccount]:
        with services.sessions() as session:
            rows = session.scalars(sa.select(User).order_by(User.email).limit(MAX_PAGE))
            return [to_account(row) for row in rows]

    return JSONResponse({"users": [account_json(a) for a in await run_in_threadpool(load)]})


async def update_user(request: Request) -> Response:
    """Change a user's role (admins only); the change is audited."""
    admin = require_admin(request)
    services: Services = request.app.state.services
    body = await read_json_object(request)
    reject_unknown_fields(body, allowed={"role"})
    try:
        role = Role(str(body.get("role")))
    except ValueError:
        raise APIError(
            422, "role must be admin or user", details=[{"field": "role", "issue": "invalid"}]
        ) from None
    user_id = _user_id(request)

    def change() -> UserAccount | None:
        with services.sessions.begin() as session:
            row = session.get(User, user_id, with_for_update=True)
            if row is None:
                return None
            if row.role != role.value:
                audit.record(
                    session,
                    audit.AuditAction.ROLE_CHANGED,
                    actor_id=admin.id,
                    subject_id=row.id,
                    details={"from": row.role, "to": role.value},
                )
                row.role = role.value
            session.flush()
            return to_account(row)

    account = await run_in_threadpool(change)
    if account is None:
        raise APIError(404, "no such user")
    return JSONResponse(account_json(account))


async def list_audit_events(request: Request) -> Response:
    """The newest audit events (admins only)."""
    require_admin(request)
    services: Services = request.app.state.services

    def load() -> list[dict[str, Any]]:
        with services.sessions() as session:
            return [
                {
                    "id": str(event.id),
                    "occurred_at": event.occurred_at.isoformat(),
                    "action": event.action,
                    "actor_id": str(event.actor_id) if event.actor_id else None,
                    "subject_id": str(event.subject_id) if event.subject_id else None,
                    "remote_addr": event.remote_addr,
                    "details": event.details or {},
                }
                for event in audit.recent(session, limit=MAX_PAGE)
            ]

    return JSONResponse({"events": await run_in_threadpool(load)})


def _user_id(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params["user_id"])
    except ValueError:
        raise APIError(404, "no such user") from None
