"""Where a real API process's CPU goes, by part of the request, and what a request costs
it: ``calsync serve --workers 1`` (httptools, uvloop) under ``wrk``, one route at a time.
Prints figures only.

Run ``.venv/bin/python -m tests.perf.cpu_per_route --seed-data --database D`` (week reads)
or ``tests.perf.profile_page --seed-data --database D`` (a 10,000-event month) once, then
``.venv/bin/python -m tests.perf.api_parts --database D --route week|page
[--code PATH ...] [--rounds 3] [--profile]``. ``week``: a random user's week read
(``expand=true&limit=100``, issue 21's read); ``page``: a first page of 200 of a random
month of 2026 (``expand=true``, issue 19's page). For each ``--code`` (a source tree, the
server's working directory: ``python -m`` imports the package there; default this tree),
round after round in turn, a fresh server is warmed up (3 s of the load), then measured
for ``--seconds``: the API process's CPU (every thread, ``/proc/<pid>/stat``) over the
requests wrk completed. With ``--profile``, py-spy (installed in the venv, not a
dependency) samples the thread holding the interpreter lock at 250 Hz over the measured
window, and each sample is put in the part of its innermost frame that names one
(`PARTS`, first match from the leaf): the split of the process's Python CPU by part.
The machine is shared: compare CPU a request, in alternating rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.perf.bench_emulator import free_port
from tests.perf.bench_months import api_up
from tests.perf.load_wrk import week_bounds

#: (part, substrings of a frame's ``function (file:line)``), matched from the leaf out.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("stored bodies / rendering", ("model_bodies.py", "templates.py", "json_body.py")),
    ("route: query parse", ("list_query.py", "paging.py", "keyset.py")),
    ("auth: account read", ("read_caller", "/users.py", "principal.py:_load")),
    ("store: psycopg", ("psycopg/",)),
    ("store: SQLAlchemy", ("sqlalchemy/",)),
    ("store: page's own code", ("instance_pages.py", "listing.py", "store/db.py")),
    ("rate limit (Redis client)", ("redis/", "limits.py", "token_buckets.py")),
    ("auth: JWT", ("tokens.py", "principal.py", "authentication.py", "moments.py")),
    ("metrics", ("prometheus_client/",)),
    ("routing (Starlette)", ("starlette/routing.py",)),
    ("route's thread hop", ("anyio/", "concurrency.py", "threading.py", "concurrent/")),
    ("middleware chain", ("calsync/web/", "starlette/", "calsync/logs.py")),
    ("uvicorn / httptools (parse, send)", ("uvicorn/", "httptools")),
    ("event loop (uvloop, asyncio)", ("uvloop", "asyncio/")),
]


def _state(database: str) -> dict[str, Any]:
    return dict(json.loads((Path(tempfile.gettempdir()) / f"{database}.json").read_text()))


def _environment(state: dict[str, Any]) -> dict[str, str]:
    return {
        "CALSYNC_DATABASE_URL": state["url"],
        "CALSYNC_REDIS_URL": state["redis"],
        "CALSYNC_PUBLIC_URL": "http://127.0.0.1:9",
        "CALSYNC_JWT_SECRET": state["jwt"],
        "CALSYNC_ENCRYPTION_KEYS": state["fernet"],
        "CALSYNC_GOOGLE_CLIENT_ID": "calsync-dev",
        "CALSYNC_GOOGLE_CLIENT_SECRET": "calsync-dev-secret",
        "CALSYNC_GOOGLE_API_BASE": "http://127.0.0.1:9",
        "CALSYNC_GOOGLE_OAUTH_BASE": "http://127.0.0.1:9",
        "CALSYNC_LOG_LEVEL": "WARNING",
        "CALSYNC_ADDRESS_RATE_LIMIT_PER_MINUTE": "100000000",
        "CALSYNC_API_RATE_LIMIT_PER_MINUTE": "100000000",
        "CALSYNC_READ_MODEL": "true",
    }


def _page_token(state: dict[str, Any]) -> str:
    if "month_token" in state:
        return str(state["month_token"])
    from calsync.bootstrap import jwt_config
    from calsync.config import Settings
    from calsync.web.auth.tokens import issue_token

    settings = Settings.from_env(_environment(state))
    return issue_token(
        jwt_config(settings), subject=state["user"], email=state["email"], role="user"
    )


def _targets(state: dict[str, Any], route: str) -> list[tuple[str, str]]:
    """(path and query, token) pairs the load picks from at random."""
    if route == "week":
        monday, sunday = week_bounds(datetime.now(UTC))
        week = f"start_date={monday.date()}&end_date={(sunday - timedelta(days=1)).date()}"
        path = f"/events?{week}&expand=true&limit=100"
        return [(path, token) for token in state["tokens"]]
    token = _page_token(state)
    pages = []
    for month in range(1, 13):
        first = date(2026, month, 1)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        pages.append((f"/events?start_date={first}&end_date={last}&expand=true&limit=200", token))
    return pages


_LUA = """
local targets = {%s}
function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1000000)) end
function request()
  local t = targets[math.random(#targets)]
  return wrk.format("GET", t[1], {["Authorization"] = "Bearer " .. t[2]})
end
"""


def _script(targets: list[tuple[str, str]]) -> Path:
    path = Path(tempfile.mkdtemp(prefix="api-parts-")) / "load.lua"
    path.write_text(_LUA % ",".join(f'{{"{p}","{t}"}}' for p, t in targets))
    return path


def _wrk(script: Path, port: int, connections: int, seconds: int) -> tuple[int, int]:
    """(requests completed, non-2xx) of one wrk run."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    argv += ["-s", str(script), f"http://127.0.0.1:{port}"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    done, bad = 0, 0
    for line in out.splitlines():
        if " requests in " in line:
            done = int(line.split()[0])
        elif line.strip().startswith("Non-2xx"):
            bad = int(line.rsplit(" ", 1)[1])
    return done, bad


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime of every thread


def _classify(raw: Path) -> Counter[str]:
    """Samples by part, from py-spy's raw (collapsed) output."""
    parts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")[::-1]  # leaf first
        part = next(
            (name for frame in frames for name, marks in PARTS if any(m in frame for m in marks)),
            "other (interpreter, C)",
        )
        parts[part] += int(count)
    return parts


def _round(code: Path, args: argparse.Namespace, script: Path, env: dict[str, str]) -> float:
    port = free_port()
    argv = [sys.executable, "-m", "calsync.cli", "serve", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", "1", "--no-access-log"]
    server = subprocess.Popen(argv, cwd=code, env={**os.environ, **env})
    try:
        check = api_up(port)
        deadline = time.monotonic() + 60
        while not check():
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the API did not come up")
            time.sleep(0.2)
        _wrk(script, port, args.connections, 3)  # warm-up
        spy = None
        raw = Path(tempfile.mkdtemp(prefix="api-parts-")) / "spy.txt"
        if args.profile:
            spy_argv = [shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")]
            spy_argv += ["record", "--gil", "--nonblocking", "--rate", "250", "--format", "raw"]
            spy_argv += ["--duration", str(args.seconds), "-o", str(raw), "-p", str(server.pid)]
            spy = subprocess.Popen(spy_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = _cpu_ticks(server.pid)
        done, bad = _wrk(script, port, args.connections, args.seconds)
        ticks = _cpu_ticks(server.pid) - before
        if spy is not None:
            spy.wait(60)
        ms = ticks * 1000 / os.sysconf("SC_CLK_TCK") / max(done, 1)
        load = os.getloadavg()[0]
        print(
            f"  {code}: {done / args.seconds:7.1f} req/s, API CPU {ms:6.3f} ms a request, "
            f"non-2xx {bad}, load {load:.1f}",
            flush=True,
        )
        if spy is not None and raw.exists():
            print(f"      (py-spy's samples: {raw})")
            parts = _classify(raw)
            total = sum(parts.values())
            for name, count in parts.most_common():
                print(f"      {name:36} {100 * count / total:5.1f} %  {ms * count / total:6.3f} ms")
        return ms
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--route", choices=["week", "page"], default="week")
    parser.add_argument("--code", action="append", help="a source tree (default: this one)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="py-spy's split by part")
    args = parser.parse_args()
    state = _state(args.database)
    env = _environment(state)
    targets = _targets(state, args.route)
    random.shuffle(targets)
    script = _script(targets)
    codes = [Path(c).resolve() for c in (args.code or ["."])]
    results: dict[Path, list[float]] = {code: [] for code in codes}
    for _ in range(args.rounds):
        for code in codes:
            results[code].append(_round(code, args, script, env))
    for code, figures in results.items():
        print(f"{code}: API CPU a request (ms) {' '.join(f'{f:.3f}' for f in figures)}")


if __name__ == "__main__":
    main()
