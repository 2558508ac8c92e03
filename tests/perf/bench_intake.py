"""Benchmark the intake of Google push notifications: prints figures, asserts nothing.

Run: ``.venv/bin/python -m tests.perf.bench_intake [--seconds 10] [--connections 32]
[--only one --only bare] [--rounds 4] [--calendars 1]``

Needs PostgreSQL, Redis and ``wrk`` (Debian's package). Uses a scratch database
``calsync_bench_intake`` and the Redis database given by ``--redis`` (default 4); both are
emptied first. The emulator runs in its own process; a user is connected and an
``events.watch`` channel opened on it as calsync does, so every notification carries a
real channel id, token and resource id. With ``--calendars N``, N users are connected
so, and wrk's requests go round the N channels (Google pushes for many calendars at once).
Then, one after another on the same machine in the same run, wrk POSTs those
notifications over keep-alive connections to:

(a) calsync served by one uvicorn process (``calsync serve --workers 1 --no-access-log``:
    httptools and uvloop),
(b) calsync served by two uvicorn processes (``--workers 2``, one shared socket, counters
    in a ``PROMETHEUS_MULTIPROC_DIR``),
(c) a bare Starlette app answering 200 on the same route (the ceiling of the server
    stack on this machine).

With ``--rounds N`` the chosen targets run N times, every other round in reverse order
(whichever runs first on a machine whose load drifts is favoured), and each calsync
figure is compared with the ceiling of its own round.

It prints requests/s, latency p50/p99 and errors for each, and for (a) and (b) checks
that nothing was lost: every answer wrk received was a 2xx, the server's own count of
recorded notifications is at least wrk's completed count (it may be higher by the
requests in flight when wrk stops), every calendar is marked dirty, and exactly one pull
per calendar was enqueued (no worker runs, so the first notification claims the
calendar's slot and every later one coalesces into it). wrk gets one thread so that the
server gets the CPU. The summary ends with each target's requests over all rounds and
their ratio to the ceiling's.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
import redis
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.emulator.testing import EmulatorControl
from calsync.queue import NAMESPACE
from calsync.store.migrate import upgrade
from calsync.store.tables import Calendar, WatchChannel
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.channels import channel_token, ensure_channels
from tests.google_users import connect_google_user
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_sync import environment

DATABASE = "calsync_bench_intake"
ROUTE = "/webhooks/google"
RECORDED = ("queued", "coalesced")


# --- the bare ceiling -------------------------------------------------------------------


async def _ok(_request: Request) -> Response:
    return Response(status_code=200)


def bare_app() -> Starlette:
    """The ceiling: Starlette answering 200 on the webhook route, doing nothing else."""
    return Starlette(
        routes=[Route(ROUTE, _ok, methods=["POST"]), Route("/healthz", _ok, methods=["GET"])]
    )


# --- set-up -----------------------------------------------------------------------------


def watched_channel(
    services: Services, control: EmulatorControl, email: str = "intake@example.com"
) -> WatchChannel:
    """Connect a user with one calendar and open its events channel on the emulator."""
    account, _ = connect_google_user(services, control, email)
    sync_calendar_list(services, account.id)
    ensure_channels(services, account.id)
    with services.sessions() as session:
        channel = session.scalars(
            sa.select(WatchChannel).where(
                WatchChannel.kind == "events", WatchChannel.user_id == account.id
            )
        ).one()
    assert channel.calendar_id is not None
    assert channel.resource_id
    return channel


def wrk_script(services: Services, channel: WatchChannel) -> Path:
    token = channel_token(services.settings.encryption_keys, str(channel.id))
    script = Path(tempfile.mkdtemp(prefix="calsync-intake-")) / "push.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f'wrk.headers["X-Goog-Channel-ID"] = "{channel.id}"\n'
        f'wrk.headers["X-Goog-Channel-Token"] = "{token}"\n'
        f'wrk.headers["X-Goog-Channel-Expiration"] = "Tue, 01 Dec 2026 00:00:00 GMT"\n'
        f'wrk.headers["X-Goog-Resource-ID"] = "{channel.resource_id}"\n'
        'wrk.headers["X-Goog-Resource-URI"] = "https://www.googleapis.com/calendar/v3/x"\n'
        'wrk.headers["X-Goog-Resource-State"] = "exists"\n'
        'wrk.headers["X-Goog-Message-Number"] = "2"\n'
    )
    return script


def wrk_script_many(services: Services, channels: Sequence[WatchChannel]) -> Path:
    """A wrk script whose requests go round `channels` (each its own headers)."""
    if len(channels) == 1:
        return wrk_script(services, channels[0])
    rows = []
    for channel in channels:
        token = channel_token(services.settings.encryption_keys, str(channel.id))
        rows.append(f'  {{"{channel.id}", "{token}", "{channel.resource_id}"}},')
    script = Path(tempfile.mkdtemp(prefix="calsync-intake-")) / "push.lua"
    script.write_text(
        "local channels = {\n" + "\n".join(rows) + "\n}\n"
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        "  local c = channels[(n % #channels) + 1]\n"
        "  return wrk.format('POST', nil, {\n"
        "    ['X-Goog-Channel-ID'] = c[1], ['X-Goog-Channel-Token'] = c[2],\n"
        "    ['X-Goog-Channel-Expiration'] = 'Tue, 01 Dec 2026 00:00:00 GMT',\n"
        "    ['X-Goog-Resource-ID'] = c[3],\n"
        "    ['X-Goog-Resource-URI'] = 'https://www.googleapis.com/calendar/v3/x',\n"
        "    ['X-Goog-Resource-State'] = 'exists', ['X-Goog-Message-Number'] = '2'})\n"
        "end\n"
    )
    return script


def reset(
    services: Services, calendar_ids: uuid.UUID | Sequence[uuid.UUID], queue: redis.Redis
) -> None:
    """Clean calendars (not dirty, no pull queued) and empty queues and pull markers
    (`calsync.sync.pending_pulls`: the reset is not a pull) before a run."""
    ids = [calendar_ids] if isinstance(calendar_ids, uuid.UUID) else list(calendar_ids)
    with services.sessions.begin() as session:
        session.execute(
            sa.update(Calendar).where(Calendar.id.in_(ids)).values(dirty=False, sync_queued_at=None)
        )
    for key in queue.scan_iter(f"{NAMESPACE}:*"):
        queue.delete(key)


def enqueued_pulls(queue: redis.Redis) -> int:
    """sync_calendar messages waiting in Redis (immediate and delayed)."""
    return sum(int(queue.hlen(f"{NAMESPACE}:{name}.msgs")) for name in ("sync", "sync.DQ"))


# --- servers ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    argv: list[str]
    calsync: bool
    processes: int


def calsync_argv(port: int, *, workers: int) -> list[str]:
    """``calsync serve`` as deployed (httptools, uvloop), without the access log."""
    argv = [sys.executable, "-m", "calsync.cli", "serve", "--host", "127.0.0.1"]
    return [*argv, "--port", str(port), "--workers", str(workers), "--no-access-log"]


def bare_argv(port: int) -> list[str]:
    """The ceiling under uvicorn with the same HTTP stack."""
    argv = [sys.executable, "-m", "uvicorn", "tests.perf.bench_intake:bare_app", "--factory"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--http", "httptools"]
    return [*argv, "--loop", "uvloop", "--no-access-log", "--log-level", "warning"]


@contextmanager
def serving(argv: Sequence[str], env: dict[str, str], port: int) -> Iterator[int]:
    """Run the server until the block ends; yields its process id."""
    server = subprocess.Popen(list(argv), env={**os.environ, **env})
    try:
        deadline = time.monotonic() + 120  # two processes importing on a busy machine
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start ({server.poll()}): {shlex.join(argv)}")
            time.sleep(0.1)
        yield server.pid
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _descendants(pid: int) -> list[int]:
    """`pid` and every process below it (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its descendants so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for each in _descendants(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


# --- counting ---------------------------------------------------------------------------


@dataclasses.dataclass
class Counts:
    """The server's own counters for the webhook."""

    recorded: float = 0.0  # notifications queued or coalesced
    answered_2xx: float = 0.0
    answered_5xx: float = 0.0

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.recorded - other.recorded,
            self.answered_2xx - other.answered_2xx,
            self.answered_5xx - other.answered_5xx,
        )


def counts_from(families: Iterable[object]) -> Counts:
    counts = Counts()
    for family in families:
        for sample in getattr(family, "samples", []):
            name, labels, value = sample.name, sample.labels, sample.value
            if name == "calsync_push_notifications_total" and labels["outcome"] in RECORDED:
                counts.recorded += value
            elif name == "calsync_http_requests_total" and labels.get("route") == ROUTE:
                if labels["status"].startswith("2"):
                    counts.answered_2xx += value
                elif labels["status"].startswith("5"):
                    counts.answered_5xx += value
    return counts


def scraped_counts(port: int) -> Counts:
    """The counters of a single-process server, from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return counts_from(text_string_to_metric_families(text))


def multiprocess_counts(directory: str) -> Counts:
    """The counters summed over every process that wrote to `directory`."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return counts_from(registry.collect())


# --- wrk --------------------------------------------------------------------------------


@dataclasses.dataclass
class WrkResult:
    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    output: str
    server_cpu_us: float = 0.0  # server CPU time per completed request


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(output: str) -> WrkResult:
    def latency(percent: str) -> float:
        found = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
        return _ms(*found.groups()) if found else float("nan")

    requests = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests=int(requests.group(1)) if requests else 0,
        rate=float(rate.group(1)) if rate else 0.0,
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        output=output,
    )


def run_wrk(wrk: str, args: argparse.Namespace, script: Path, port: int) -> WrkResult:
    argv = [
        wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.seconds}s",
        "--latency",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{ROUTE}",
    ]
    print(f"  $ {shlex.join(argv)}", flush=True)
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)


# --- report -----------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores, {model}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def verdict(
    name: str,
    result: WrkResult,
    counts: Counts,
    services: Services,
    calendar_ids: Sequence[uuid.UUID],
    queue: redis.Redis,
    connections: int,
) -> list[str]:
    """Problems that mean a notification may have been lost (empty: none)."""
    problems = []
    if result.non_2xx:
        problems.append(f"{result.non_2xx} answers were not 2xx")
    if result.socket_errors:
        problems.append(f"{result.socket_errors} socket errors")
    if counts.answered_5xx:
        problems.append(f"the server answered {counts.answered_5xx:.0f} times with 5xx")
    if counts.recorded < result.requests:
        problems.append(f"server recorded {counts.recorded:.0f} < wrk's {result.requests}")
    if counts.recorded > result.requests + connections:
        problems.append(f"server recorded {counts.recorded:.0f} >> wrk's {result.requests}")
    with services.sessions() as session:
        rows = session.scalars(sa.select(Calendar).where(Calendar.id.in_(calendar_ids))).all()
    unmarked = [row for row in rows if not row.dirty or row.sync_queued_at is None]
    if unmarked or len(rows) != len(calendar_ids):
        problems.append(f"{len(unmarked)} of {len(calendar_ids)} calendars not marked")
    pulls = enqueued_pulls(queue)
    if pulls != len(calendar_ids):
        problems.append(f"{pulls} pulls enqueued, expected exactly {len(calendar_ids)}")
    print(
        f"  {name}: wrk completed {result.requests}, server recorded {counts.recorded:.0f}, "
        f"2xx {counts.answered_2xx:.0f}, 5xx {counts.answered_5xx:.0f}, pulls enqueued {pulls}"
    )
    return problems


def print_totals(rows: Sequence[tuple[int, str, WrkResult, list[str]]]) -> None:
    """Each target's requests and CPU over all its rounds, and the ratio to the ceiling's
    (rounds a minute apart on a shared machine differ more than the code does)."""
    totals: dict[str, list[float]] = {}
    for _, label, result, _ in rows:
        total = totals.setdefault(label, [0.0, 0.0, 0.0])
        total[0] += result.requests
        total[1] += result.server_cpu_us * result.requests
        total[2] += result.requests / max(result.rate, 1e-9)  # seconds
    ceiling = next((t for label, t in totals.items() if label.startswith("bare")), None)
    print("all rounds:")
    for label, (requests, cpu, seconds) in totals.items():
        ratio = f", {requests / ceiling[0]:.0%} of the ceiling's" if ceiling else ""
        cpu_ratio = f" ({cpu / requests / (ceiling[1] / ceiling[0]):.0%})" if ceiling else ""
        print(
            f"  {label:48s} {requests:11,.0f} requests in {seconds:5.0f} s{ratio}; "
            f"CPU {cpu / max(requests, 1):4.1f} us/req{cpu_ratio}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/4")
    parser.add_argument(
        "--calendars", type=int, default=1, help="users, each with a watched calendar, pushed"
    )
    parser.add_argument(
        "--only", choices=["one", "two", "bare"], action="append", help="run only these"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the targets this many times, every other round in reverse order; each "
        "ratio is to the ceiling of its own round",
    )
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        print("notification intake: skipped (wrk is not installed)")
        return
    print(f"machine: {machine()}")
    emulator_port, api_port = free_port(), free_port()
    emulator = start_emulator(emulator_port)
    base = f"http://127.0.0.1:{emulator_port}"
    env = environment(base, api_port, DATABASE) | {"CALSYNC_REDIS_URL": args.redis}
    services = bootstrap(Settings.from_env(env))
    queue = redis.Redis.from_url(args.redis)
    multiproc = tempfile.mkdtemp(prefix="calsync-prom-")
    try:
        upgrade(services.engine)
        with EmulatorControl(base) as control:
            channels = [
                watched_channel(services, control, f"intake{n or ''}@example.com")
                for n in range(args.calendars)
            ]
        calendar_ids = [c.calendar_id for c in channels if c.calendar_id is not None]
        script = wrk_script_many(services, channels)
        print(f"wrk script {script}:\n{script.read_text()}")
        targets = [
            Target("one", calsync_argv(api_port, workers=1), True, 1),
            Target("two", calsync_argv(api_port, workers=2), True, 2),
            Target("bare", bare_argv(api_port), False, 1),
        ]
        chosen = [t for t in targets if not args.only or t.name in args.only]
        rows = []
        # each round in the other order: on a shared machine whose load drifts, the
        # target that runs first is favoured (docs/benchmarks.md)
        plan = [
            (n, target)
            for n in range(args.rounds)
            for target in (chosen if n % 2 == 0 else chosen[::-1])
        ]
        for round_number, target in plan:
            reset(services, calendar_ids, queue)
            run_env = dict(env)
            if target.processes > 1:
                shutil.rmtree(multiproc, ignore_errors=True)
                os.makedirs(multiproc)
                run_env["PROMETHEUS_MULTIPROC_DIR"] = multiproc
            label = {
                "one": "calsync, one uvicorn process",
                "two": "calsync, two uvicorn processes",
                "bare": "bare Starlette, one uvicorn process (ceiling)",
            }[target.name]
            print(f"\n{label} (load average before: {load()})")
            print(f"  $ {shlex.join(target.argv)}")
            with serving(target.argv, run_env, api_port) as pid:
                single = target.calsync and target.processes == 1
                before = scraped_counts(api_port) if single else Counts()
                cpu_before = cpu_seconds(pid)
                result = run_wrk(wrk, args, script, api_port)
                result.server_cpu_us = (
                    (cpu_seconds(pid) - cpu_before) / max(1, result.requests) * 1e6
                )
                if single:
                    time.sleep(0.2)  # requests in flight when wrk stopped
                    counts = scraped_counts(api_port) - before
            if target.calsync and target.processes > 1:
                counts = multiprocess_counts(multiproc)
            print(
                f"  {result.rate:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
                f"p99 {result.p99_ms:.2f} ms, non-2xx {result.non_2xx}, "
                f"socket errors {result.socket_errors}, "
                f"server CPU {result.server_cpu_us:.0f} us/request"
            )
            problems: list[str] = []
            if target.calsync:
                problems = verdict(
                    label,
                    result,
                    counts,
                    services,
                    calendar_ids,
                    queue,
                    args.connections,
                )
                print("  nothing lost" if not problems else "  LOST? " + "; ".join(problems))
            rows.append((round_number, label, result, problems))
            print(f"  load average after: {load()}")
        print(
            f"\nsummary ({machine()}; wrk -t{args.threads} -c{args.connections} "
            f"-d{args.seconds}s, keep-alive, loopback):"
        )
        ceilings = {n: r.rate for n, label, r, _ in rows if label.startswith("bare")}
        for round_number, label, result, problems in rows:
            ceiling = ceilings.get(round_number)
            ratio = f", {result.rate / ceiling:.0%} of the ceiling" if ceiling else ""
            state = (
                "" if label.startswith("bare") else (" nothing lost" if not problems else " LOST?")
            )
            if args.rounds > 1:
                label = f"[{round_number + 1}] {label}"
            print(
                f"  {label:48s} {result.rate:9,.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                f"p99 {result.p99_ms:6.2f} ms  "
                f"CPU {result.server_cpu_us:4.0f} us/req{ratio};{state}"
            )
        print_totals(rows)
    finally:
        services.close()
        queue.close()
        emulator.terminate()
        emulator.wait(10)
        shutil.rmtree(multiproc, ignore_errors=True)


if __name__ == "__main__":
    main()
