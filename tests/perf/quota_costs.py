"""What the Google quota and the daily budget cost per Google request and per job: the
client's CPU and Redis's, and the round trips. Prints figures only (issues 19 and 21,
decisions IN).

Run: ``.venv/bin/python -m tests.perf.quota_costs [--rounds 3] [--calls 2000]
[--users 20] [--redis redis://127.0.0.1:6379/12] [--no-hiredis]``

The limiter and the budget are built as `calsync.bootstrap` builds them (production:
both in Redis at ``--redis``, the default quotas and budget); the database is flushed
first. Each round makes ``--calls`` quota acquisitions (the call before every Google
request: a pull's listing, a push's insert) for users taken in turn, under the
``notification`` priority, then as many of the budget checks a job makes before its
lease (``has_room`` where the tree has it, else ``room(...) > 0``). Per call it prints
the client's CPU (``time.process_time``), the wall time, the Redis commands sent (a
counting client), and Redis's own time per call from ``INFO commandstats`` (server-wide:
other clients' scripts on the shared server count too; its ``calls`` are printed next to
ours to show how much).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis

from calsync.config import Settings
from calsync.providers import budget as budget_module
from calsync.providers import quota as quota_module
from calsync.providers.budget import Priority, daily_budget, spending


class Counting(redis.Redis):
    """A Redis client that counts the commands it sends (each one a round trip)."""

    sent = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        Counting.sent += 1
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


#: Connection options of every client (``--no-hiredis``: redis-py's own parser).
PARSER: dict[str, Any] = {}


def counting_from_url(url: str, **options: Any) -> Counting:
    return Counting(connection_pool=redis.ConnectionPool.from_url(url, **options | PARSER))


def built(url: str) -> tuple[Any, Any]:
    """The limiter and the budget, as bootstrap builds them, on counting clients."""
    redis.Redis.from_url = staticmethod(counting_from_url)  # type: ignore[method-assign]
    settings = replace(Settings.embedded(Path(tempfile.mkdtemp())), redis_url=url)
    bound = getattr(quota_module, "project_limit", None)
    options = {} if bound is None else {"spend_bound": bound(settings)}
    budget = daily_budget(url, settings.google_daily_budget, **options)
    limiter = quota_module.quota_limiter(settings, budget=budget)
    return limiter, budget


def server_stats(client: redis.Redis) -> dict[str, tuple[int, int]]:
    raw: Any = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"])) for name, v in raw.items()
    }


def measured(
    client: redis.Redis,
    calls: int,
    each: Any,
) -> dict[str, float]:
    before = server_stats(client)
    sent = Counting.sent
    cpu, wall = time.process_time(), time.perf_counter()
    for n in range(calls):
        each(n)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    after = server_stats(client)
    figures = {
        "client CPU ms": cpu * 1000 / calls,
        "wall ms": wall * 1000 / calls,
        "commands": (Counting.sent - sent) / calls,
    }
    for name in ("evalsha", "hgetall"):
        calls_0, usec_0 = before.get(name, (0, 0))
        calls_1, usec_1 = after.get(name, (0, 0))
        figures[f"redis {name} ms"] = (usec_1 - usec_0) / 1000 / calls
        figures[f"{name} calls (server-wide)"] = (calls_1 - calls_0) / calls
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    parser.add_argument(
        "--no-hiredis", action="store_true", help="redis-py's own parser even with hiredis"
    )
    args = parser.parse_args()
    if args.no_hiredis:
        from redis._parsers import _RESP2Parser

        PARSER["parser_class"] = _RESP2Parser
    admin = redis.Redis.from_url(args.redis)
    admin.flushdb()
    limiter, budget = built(args.redis)
    users = [uuid.uuid4() for _ in range(args.users)]
    has_room = getattr(budget, "has_room", None)

    def acquire(n: int) -> None:
        limiter.acquire(users[n % len(users)])

    def check(n: int) -> None:
        if has_room is not None:
            has_room(Priority.NOTIFICATION)
        else:
            assert budget.room(Priority.NOTIFICATION) > 0

    results: dict[str, list[dict[str, float]]] = {"acquire": [], "job check": []}
    with spending(Priority.NOTIFICATION):
        for round_ in range(args.rounds + 1):  # round 0 warms up
            for name, each in (("acquire", acquire), ("job check", check)):
                figures = measured(admin, args.calls, each)
                if round_:
                    results[name].append(figures)
    parser_used = type(limiter.buckets._client.connection_pool.get_connection()._parser)
    print(f"tree {Path(budget_module.__file__).parents[2]}; {args.calls} calls a round")
    print(f"parser {parser_used.__name__}")  # _HiredisParser: hiredis is installed
    for name, rounds in results.items():
        print(f"{name}, per call (each round; median):")
        for key in rounds[0]:
            values = [r[key] for r in rounds]
            shown = " / ".join(f"{v:.4f}" for v in values)
            print(f"  {key:28} {shown}   ({statistics.median(values):.4f})")
    print(f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    admin.flushdb()
    limiter.close()
    budget.close()


if __name__ == "__main__":
    main()
