"""``create_emulator_app``: the emulator as one Starlette application.

Routes: Calendar API v3 (``/calendar/v3``), batch (``/batch/calendar/v3``), OAuth 2.0
(``/o/oauth2/auth``, ``/token``, ``/revoke``, userinfo) and the control API
(``/emulator/``). Everything but the control API passes the ``FrontEnd`` (faults,
latency, resets, request log); with a state file, every request that may change the world
passes ``Persisting`` too. The push dispatcher thread runs for the app's lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from calsync.emulator.batch import batch_routes
from calsync.emulator.calendar_api import calendar_routes
from calsync.emulator.control import control_routes
from calsync.emulator.frontend import FrontEnd
from calsync.emulator.oauth import oauth_routes
from calsync.emulator.persistence import Persisting, StateFile
from calsync.emulator.push import PushDispatcher
from calsync.emulator.state import EmulatorState


class EmulatorApp(Starlette):
    """A Starlette app that runs every request through the emulator's ``FrontEnd``.

    The front end sits outside Starlette's own middleware so that it sees the server's
    raw ``send`` (needed to reset connections).
    """

    def __init__(
        self,
        emulator_state: EmulatorState,
        routes: list[BaseRoute],
        *,
        state_file: StateFile | None = None,
    ) -> None:
        dispatcher = PushDispatcher(emulator_state)

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            dispatcher.start()
            try:
                yield
            finally:
                dispatcher.stop()

        super().__init__(routes=routes, lifespan=lifespan)
        self.emulator_state = emulator_state
        self.push_dispatcher = dispatcher
        self._front_end: ASGIApp = FrontEnd(self._route, emulator_state)
        if state_file is not None:
            self._front_end = Persisting(self._front_end, emulator_state, state_file)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._front_end(scope, receive, send)


async def _index(request: Request) -> Response:
    return JSONResponse(
        {
            "emulator": "calsync Google Calendar API v3 + OAuth 2.0 emulator",
            "api_endpoint": str(request.base_url) + "calendar/v3/",
            "control": str(request.base_url) + "emulator/",
        }
    )


def create_emulator_app(
    state: EmulatorState | None = None, *, state_file: StateFile | None = None
) -> Starlette:
    """A new emulator app over ``state`` (a fresh one when None). No I/O until served;
    with ``state_file``, every change is saved there before it is answered (the caller
    loads the file into ``state`` first)."""
    emulator_state = state or EmulatorState()
    routes: list[BaseRoute] = [
        Route("/", _index, methods=["GET"]),
        *calendar_routes(emulator_state),
        *batch_routes(),
        *oauth_routes(emulator_state),
        *control_routes(emulator_state),
    ]
    return EmulatorApp(emulator_state, routes, state_file=state_file)
