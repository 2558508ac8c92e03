"""What the API's request pipeline costs, part by part: the CPU of a signed-in request
with no route work, of one thread hop, of a session's one statement, next to a week read
and a create, and what leaving out each part of authentication saves. Prints figures
only (issue 21; decisions HM1-HM3, HT1).

Run: ``.venv/bin/python -m tests.perf.cpu_per_route --seed-data --database NAME`` once
(the data), then ``.venv/bin/python -m tests.perf.request_costs --database NAME
[--batches 10] [--per-batch 100] [--no-creates] [--only CASE ...] [--no-analyse]``
(``--only``: the named cases alone, e.g. ``--only create``; each case also prints its
statements a request). Before its batches it analyses the database, as autovacuum would
after the seeding and the creates earlier runs left (decisions IM3, IP1; ``--no-analyse``:
not, as every run before IP1).

One process, production mode (PostgreSQL, Redis), each request one call of the ASGI app
(`tests.perf.cpu_per_route.call`: no socket, no server), timed with `time.process_time`
(every thread of the process). The cases run in alternating batches, so that a change in
the machine's load falls on all of them alike (a month page, 200 instances of the seeded
calendar's user, runs half as many a batch). Three routes exist only here (added to the
app this script builds): ``/x/auth`` answers the caller's id from the loop, ``/x/hop``
adds one `run_in_threadpool` of nothing, ``/x/session`` one session's ``SELECT 1`` in it.

The "leaving out" cases patch the app's classes for their batch only: the rate-limit hit
answered without Redis, the account read answered from a per-process dictionary, and
both with authentication's thread call run inline (no hop). They are what the parts
cost, not something calsync could do as it is (decisions HM1-HM2 say why). Since
decision HU1 ``GET /events`` reads its caller in the route's thread: authentication has
no thread call of its own there, so "no hop" leaves nothing out of a week read.

Creates run at three distances (60-300 days ahead, 8-27 days, within two days: the
seeded calendar's user, whose week is not read), each also "before HT1": the new event's
reminders replanned by reading as before decision HT1, patched in for its batches; and
as `bench_api_load` sends them ("create, the load's": `tests.perf.load_wrk`'s body,
tomorrow on the hour, the same for every user, by a random user of the load; decision
IF1 found that the load's creates are these, with reminders to plan, not far ones).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import calsync
import calsync.events.write_steps as write_steps
import calsync.web.auth.principal as principal
from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.notify.on_event_change import reschedule_reminders
from calsync.store.db import api_pool
from calsync.token_buckets import Bucket, RateDecision
from calsync.web.app import create_app
from calsync.web.auth.principal import JWTAuthBackend, require_user
from calsync.web.limits import RedisRateLimitBackend
from tests.perf.bench_months import add_analyse_flag, analyse
from tests.perf.cpu_per_route import _environment, _requests, _state_file, call
from tests.perf.load_wrk import CREATE_SUMMARY
from tests.perf.process_cpu import backends, tree_cpu
from tests.perf.statement_cpu import per_statement

Make = Callable[[random.Random], tuple[Any, ...]]


def probe_routes(services: Services) -> list[Route]:
    """The three routes of this script (see the module docstring)."""

    async def auth_only(request: Request) -> Response:
        return JSONResponse({"id": str(require_user(request).id)})

    async def one_hop(request: Request) -> Response:
        account = require_user(request)
        await run_in_threadpool(lambda: None)
        return JSONResponse({"id": str(account.id)})

    async def one_statement(request: Request) -> Response:
        account = require_user(request)

        def run() -> Any:
            with services.sessions() as session:
                return session.execute(sa.text("SELECT 1")).scalar()

        await run_in_threadpool(run)
        return JSONResponse({"id": str(account.id)})

    return [
        Route("/x/auth", auth_only, methods=["GET"]),
        Route("/x/hop", one_hop, methods=["GET"]),
        Route("/x/session", one_statement, methods=["GET"]),
    ]


@contextmanager
def left_out(
    *,
    limit_hit: bool = False,
    account_read: bool = False,
    hop: bool = False,
    reread_reminders: bool = False,
) -> Iterator[None]:
    """Authentication with the named parts left out, for the block (see the docstring);
    `reread_reminders`: a create's reminders replanned as before HT1 (by reading the row,
    the owner's zone and preferences and the pending reminders), for comparison."""
    saved = (
        RedisRateLimitBackend.hit_all,
        JWTAuthBackend._load,
        principal.__dict__["run_in_threadpool"],
        write_steps.plan_new_reminders,
    )
    accounts: dict[str, Any] = {}
    real_load = JWTAuthBackend._load

    async def allowed(_self: Any, _buckets: list[Bucket], *, cost: int = 1) -> RateDecision:
        return RateDecision(True, 1_000, 0.0, None, 0)

    def remembered(self: JWTAuthBackend, subject: str, held: Any = None) -> Any:
        if subject not in accounts:
            accounts[subject] = real_load(self, subject, held)
        return accounts[subject]

    async def inline(func: Callable[..., Any], *args: Any) -> Any:
        return func(*args)

    try:
        if limit_hit:
            RedisRateLimitBackend.hit_all = allowed  # type: ignore[method-assign,assignment]
        if account_read:
            JWTAuthBackend._load = remembered  # type: ignore[method-assign]
        if hop:
            setattr(principal, "run_in_threadpool", inline)  # noqa: B010
        if reread_reminders:
            write_steps.plan_new_reminders = reread
        yield
    finally:
        RedisRateLimitBackend.hit_all, JWTAuthBackend._load = saved[0], saved[1]  # type: ignore[method-assign]
        setattr(principal, "run_in_threadpool", saved[2])  # noqa: B010
        write_steps.plan_new_reminders = saved[3]


def reread(session: Any, stored: Any, *, now: Any) -> None:
    """A new event's reminders replanned as any changed event's are (before HT1)."""
    reschedule_reminders(session, stored.id, now=now)


def near_create(state: dict[str, Any], first: int, last: int) -> Make:
    """A create of the seeded calendar's user (``month_token``: not a user whose week
    is read) that starts `first` to `last` days and some hours from now."""

    def make(rng: random.Random) -> tuple[Any, ...]:
        start = datetime.now(UTC) + timedelta(
            days=rng.randint(first, last), hours=rng.randint(3, 20)
        )
        event = {
            "title": "request-costs",
            "start_time": start.isoformat(timespec="seconds"),
            "end_time": (start + timedelta(minutes=30)).isoformat(timespec="seconds"),
        }
        return "POST", "/events", state["month_token"], json.dumps(event).encode()

    return make


def load_create(state: dict[str, Any]) -> Make:
    """`bench_api_load`'s create (`tests.perf.load_wrk.wrk_script`'s body: tomorrow on
    the hour, 30 minutes), by a random user of the load."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    event = {
        "title": CREATE_SUMMARY,
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(minutes=30)).isoformat(),
    }
    body = json.dumps(event).encode()
    return lambda rng: ("POST", "/events", rng.choice(state["tokens"]), body)


def cases(state: dict[str, Any]) -> dict[str, tuple[Make, dict[str, bool]]]:
    """Each case: its request and the parts it leaves out."""
    routes = _requests(state)
    tokens = state["tokens"]

    def probe(path: str) -> Make:
        return lambda rng: ("GET", path, rng.choice(tokens), b"")

    week, empty = routes["GET /events week"], probe("/x/auth")
    far, month, soon = routes["POST /events"], near_create(state, 8, 27), near_create(state, 0, 1)
    before = {"reread_reminders": True}
    return {
        "GET /healthz (no token)": (routes["GET /healthz"], {}),
        "signed in, empty route": (empty, {}),
        "  + one thread hop": (probe("/x/hop"), {}),
        "  + one session's SELECT 1 in it": (probe("/x/session"), {}),
        "week read (expand=true)": (week, {}),
        "month page of 200 (expand=true)": (routes["GET /events month page"], {}),
        "create, the load's": (load_create(state), {}),
        "create": (far, {}),
        "create, before HT1": (far, before),
        "create 8-27 days ahead": (month, {}),
        "create 8-27 days ahead, before HT1": (month, before),
        "create within 2 days": (soon, {}),
        "create within 2 days, before HT1": (soon, before),
        "signed in, no rate-limit hit": (empty, {"limit_hit": True}),
        "signed in, no account read": (empty, {"account_read": True}),
        "signed in, neither, no hop": (
            empty,
            dict.fromkeys(("limit_hit", "account_read", "hop"), True),
        ),
        "week read, no rate-limit hit": (week, {"limit_hit": True}),
        "week read, no account read": (week, {"account_read": True}),
        "week read, neither, no hop": (
            week,
            dict.fromkeys(("limit_hit", "account_read", "hop"), True),
        ),
    }


def backend_cpu(engine: sa.Engine, database: str) -> float:
    """The CPU so far of the database's backends (those of this process's pool)."""
    return sum(tree_cpu(pid, {}) for pid in backends(engine, database))


async def run(
    database: str,
    batches: int,
    per_batch: int,
    only: list[str],
    creates: bool = True,
    statements: bool = False,
    analysed: bool = True,
) -> None:
    state = json.loads(_state_file(database).read_text())
    redis.Redis.from_url(state["redis"]).flushdb()
    settings = Settings.from_env(_environment("http://127.0.0.1:9", state))
    services = bootstrap(settings, pool=api_pool(settings.api_threads))  # as `calsync serve`
    analyse(services, analysed)  # as autovacuum would (decisions IM3, IP1)
    app: Any = create_app(services)
    app.router.routes[:0] = probe_routes(services)
    table = {
        name: case
        for name, case in cases(state).items()
        if (creates or not name.startswith("create"))
        and (not only or any(name.strip() == wanted for wanted in only))
    }
    spent = dict.fromkeys(table, 0.0)
    pg_spent = dict.fromkeys(table, 0.0)
    sent = dict.fromkeys(table, 0)
    counted: list[int] = [0]

    def count_statement(*_args: Any) -> None:
        counted[0] += 1

    sa.event.listen(services.engine, "before_cursor_execute", count_statement)
    rng = random.Random(20261207)
    try:
        for batch in range(batches + 1):  # batch 0 warms up, unmeasured
            for name in list(table) if batch % 2 else list(table)[::-1]:
                make, parts = table[name]
                count = per_batch // 5 if name.startswith("create") else per_batch
                count = count // 2 if name.startswith("month") else count
                measured = batch and statements
                with left_out(**parts), per_statement(services.engine) as by_statement:
                    pg_before = backend_cpu(services.engine, database)
                    counted[0] = 0
                    started = time.process_time()
                    for _ in range(count):
                        method, path, token, body = make(rng)
                        status, answer = await call(app, method, path, token=token, body=body)
                        assert status in (200, 201), (name, status, answer[:300])
                    if batch:
                        spent[name] += (time.process_time() - started) / count
                        pg_spent[name] += (
                            backend_cpu(services.engine, database) - pg_before
                        ) / count
                        sent[name] += counted[0]
                if measured:
                    print(by_statement.report(count, f"{name}, batch {batch}"))
    finally:
        services.close()
    print(
        f"API CPU per request, one process, {batches} alternating batches (ms); {calsync.__file__}"
    )
    print(
        "  (statements: those through the engine's cursors a request, BEGIN and COPY not counted)"
    )
    for name, total in spent.items():
        runs = batches * (per_batch // 5 if name.startswith("create") else per_batch)
        print(
            f"  {name:36} {total / batches * 1000:6.3f}   statements {sent[name] / runs:5.2f}"
            f"   PostgreSQL {pg_spent[name] / batches * 1000:6.3f}"
        )
    print(f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database", default="calsync_cpu_per_route")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--per-batch", type=int, default=100)
    parser.add_argument("--no-creates", action="store_true", help="the read cases only")
    parser.add_argument(
        "--statements",
        action="store_true",
        help="print each batch's PostgreSQL CPU by statement (tests.perf.statement_cpu)",
    )
    add_analyse_flag(parser, when="before the batches")
    parser.add_argument(
        "--only", action="append", default=[], help="a case's name (repeatable): only these"
    )
    args = parser.parse_args()
    asyncio.run(
        run(
            args.database,
            args.batches,
            args.per_batch,
            args.only,
            not args.no_creates,
            args.statements,
            args.analyse,
        )
    )


if __name__ == "__main__":
    main()
