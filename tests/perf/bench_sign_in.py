"""Sign-in cost: the API process's CPU per Google sign-in, through the emulator's OAuth dance.

Run: ``.venv/bin/python -m tests.perf.bench_sign_in [--sign-ins 100] [--redis URL]``

Needs PostgreSQL and Redis. Uses a scratch database ``calsync_bench_sign_in`` (dropped
and created) and the Redis database given by ``--redis`` (default 6). The emulator runs
in its own process, and calsync's API in another (``calsync serve --workers 1``, as
deployed), so the CPU time read from ``/proc`` for the API process is the API's alone.
Each sign-in is what a browser does: ``GET /auth/google?login_hint=...`` (the state
cookie and the redirect to Google), consent at the emulator, ``GET
/auth/google/callback`` (the code exchange and the userinfo call to Google, the user and
tokens stored, the first sync queued). Distinct users, one after another, after a few
warm-up sign-ins. Prints the API CPU per sign-in (median of `--rounds` rounds), the
callback's wall time (p50, p95) and the start route's, and asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit

import httpx2 as httpx

from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_intake import calsync_argv, cpu_seconds, load, machine, serving
from tests.perf.bench_sync import environment

DATABASE = "calsync_bench_sign_in"


def sign_in(api: str, email: str) -> tuple[float, float]:
    """One whole sign-in as a browser does it; returns the wall seconds of the start
    route and of the callback."""
    with httpx.Client(base_url=api, timeout=30) as browser:
        started = time.perf_counter()
        start = browser.get("/auth/google", params={"login_hint": email})
        start_seconds = time.perf_counter() - started
        assert start.status_code == 302, start.text
        at_google = httpx.get(start.headers["location"], follow_redirects=False, timeout=30)
        assert at_google.is_redirect, at_google.text
        back = urlsplit(at_google.headers["location"])
        started = time.perf_counter()
        answer = browser.get(f"{back.path}?{back.query}")
        callback_seconds = time.perf_counter() - started
        assert answer.status_code == 200, answer.text
        assert answer.json()["user"]["email"] == email
    return start_seconds, callback_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sign-ins", type=int, default=100, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/6")
    args = parser.parse_args()
    print(f"machine: {machine()}; load average {load()}")
    emulator_port, api_port = free_port(), free_port()
    emulator = start_emulator(emulator_port)
    base = f"http://127.0.0.1:{emulator_port}"
    env = environment(base, api_port, DATABASE) | {"CALSYNC_REDIS_URL": args.redis}
    api = f"http://127.0.0.1:{api_port}"
    try:
        subprocess.run(
            [sys.executable, "-m", "calsync.cli", "migrate"], env={**os.environ, **env}, check=True
        )
        argv = calsync_argv(api_port, workers=1)
        with serving(argv, env, api_port) as pid:
            run = uuid.uuid4().hex[:6]
            for n in range(5):  # warm-up: imports, first connections, caches
                sign_in(api, f"warm{n}-{run}@example.com")
            per_round: list[float] = []
            starts: list[float] = []
            callbacks: list[float] = []
            for r in range(args.rounds):
                cpu_before = cpu_seconds(pid)
                for n in range(args.sign_ins):
                    start, callback = sign_in(api, f"user{r}-{n}-{run}@example.com")
                    starts.append(start)
                    callbacks.append(callback)
                per_round.append((cpu_seconds(pid) - cpu_before) / args.sign_ins)
        q = statistics.quantiles(callbacks, n=20)
        print(f"$ {' '.join(argv)}")
        print(
            f"sign-in: API CPU {statistics.median(per_round) * 1000:.1f} ms per sign-in "
            f"(median of {args.rounds} rounds of {args.sign_ins}: "
            f"{', '.join(f'{x * 1000:.1f}' for x in per_round)} ms)"
        )
        print(
            f"  GET /auth/google p50 {statistics.median(starts) * 1000:.1f} ms; "
            f"callback p50 {statistics.median(callbacks) * 1000:.1f} ms, "
            f"p95 {q[18] * 1000:.1f} ms (wall, one sign-in at a time)"
        )
    finally:
        emulator.terminate()
        emulator.wait(10)


if __name__ == "__main__":
    main()
