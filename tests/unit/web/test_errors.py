"""The API's error handlers: unreachable PostgreSQL or Redis is 503 + Retry-After, never 500.

A tiny Starlette app with calsync's handlers raises each kind of failure from a route and
from a middleware (where authentication loads the caller from the database).
"""

from __future__ import annotations

import psycopg
import pytest
from dramatiq.errors import BrokerConnectionError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from calsync.web.errors import (
    EXCEPTION_HANDLERS,
    RETRY_AFTER_SECONDS,
    UnavailableDependencyMiddleware,
    unavailable_dependency,
)


def _db_down() -> OperationalError:
    return OperationalError(
        "SELECT 1", {}, psycopg.OperationalError("connection refused: is the server running?")
    )


def _invalidated() -> DBAPIError:
    return DBAPIError(
        "SELECT 1", {}, Exception("server closed the connection"), connection_invalidated=True
    )


def _wrapped_db_down() -> RuntimeError:
    try:
        raise _db_down()
    except OperationalError as err:
        try:
            raise RuntimeError("loading the caller failed") from err
        except RuntimeError as wrapped:
            return wrapped


FAILURES: dict[str, tuple[BaseException, int, str]] = {
    "operational": (_db_down(), 503, "database"),
    "invalidated": (_invalidated(), 503, "database"),
    "pool_timeout": (PoolTimeout("QueuePool limit reached"), 503, "database"),
    "wrapped": (_wrapped_db_down(), 503, "database"),
    "redis_down": (RedisConnectionError("Connection refused"), 503, "queue"),
    "redis_timeout": (RedisTimeoutError("Timeout reading from socket"), 503, "queue"),
    "broker_down": (BrokerConnectionError("lost the broker"), 503, "queue"),  # type: ignore[no-untyped-call]
    "integrity": (IntegrityError("INSERT", {}, Exception("duplicate key")), 500, ""),
    "bug": (ZeroDivisionError("division by zero"), 500, ""),
}


class FailingMiddleware:
    """Raises the failure named by ``?fail=`` before the app runs, as auth would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/middleware":
            name = scope["query_string"].decode().removeprefix("fail=")
            raise FAILURES[name][0]
        await self.app(scope, receive, send)


async def failing_route(request: Request) -> Response:
    raise FAILURES[request.query_params["fail"]][0]


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = Starlette(
        routes=[Route("/route", failing_route), Route("/middleware", failing_route)],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.add_middleware(FailingMiddleware)
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("where", ["route", "middleware"])
@pytest.mark.parametrize("name", sorted(FAILURES))
def test_unreachable_dependencies_answer_503_with_retry_after(
    client: TestClient, where: str, name: str
) -> None:
    _exc, status, what = FAILURES[name]
    response = client.get(f"/{where}", params={"fail": name})
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    if status == 503:
        assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
        assert body["error"]["code"] == "unavailable"
        assert what in body["error"]["message"]
    else:
        assert "retry-after" not in response.headers
        assert body["error"] == {
            "code": "internal_error",
            "message": "internal error",
            "details": [],
        }
    assert "refused" not in response.text  # the driver's message is never shown


def _bug_while_handling_a_db_error() -> None:
    try:
        raise _db_down()
    except OperationalError:
        raise ValueError("a bug in an except block")  # noqa: B904 - implicit on purpose


def test_unavailable_dependency_follows_explicit_causes_only() -> None:
    assert unavailable_dependency(_wrapped_db_down()) == "database"
    with pytest.raises(ValueError, match="bug") as caught:
        _bug_while_handling_a_db_error()
    assert isinstance(caught.value.__context__, OperationalError)
    assert unavailable_dependency(caught.value) is None
    assert unavailable_dependency(KeyError("x")) is None


@pytest.fixture(scope="module")
def guarded() -> TestClient:
    """As calsync's app: the middleware outside the one that fails. The client re-raises
    any exception that escapes the app, so a 503 here means nothing was re-raised."""
    app = Starlette(
        routes=[Route("/route", failing_route), Route("/middleware", failing_route)],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.add_middleware(FailingMiddleware)
    app.add_middleware(UnavailableDependencyMiddleware)
    return TestClient(app, raise_server_exceptions=True)


@pytest.mark.parametrize("name", [n for n, (_e, status, _w) in FAILURES.items() if status == 503])
def test_the_middleware_answers_503_without_re_raising(guarded: TestClient, name: str) -> None:
    for where in ("route", "middleware"):
        response = guarded.get(f"/{where}", params={"fail": name})
        assert response.status_code == 503
        assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
        assert response.json()["error"]["code"] == "unavailable"


def test_the_middleware_lets_other_errors_through(guarded: TestClient) -> None:
    with pytest.raises(ZeroDivisionError):
        guarded.get("/middleware", params={"fail": "bug"})
