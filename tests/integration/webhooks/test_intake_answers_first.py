"""``POST /webhooks/google`` never reaches the API's router: the intake middleware answers
every such request, whatever it carries (issue 20: the Starlette route that served the
path could never run, and is gone). On SQLite with the in-process broker and on
PostgreSQL with Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx2 as httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from calsync.bootstrap import Services, bootstrap
from calsync.sync.channels import channel_token
from calsync.threaded_server import ThreadedServer
from calsync.web.app import create_app
from calsync.web.notification_intake import MAX_BODY_BYTES, PATH
from calsync.web.openapi import build_document
from tests.integration.webhooks.conftest import RESOURCE, seed
from tests.migrated import upgrade

pytestmark = pytest.mark.integration


@dataclass
class Served:
    services: Services
    url: str
    ids: dict[str, uuid.UUID]
    #: the requests that reached the router's route for the path
    reached: list[str]

    def headers(self, state: str = "exists", channel: str = "channel_id") -> dict[str, str]:
        channel_id = str(self.ids[channel])
        return {
            "X-Goog-Channel-ID": channel_id,
            "X-Goog-Channel-Token": channel_token(
                self.services.settings.encryption_keys, channel_id
            ),
            "X-Goog-Resource-ID": RESOURCE,
            "X-Goog-Resource-State": state,
        }


@pytest.fixture(params=["embedded", "production"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    """The API app with a route planted at the intake's path, which records what reaches
    it (the deleted route stood there)."""
    services = bootstrap(request.getfixturevalue(f"{request.param}_settings"))
    upgrade(services.engine)
    ids = seed(services)
    app = create_app(services)
    reached: list[str] = []

    async def planted(request: Request) -> Response:
        reached.append(request.headers.get("X-Goog-Resource-State", ""))
        return Response(status_code=418)

    app.router.routes.insert(0, Route(PATH, planted, methods=["POST"]))
    with ThreadedServer(app, name="calsync-intake") as server:
        yield Served(services, server.url, ids, reached)
    services.close()


def test_every_notification_is_answered_before_routing(served: Served) -> None:
    forged = served.headers() | {"X-Goog-Channel-Token": "not-the-token"}
    cases = [
        ("a change", served.headers("exists"), b"", 202),
        ("the handshake", served.headers("sync"), b"", 200),
        ("a calendar-list change", served.headers("exists", "list_channel_id"), b"", 202),
        ("a stopped channel", served.headers("exists", "stopped_channel_id"), b"", 200),
        (
            "an unknown channel",
            served.headers() | {"X-Goog-Channel-ID": str(uuid.uuid4())},
            b"",
            200,
        ),
        ("a forged token", forged, b"", 200),
        ("no headers", {}, b"", 400),
        ("a body", served.headers(), b"x" * 10, 202),
        ("a body too big", served.headers(), b"x" * (MAX_BODY_BYTES + 1), 413),
    ]
    with httpx.Client(base_url=served.url, timeout=20) as client:
        answers = {
            name: client.post(PATH, headers=headers, content=body).status_code
            for name, headers, body, _ in cases
        }
    assert answers == {name: status for name, _, _, status in cases}
    assert served.reached == []


def test_the_api_routes_nothing_at_the_path_and_still_documents_it(served: Served) -> None:
    app = create_app(served.services)
    assert [r for r in app.routes if getattr(r, "path", None) == PATH] == []
    document = build_document(app.routes)
    assert "post" in document["paths"][PATH]
    assert "x-undocumented" not in document["paths"][PATH]["post"]
