"""A month's listing page by page, over HTTP, from a real ``calsync serve``: what each page
costs the API process, PostgreSQL's backends and the client. Prints figures only.

Run: ``.venv/bin/python -m tests.perf.profile_page --seed-data --database D`` once (one
user's realistic 10,000-event calendar, as `tests.perf.bench_months` makes it, the read
model filled and its upkeep run to the end), then
``.venv/bin/python -m tests.perf.month_pages --database D [--code PATH ...]``: for each
``--code`` (a source tree put first on the server's ``PYTHONPATH``; ``.`` is this tree),
round after round in turn, a fresh ``calsync serve --workers 1`` lists every month of
2026 (``expand=true``, ``limit=200``, every page; the first month from a process that
never listed anything) and then all twelve again (warm). ``--prime`` sends a ``GET /me``
first, so that what the first month still pays is the listing's own. This client's
heap is frozen before it lists (decision HZ3).

Per page: its index in its month, instances, bytes, the API process's CPU (every thread,
``/proc/<pid>/task/*/schedstat``, from the request's start to the next one's, so that a
month's pages add up to the month), PostgreSQL's backends' CPU (the server's
connections to the database, ``/proc/<pid>/schedstat``), the client's wall time to the
answer's head and to its last byte, its time to parse the JSON (orjson, as
bench_months does), and the API process's minor page faults (memory touched first).
The machine is shared: compare CPU, in alternating rounds. ``--code`` is the server's
working directory too (``python -m`` puts it before ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.web.auth.tokens import issue_token
from tests.perf.bench_emulator import free_port
from tests.perf.bench_months import MONTHS, PAGE, api_up, month_last
from tests.perf.profile_page import _environment, _state_file

TICKS_NS = 1e-6  # schedstat's nanoseconds -> ms
SLOW_MS = 20.0  # a page's API CPU above this is a stall (a full collection, a first use)


@dataclasses.dataclass
class Page:
    run: int
    month: int
    index: int
    items: int
    size: int
    api_ms: float
    pg_ms: float
    head_ms: float
    body_ms: float
    parse_ms: float
    faults: int = 0


def _task_ns(pid: int) -> int:
    """CPU time of every thread of `pid`, in ns (0 for a process gone)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return 0
    for task in tasks:
        try:
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _backends(database: str) -> list[int]:
    """PostgreSQL backends connected to `database` from a TCP client (the server's pool;
    this process opens none while listing)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            title = Path(f"/proc/{entry}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if title.startswith(b"postgres: ") and f" {database} ".encode() in title:
            found.append(int(entry))
    return found


def _backends_ns(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


class Meter:
    """CPU of the API process and of the database's backends, read between pages."""

    def __init__(self, pid: int, database: str) -> None:
        self.pid, self.database = pid, database
        self.api, self.pg = _task_ns(pid), self._pg()

    def _pg(self) -> int:
        self.pids = _backends(self.database)
        return _backends_ns(self.pids)

    def faults(self) -> int:
        """Minor page faults of the API process since the last call (memory touched
        for the first time)."""
        now = int(Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[7])
        found, self.minflt = now - getattr(self, "minflt", now), now
        return found

    def take(self) -> tuple[float, float]:
        """(API ms, PostgreSQL ms) since the last take."""
        api, pg = _task_ns(self.pid), self._pg()
        answer = ((api - self.api) * TICKS_NS, (pg - self.pg) * TICKS_NS)
        self.api, self.pg = api, pg
        return answer


async def list_month(
    http: aiohttp.ClientSession, api: str, token: str, month: int, meter: Meter, run: int
) -> list[Page]:
    first, after = MONTHS[month]
    params = {
        "start_date": first.isoformat(),
        "end_date": month_last((first, after)).isoformat(),
        "expand": "true",
        "limit": str(PAGE),
    }
    headers = {"Authorization": f"Bearer {token}"}
    pages: list[Page] = []
    meter.take()
    while True:
        started = time.perf_counter()
        async with http.get(f"{api}/events", params=params, headers=headers) as response:
            head = time.perf_counter()
            body = await response.read()
            assert response.status == 200, body[:300]
        got = time.perf_counter()
        answer = orjson.loads(body)
        parsed = time.perf_counter()
        await asyncio.sleep(0.002)  # let the server finish the request's bookkeeping
        api_ms, pg_ms = meter.take()
        faults = meter.faults()
        pages.append(
            Page(run, month, len(pages), len(answer["events"]), len(body), api_ms, pg_ms,
                 (head - started) * 1e3, (got - started) * 1e3, (parsed - got) * 1e3, faults)
        )  # fmt: skip
        if not answer.get("next_cursor"):
            return pages
        params["cursor"] = answer["next_cursor"]


@contextmanager
def _serving(argv: list[str], env: dict[str, str], root: str, port: int) -> Iterator[int]:
    """The server of `argv` run from `root` (``python -m`` puts the working directory
    first on ``sys.path``, before ``PYTHONPATH``), until the block ends; its pid."""
    child = subprocess.Popen(argv, env={**os.environ, **env}, cwd=root)
    try:
        deadline = time.monotonic() + 120
        while not api_up(port)():
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start ({child.poll()})")
            time.sleep(0.1)
        yield child.pid
    finally:
        child.terminate()
        child.wait(30)


async def one_server(
    code: str, state: dict[str, Any], database: str, run: int, prime: bool = False
) -> dict[str, list[Page]]:
    """A fresh server of `code`: the twelve months cold (the first one from a process
    that never listed), then warm."""
    port = free_port()
    env = _environment("http://127.0.0.1:9", state["url"], state)
    env |= {"CALSYNC_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    root = str(Path(code).resolve())
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
    serve = [sys.executable, "-m", "calsync.cli", "serve", "--host", "127.0.0.1"]
    serve += ["--port", str(port), "--workers", "1", "--no-access-log"]
    services = bootstrap(Settings.from_env(env))
    token = issue_token(services.jwt, subject=state["user"], email=state["email"], role="user")
    services.close()
    found: dict[str, list[Page]] = {"cold": [], "warm": []}
    with _serving(serve, env, root, port) as pid:
        await asyncio.sleep(1.0)
        meter = Meter(pid, database)
        meter.faults()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4)) as http:
            api = f"http://127.0.0.1:{port}"
            if prime:  # a signed-in request first: what is left is the listing's own
                headers = {"Authorization": f"Bearer {token}"}
                async with http.get(f"{api}/me", headers=headers) as response:
                    assert response.status == 200
                await asyncio.sleep(0.2)
                meter.take()
            for label in ("cold", "warm"):
                for month in range(len(MONTHS)):
                    found[label] += await list_month(http, api, token, month, meter, run)
    return found


def _q(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def report(label: str, pages: list[Page]) -> None:
    """Per page index (across months) and per month, medians and means."""
    by_index: dict[int, list[Page]] = defaultdict(list)
    by_month: dict[tuple[int, int], list[Page]] = defaultdict(list)
    for page in pages:
        by_index[page.index].append(page)
        by_month[(page.run, page.month)].append(page)
    print(f"  {label}: per page index, median (mean) over months")
    print("    idx  n  items    bytes   API ms        PG ms        body ms      parse ms  faults")
    for index, group in sorted(by_index.items()):

        def cell(name: str, group: list[Page] = group) -> str:
            values = [getattr(p, name) for p in group]
            return f"{statistics.median(values):5.2f} ({statistics.mean(values):5.2f})"

        print(
            f"    {index:3d} {len(group):2d} {statistics.median(p.items for p in group):6.0f} "
            f"{statistics.median(p.size for p in group):8.0f}  {cell('api_ms')}  "
            f"{cell('pg_ms')}  {cell('body_ms')}  {cell('parse_ms')}  "
            f"{statistics.median(p.faults for p in group):6.0f}"
        )
    months = list(by_month.values())
    sums = {
        name: [sum(getattr(p, name) for p in month) for month in months]
        for name in ("api_ms", "pg_ms", "body_ms", "parse_ms")
    }
    print(
        f"  {label}: per month (median / mean of {len(months)}): "
        + "; ".join(
            f"{name} {statistics.median(v):.1f} / {statistics.mean(v):.1f}"
            for name, v in sums.items()
        )
    )
    every = {name: [getattr(p, name) for p in pages] for name in ("api_ms", "pg_ms", "body_ms")}
    slow = [p.api_ms for p in pages if p.api_ms > SLOW_MS]
    print(
        f"  {label}: {len(slow)} of {len(pages)} pages over {SLOW_MS:.0f} ms of API CPU "
        f"({sum(slow):.0f} ms in all)"
    )
    print(
        f"  {label}: per page p50 / mean / p90 / max: "
        + "; ".join(
            f"{name} {_q(v, 0.5):.2f} / {statistics.mean(v):.2f} / {_q(v, 0.9):.2f} / {max(v):.2f}"
            for name, v in every.items()
        )
    )


async def main_async(args: argparse.Namespace) -> None:
    state = json.loads(_state_file(args.database).read_text())
    gc.collect()
    gc.freeze()  # this client's full collections stalled a page's parse (decision HZ3)
    results: dict[str, dict[str, list[Page]]] = {
        code: {"cold": [], "warm": [], "first": []} for code in args.code
    }
    for round_ in range(args.rounds):
        for code in args.code if round_ % 2 == 0 else list(reversed(args.code)):
            load = os.getloadavg()[0]
            found = await one_server(code, state, args.database, round_, args.prime)
            first = [p for p in found["cold"] if p.month == 0]
            api, pg = sum(p.api_ms for p in first), sum(p.pg_ms for p in first)
            wall = sum(p.body_ms + p.parse_ms for p in first)
            warm = found["warm"]
            print(
                f"round {round_ + 1} {code}: load {load:.2f}; cold process's first month "
                f"API {api:.1f} ms PG {pg:.1f} ms wall {wall:.1f} ms; warm pages "
                f"API {statistics.mean(p.api_ms for p in warm):.2f} ms/page "
                f"PG {statistics.mean(p.pg_ms for p in warm):.2f} ms/page",
                flush=True,
            )
            results[code]["cold"] += found["cold"]
            results[code]["warm"] += found["warm"]
            results[code]["first"] += first
    for code, found in results.items():
        print(f"== {code} ({args.rounds} rounds)")
        report("first months of each process", found["first"])
        report("months listed first (cold month, warm process after the first)", found["cold"])
        report("months again (warm)", found["warm"])
    print(f"load average at the end {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="calsync_profile_page")
    parser.add_argument("--code", action="append", help="a source tree (default: this one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prime", action="store_true", help="GET /me before the months")
    args = parser.parse_args()
    args.code = args.code or ["."]
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
