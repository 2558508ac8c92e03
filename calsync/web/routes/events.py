"""The event routes: ``POST/GET /events``, ``GET/PUT/DELETE /events/{id}`` (docs/api.md).

Thin: parse the request (its JSON, headers and query; the body's values are checked by
`calsync.events.changes_input`), run one use case of `calsync.events.writes` or
`calsync.events.targets` (or the list of `calsync.events.listing`) in a worker thread
inside one transaction, render its view, then kick ``push_outbox`` for what changed.
The use cases raise domain errors, which `calsync.web.errors` answers (decision HE2).
Writes answer at once with ``sync_state: pending``; Google is written by the push job,
never from here. ``Idempotency-Key`` is this module's: a replay of an earlier answer.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from calsync.bootstrap import Services
from calsync.domain.accounts import UserAccount
from calsync.domain.errors import FieldErrors, IdempotencyKeyReused, ValidationError
from calsync.events import targets, writes
from calsync.events.changes_input import EventChanges, later_problems, read_changes
from calsync.events.listing import list_bodies
from calsync.events.views import EventView, event_json
from calsync.events.writes import Scope, WriteResult
from calsync.store import idempotency
from calsync.web.auth.principal import read_caller, require_token, require_user
from calsync.web.connections import use_request_connection
from calsync.web.errors import APIError
from calsync.web.json_body import json_response, list_body
from calsync.web.list_query import parse_list_query
from calsync.web.paging import list_scope
from calsync.web.requests import read_json_object, unknown_query

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"


async def create_event(request: Request) -> Response:
    """Create an event; with ``Idempotency-Key`` a repeat gets the first answer."""
    account = require_user(request)
    services: Services = request.app.state.services
    body = await read_json_object(request)
    key = request.headers.get(IDEMPOTENCY_HEADER)
    header_problems = unknown_query(request.query_params)
    if key is not None and not 1 <= len(key) <= idempotency.MAX_KEY_LENGTH:
        header_problems.append(ValidationError(IDEMPOTENCY_HEADER, "1 to 255 characters"))
    changes = _read_body(body, header_problems, require_times=True)
    fingerprint = idempotency.request_fingerprint("POST", "/events", body)

    def run() -> tuple[int, dict[str, Any], tuple[uuid.UUID, ...]]:
        now = services.clock()
        with services.sessions.begin() as session:
            if key is not None:
                saved = _replay(session, account, key, fingerprint)
                if saved is not None:
                    return saved[0], saved[1], ()
            result = writes.create(session, account, changes, now=now)
            assert result.view is not None
            answer = event_json(result.view)
            if key is not None:
                idempotency.save(
                    session,
                    user_id=account.id,
                    key=key,
                    request_hash=fingerprint,
                    status_code=201,
                    body=answer,
                    now=now,
                )
            return 201, answer, result.pushed

    def run_and_kick() -> tuple[int, dict[str, Any], tuple[uuid.UUID, ...]]:
        outcome = run()
        _kick(services, outcome[2])  # after the commit, in this thread: a queue round trip
        return outcome

    try:
        status, answer, _ = await run_in_threadpool(run_and_kick)
    except IntegrityError:
        if key is None:
            raise
        # A concurrent request with the same key won the race: answer as it did.
        saved = await run_in_threadpool(_replay_new_session, services, account, key, fingerprint)
        if saved is None:
            raise
        status, answer = saved[0], saved[1]
    headers = {"ETag": answer["etag"], "Location": f"/events/{answer['id']}"}
    return JSONResponse(answer, status_code=status, headers=headers)


def _replay(
    session: Session, account: UserAccount, key: str, fingerprint: str
) -> tuple[int, dict[str, Any]] | None:
    saved = idempotency.find(session, account.id, key)
    if saved is None:
        return None
    if saved.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request body",
            [ValidationError(IDEMPOTENCY_HEADER, "new body", issue="reused")],
        )
    return saved.status_code, saved.body


def _replay_new_session(
    services: Services, account: UserAccount, key: str, fingerprint: str
) -> tuple[int, dict[str, Any]] | None:
    with services.sessions() as session:
        return _replay(session, account, key, fingerprint)


async def list_events(request: Request) -> Response:
    """The caller's events, filtered, ordered by start, one page at a time.

    The caller's account is read in this route's worker thread, before the query is
    read (it is in the caller's zone) and the page: one thread hop a request (decision
    HU1; `calsync.web.app.ACCOUNT_IN_ROUTE`)."""
    require_token(request)
    services: Services = request.app.state.services
    await use_request_connection(services.engine)  # its permit, on the loop (U1)

    def run() -> bytes:
        account = read_caller(request)
        query = parse_list_query(
            request.query_params,
            user_zone=account.timezone or "UTC",
            scope=list_scope("events", account.id, request.query_params),
        )
        with services.sessions() as session:
            bodies, cursor = list_bodies(session, account.id, query)
        return list_body(bodies, cursor)

    return json_response(await run_in_threadpool(run))


async def get_event(request: Request) -> Response:
    """One event, series master or instance (by instance id)."""
    account = require_user(request)
    services: Services = request.app.state.services
    api_id = request.path_params["event_id"]

    def run() -> EventView:
        with services.sessions() as session:
            return targets.shown(session, account, api_id)

    answer = event_json(await run_in_threadpool(run))
    return JSONResponse(answer, headers={"ETag": answer["etag"]})


def _read_body(
    body: dict[str, Any], earlier: list[ValidationError], *, require_times: bool
) -> EventChanges:
    """`read_changes` of `body`; one `FieldErrors` names `earlier` problems (of the
    headers or the query) and the body's together."""
    try:
        changes = read_changes(body, require_times=require_times)
    except FieldErrors as err:
        if not earlier:
            raise
        raise FieldErrors([*earlier, *err.problems]) from None
    if earlier:
        later = later_problems(changes.given, skip=set(), new=require_times)
        raise FieldErrors([*earlier, *later])
    return changes


def _scope_problems(request: Request) -> list[ValidationError]:
    """The problems of the ``scope`` query (and of unknown parameters)."""
    problems = unknown_query(request.query_params, {"scope"})
    if request.query_params.get("scope", "this") not in {s.value for s in Scope}:
        problems.append(ValidationError("scope", "this or following"))
    return problems


def _scope(request: Request) -> Scope:
    problems = _scope_problems(request)
    if problems:
        raise FieldErrors(problems)
    return Scope(request.query_params.get("scope", "this"))


async def update_event(request: Request) -> Response:
    """Change an event; ``If-Match`` guards against lost updates (412)."""
    account = require_user(request)
    services: Services = request.app.state.services
    problems = _scope_problems(request)
    try:
        body = await read_json_object(request)
    except APIError:
        if problems:  # the query's problems come first, as they always did
            raise FieldErrors(problems) from None
        raise
    changes = _read_body(body, problems, require_times=False)
    scope = Scope(request.query_params.get("scope", "this"))
    if_match = request.headers.get("if-match")
    api_id = request.path_params["event_id"]

    result = await _write(
        services,
        lambda session, now: writes.update(
            session, account, api_id, changes, if_match=if_match, scope=scope, now=now
        ),
    )
    assert result.view is not None
    answer = event_json(result.view)
    return JSONResponse(answer, headers={"ETag": answer["etag"]})


async def delete_event(request: Request) -> Response:
    """Delete an event or series, cancel an instance, or end a series (scope=following)."""
    account = require_user(request)
    services: Services = request.app.state.services
    scope = _scope(request)
    if_match = request.headers.get("if-match")
    api_id = request.path_params["event_id"]
    await _write(
        services,
        lambda session, now: writes.delete(
            session, account, api_id, if_match=if_match, scope=scope, now=now
        ),
    )
    return Response(status_code=204)


async def _write(
    services: Services, use_case: Callable[[Session, datetime], WriteResult]
) -> WriteResult:
    """Run `use_case` in one transaction, and once more in a new one if a row it
    inserted collided with one a concurrent writer stored since it read (a unique key):
    a pull that stored Google's exception of the instance this request changes, found
    by the second run, which then edits it or answers 412 to a stale ``If-Match``. The
    use case only writes the database, so a rolled-back first run leaves nothing."""

    def run() -> WriteResult:
        try:
            with services.sessions.begin() as session:
                result = use_case(session, services.clock())
        except IntegrityError:
            log.info("a concurrent write stored the same row first; running the write again")
            with services.sessions.begin() as session:
                result = use_case(session, services.clock())
        _kick(services, result.pushed)  # after the commit, in this thread: a queue round trip
        return result

    return await run_in_threadpool(run)


def _kick(services: Services, event_ids: tuple[uuid.UUID, ...]) -> None:
    """Ask a worker to push now; if the broker is down the scheduler's sweep will.
    Blocking (a Redis round trip each): call it from a worker thread, never the loop."""
    for event_id in event_ids:
        try:
            services.jobs.push_outbox.send(str(event_id))
        except Exception:
            log.warning("could not enqueue push_outbox; the outbox sweep will", exc_info=True)
