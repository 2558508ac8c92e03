"""Records logged while answering a signed-in caller carry the caller's user id."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from calsync.domain.accounts import AccountStatus, Role, UserAccount
from calsync.logs import ContextFilter
from calsync.web.app import UserLogContextMiddleware
from calsync.web.auth.principal import Principal

ALICE = UserAccount(uuid.uuid4(), "alice@example.com", Role.USER, AccountStatus.ACTIVE)
log = logging.getLogger("tests.request")


class SignedIn:
    """Stands in for authentication: the caller is Alice when the header says so."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (b"x-user", b"alice") in scope.get("headers", []):
            scope["user"] = Principal(ALICE)
        await self.app(scope, receive, send)


def handler(_request: Request) -> PlainTextResponse:  # sync: runs in the thread pool
    log.info("answering")
    return PlainTextResponse("ok")


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    kept: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kept.append(record)

    handler_ = Keep()
    handler_.addFilter(ContextFilter())
    log.addHandler(handler_)
    log.setLevel(logging.INFO)
    yield kept
    log.removeHandler(handler_)


def test_a_signed_in_callers_records_carry_their_id(records: list[logging.LogRecord]) -> None:
    app = Starlette(routes=[Route("/me", handler)])
    app.add_middleware(UserLogContextMiddleware)
    app.add_middleware(SignedIn)

    with TestClient(app) as client:
        client.get("/me", headers={"x-user": "alice"})
        client.get("/me")

    signed_in, anonymous = records
    assert signed_in.user_id == str(ALICE.id)  # type: ignore[attr-defined]
    assert getattr(anonymous, "user_id", None) is None
