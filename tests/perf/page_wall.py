"""Where a page's wall goes between the client and the API, one client paging serially:
timestamps on the way, on one clock (``CLOCK_MONOTONIC``, shared by every process).
Prints figures only.

Run: ``.venv/bin/python -m tests.perf.profile_page --seed-data --database D`` once, then
``.venv/bin/python -m tests.perf.page_wall --database D [--code PATH ...] [--client raw]``.
For each ``--code`` (a source tree; ``.`` is this one) in turn, round after round, a fresh
``calsync serve --workers 1`` is started through this file run as a script
(``--serve-probed``), which puts marks on uvicorn's protocol (a request's bytes in, its
ASGI task's start and end, each ``send`` and how much of it the transport kept, its
``pause_writing``/``resume_writing``), on anyio's thread hop (the call, the thread's
start and end with its CPU, the loop's resumption), on psycopg's ``execute`` and
``fetchall``, and on the garbage collector, then runs the CLI of the tree it was started
from. The client (aiohttp as bench_months, or ``raw``: a blocking socket reading up to
1 MiB a call) lists every month of 2026 (``expand=true``, pages of 200) twice, marking
its send, first byte and last byte; after the server stops, each page's marks are put
relative to the client's send, and the warm pages' medians printed per step.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import gc
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

OUT = "PAGE_WALL_OUT"


# --- the server's side (this file run as a script, before calsync is imported) -------


def _install_probes(marks: list[tuple[int, str, int, int, int, int]]) -> None:
    """Marks (ns, label, value) on the request's way through the API process."""
    import anyio.to_thread
    import psycopg
    from uvicorn.protocols.http import httptools_impl as impl

    now = time.perf_counter_ns

    def mark(label: str, value: int = 0) -> None:
        # this thread's CPU and run-queue wait so far (ns), to split a step's wall
        # (schedstat's own CPU figure lags for a running thread; thread_time does not)
        fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        try:
            wait = os.read(fd, 128).split()[1]
        finally:
            os.close(fd)
        cpu = time.thread_time_ns()
        marks.append((now(), label, value, cpu, int(wait), threading.get_ident()))

    protocol, cycle = impl.HttpToolsProtocol, impl.RequestResponseCycle
    received, completed = protocol.data_received, protocol.on_response_complete
    paused, resumed = protocol.pause_writing, protocol.resume_writing

    def data_received(self: Any, data: bytes) -> None:
        mark("server.recv", len(data))
        received(self, data)

    def on_response_complete(self: Any) -> None:
        mark("server.complete", self.transport.get_write_buffer_size())
        completed(self)

    def pause_writing(self: Any) -> None:
        mark("server.pause_writing", self.transport.get_write_buffer_size())
        paused(self)

    def resume_writing(self: Any) -> None:
        mark("server.resume_writing", self.transport.get_write_buffer_size())
        resumed(self)

    protocol.data_received = data_received  # type: ignore[method-assign]
    protocol.on_response_complete = on_response_complete  # type: ignore[method-assign]
    protocol.pause_writing = pause_writing  # type: ignore[method-assign]
    protocol.resume_writing = resume_writing  # type: ignore[method-assign]

    run_asgi, send = cycle.run_asgi, cycle.send

    async def probed_run_asgi(self: Any, app: Any) -> None:
        mark("asgi.start")
        await run_asgi(self, app)
        mark("asgi.end")

    async def probed_send(self: Any, message: Any) -> None:
        kind = "head" if message["type"] == "http.response.start" else "body"
        mark(f"send.{kind}.start", len(message.get("body", b"")))
        await send(self, message)
        mark(f"send.{kind}.end", self.transport.get_write_buffer_size())

    cycle.run_asgi = probed_run_asgi  # type: ignore[method-assign]
    cycle.send = probed_send  # type: ignore[method-assign]

    run_sync = anyio.to_thread.run_sync

    async def probed_run_sync(func: Any, *args: Any, **kwargs: Any) -> Any:
        def in_thread(*inner: Any) -> Any:
            cpu = time.thread_time_ns()
            mark("thread.start")
            try:
                return func(*inner)
            finally:
                mark("thread.end", time.thread_time_ns() - cpu)

        mark("hop.call")
        try:
            return await run_sync(in_thread, *args, **kwargs)
        finally:
            mark("hop.back")

    anyio.to_thread.run_sync = probed_run_sync

    execute, fetchall = psycopg.Cursor.execute, psycopg.Cursor.fetchall

    def probed_execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        mark("sql.send")
        try:
            return execute(self, *args, **kwargs)
        finally:
            mark("sql.done")

    def probed_fetchall(self: Any) -> Any:
        rows = fetchall(self)
        mark("sql.fetched", len(rows))
        return rows

    connect = psycopg.Connection.connect.__func__  # type: ignore[attr-defined]

    def probed_connect(cls: Any, *args: Any, **kwargs: Any) -> Any:
        mark("pg.connect.start")
        try:
            return connect(cls, *args, **kwargs)
        finally:
            mark("pg.connect.end")

    psycopg.Connection.connect = classmethod(probed_connect)  # type: ignore[assignment]
    psycopg.Cursor.execute = probed_execute  # type: ignore[method-assign]
    psycopg.Cursor.fetchall = probed_fetchall  # type: ignore[method-assign]

    def collected(phase: str, info: dict[str, int]) -> None:
        mark(f"gc.{phase}", info["generation"])

    gc.callbacks.append(collected)


def serve_probed(argv: list[str]) -> int:
    """``calsync`` `argv` with the probes in; the marks written to $PAGE_WALL_OUT at exit."""
    sys.path[0] = os.getcwd()  # the tree under test, not this file's folder
    marks: list[tuple[int, str, int, int, int, int]] = []
    lock = threading.Lock()

    def dump() -> None:
        with lock:
            Path(os.environ[OUT]).write_text(json.dumps(marks))

    def on_term(_signal: int, _frame: object) -> None:
        dump()  # uvicorn re-raises SIGTERM after its graceful stop, with this handler back
        os._exit(0)

    _install_probes(marks)
    atexit.register(dump)
    signal.signal(signal.SIGTERM, on_term)
    from calsync.cli import main as cli

    return cli(argv)


# --- the client's side ---------------------------------------------------------------


def _raw_get(sock: socket.socket, request: bytes) -> tuple[int, int, int, bytes, int]:
    """One keep-alive GET over a blocking socket: (sent, first byte, last byte) in ns,
    the body, the number of reads."""
    sent = time.perf_counter_ns()
    sock.sendall(request)
    chunks, reads, first = [], 0, 0
    head, length, got = b"", -1, 0
    while length < 0 or got < length:
        chunk = sock.recv(1 << 20)
        reads += 1
        if not first:
            first = time.perf_counter_ns()
        if not chunk:
            raise ConnectionError("closed")
        if length < 0:
            head += chunk
            if b"\r\n\r\n" in head:
                head, rest = head.split(b"\r\n\r\n", 1)
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                chunks, got = [rest], len(rest)
        else:
            chunks.append(chunk)
            got += len(chunk)
    return sent, first, time.perf_counter_ns(), b"".join(chunks), reads


def _sched(pid: int, threads: bool = True) -> tuple[int, int]:
    """(CPU ns, ns waited on a run queue) of `pid` (every thread of it with `threads`)."""
    paths = [f"/proc/{pid}/schedstat"]
    if threads:
        try:
            paths = [f"/proc/{pid}/task/{t}/schedstat" for t in os.listdir(f"/proc/{pid}/task")]
        except FileNotFoundError:
            return 0, 0
    cpu = wait = 0
    for path in paths:
        try:
            fields = Path(path).read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        cpu, wait = cpu + int(fields[0]), wait + int(fields[1])
    return cpu, wait


class Sched:
    """CPU and run-queue wait of the API process, PostgreSQL's backends of `database`,
    Redis and this client, read between pages (``/proc/*/schedstat``)."""

    def __init__(self, api: int, database: str) -> None:
        from tests.perf.month_pages import _backends

        self.api, self.database, self.backends = api, database, _backends
        self.pg: list[int] = []
        found = [int(p) for p in os.listdir("/proc") if p.isdigit() and _comm(p) == "redis-server"]
        self.redis = found[0] if found else 0

    def find_backends(self) -> None:
        """The database's backends now (a scan of /proc: once a month, not a page)."""
        self.pg = self.backends(self.database)

    def read(self) -> dict[str, tuple[int, int]]:
        """Per role (CPU ns, run-queue ns); ``vcpus.halts``: (entries, us)."""
        pg = [_sched(p, threads=False) for p in self.pg]
        return {
            "api": _sched(self.api),
            "pg": (sum(c for c, _ in pg), sum(w for _, w in pg)),
            "redis": _sched(self.redis, threads=False) if self.redis else (0, 0),
            "client": _sched(os.getpid()),
            "vcpus.halts": _idle(),
        }


def _idle() -> tuple[int, int]:
    """(entries, us) of every vCPU's halt state so far (cpuidle's deepest state: on this
    host's KVM guests ``haltpoll`` with ``guest_halt_poll_ns=0``, a halt at once)."""
    entries = spent = 0
    for cpu in Path("/sys/devices/system/cpu").glob("cpu[0-9]*"):
        states = sorted(cpu.glob("cpuidle/state[1-9]"))
        for state in states:
            entries += int((state / "usage").read_text())
            spent += int((state / "time").read_text())
    return entries, spent


def wake_ups(rounds: int, pause: float) -> None:
    """Round trips of one byte between this process and a child over a socketpair,
    `pause` seconds apart (the other side idle meanwhile, as between a page's hops):
    their p50/p90 and the vCPUs' halts a round trip. On an idle VM each wake-up of a
    halted vCPU goes through the hypervisor; on a loaded one it waits in a run queue."""
    ours, theirs = socket.socketpair()
    child = os.fork()
    if child == 0:  # the echo
        ours.close()
        while data := theirs.recv(1):
            theirs.send(data)
        os._exit(0)
    theirs.close()
    trips = []
    before = _idle()
    for _ in range(rounds):
        time.sleep(pause)
        started = time.perf_counter_ns()
        ours.send(b"x")
        ours.recv(1)
        trips.append((time.perf_counter_ns() - started) / 1e3)
    after = _idle()
    ours.close()
    os.waitpid(child, 0)
    trips.sort()
    print(
        f"wake-ups: {rounds} round trips {pause * 1e3:.1f} ms apart, load "
        f"{os.getloadavg()[0]:.2f}: p50 {trips[len(trips) // 2]:.1f} us, p90 "
        f"{trips[int(0.9 * len(trips))]:.1f} us, max {trips[-1]:.1f} us; vCPU halts "
        f"{(after[0] - before[0]) / rounds:.2f} a round trip"
    )


def _comm(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def _query(params: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return "/events?" + urlencode(params)


async def list_months(
    port: int, token: str, client: str, gap: float, sched: Sched
) -> list[dict[str, Any]]:
    """Every month of 2026 twice, serially; each page's client marks."""
    import aiohttp
    import orjson

    from tests.perf.bench_months import MONTHS, PAGE, month_last

    pages: list[dict[str, Any]] = []
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4)) as http:
        for run in range(2):
            for month in MONTHS:
                params = {
                    "start_date": month[0].isoformat(),
                    "end_date": month_last(month).isoformat(),
                    "expand": "true",
                    "limit": str(PAGE),
                }
                index = 0
                sched.find_backends()
                while True:
                    before = sched.read()
                    if client == "raw":
                        request = (
                            f"GET {_query(params)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                            f"Authorization: Bearer {token}\r\n\r\n"
                        ).encode()
                        sent, first, last, body, reads = _raw_get(sock, request)
                    else:
                        reads = 0
                        sent = time.perf_counter_ns()
                        async with http.get(
                            f"http://127.0.0.1:{port}/events",
                            params=params,
                            headers={"Authorization": f"Bearer {token}"},
                        ) as response:
                            first = time.perf_counter_ns()  # the head parsed
                            body = await response.read()
                        last = time.perf_counter_ns()
                    answer = orjson.loads(body)
                    if gap:
                        await asyncio.sleep(gap)  # the server's bookkeeping after the answer
                    after = sched.read()
                    used = {
                        f"{who}.{kind}": (after[who][i] - before[who][i]) / 1e6
                        for who in after
                        for i, kind in enumerate(("cpu", "wait"))
                    }
                    halts = after["vcpus.halts"][0] - before["vcpus.halts"][0]
                    used = {k: v for k, v in used.items() if not k.startswith("vcpus")}
                    used["vcpus.halts (count)"] = float(halts)
                    pages.append(
                        {"run": run, "month": month[0].month, "index": index, "sent": sent,
                         "first": first, "last": last, "size": len(body), "reads": reads,
                         "items": len(answer["events"]), "used": used}
                    )  # fmt: skip
                    index += 1
                    if not answer.get("next_cursor"):
                        break
                    params["cursor"] = answer["next_cursor"]
    sock.close()
    return pages


STEPS = [
    "server.recv",
    "asgi.start",
    "hop.call",
    "thread.start",
    "pg.connect.start",
    "pg.connect.end",
    "sql.send.1",
    "sql.done.1",
    "sql.send",
    "sql.done",
    "thread.end",
    "hop.back",
    "send.head.start",
    "send.body.start",
    "send.body.end",
    "server.pause_writing",
    "server.resume_writing",
    "client.first",
    "client.last",
]


def place(pages: list[dict[str, Any]], marks: list[list[Any]]) -> None:
    """Each page's server marks, relative to its send (ms): the first of a label (the
    last for sql.*: the page statement is the last statement), and the GC's pauses."""
    marks.sort()
    starts = [p["sent"] for p in pages] + [1 << 62]
    j = 0
    for n, page in enumerate(pages):
        while j < len(marks) and marks[j][0] < page["sent"]:
            j += 1
        found: dict[str, float] = {}
        values: dict[str, int] = {}
        gc_ms, gc_open = 0.0, 0
        counts: dict[str, int] = {}
        k = j
        sched: dict[str, tuple[int, int, int]] = {}
        while k < len(marks) and marks[k][0] < starts[n + 1]:
            ns, label, value, cpu, wait, thread = marks[k]
            at = (ns - page["sent"]) / 1e6
            if label.startswith("sql."):
                counts[label] = counts.get(label, 0) + 1
                found[f"{label}.{counts[label]}"] = at
                sched[f"{label}.{counts[label]}"] = (cpu, wait, thread)
            if label.startswith("sql.") or label not in sched:
                sched[label] = (cpu, wait, thread)
            if label.startswith("gc.stop") and gc_open:
                found[f"gc.{values.get('gc', 0)}"] = (ns - gc_open) / 1e6
                values["gc"] = values.get("gc", 0) + 1
            if label.startswith("sql.") or label not in found:
                found[label], values[label] = at, value
            if label == "gc.start":
                gc_open = ns
            elif label == "gc.stop" and gc_open:
                gc_ms += (ns - gc_open) / 1e6
            k += 1
        found["client.first"] = (page["first"] - page["sent"]) / 1e6
        found["client.last"] = (page["last"] - page["sent"]) / 1e6
        page["at"], page["values"], page["gc_ms"] = found, values, gc_ms
        page["sched"] = sched


def report(label: str, pages: list[dict[str, Any]]) -> None:
    print(f"  {label}: {len(pages)} pages of {statistics.median(p['size'] for p in pages):.0f} B")
    print(
        "    step (from the previous)  at p50 step p50 step mean; same thread, means: CPU"
        " run-queue blocked"
    )
    previous = "sent"
    for step in STEPS:
        values = [p["at"][step] for p in pages if step in p["at"]]
        if not values:
            continue
        steps, cpus, waits = [], [], []
        for p in pages:
            if step not in p["at"]:
                continue
            before = p["at"].get(previous, 0.0) if previous != "sent" else 0.0
            steps.append(p["at"][step] - before)
            a, b = p["sched"].get(previous), p["sched"].get(step)
            if a and b and a[2] == b[2]:
                cpus.append((b[0] - a[0]) / 1e6)
                waits.append((b[1] - a[1]) / 1e6)
        split = ""
        if cpus:  # means, so that the columns add up
            cpu, wait = statistics.mean(cpus), statistics.mean(waits)
            split = f" {cpu:8.3f} {wait:8.3f} {statistics.mean(steps) - cpu - wait:8.3f}"
        at, took = statistics.median(values), statistics.median(steps)
        print(f"    {step:22s} {at:8.3f} {took:8.3f} {statistics.mean(steps):8.3f}{split}")
        previous = step
    for name in pages[0]["used"]:
        values = [p["used"][name] for p in pages]
        p50, mean = statistics.median(values), statistics.mean(values)
        print(f"    {name:24s} p50 {p50:7.3f} ms  mean {mean:7.3f}")
    thread_cpu = [p["values"].get("thread.end", 0) / 1e6 for p in pages]
    kept = [p["values"].get("send.body.end", 0) for p in pages]
    paused = sum(1 for p in pages if "server.pause_writing" in p["at"])
    print(
        f"    route thread CPU p50 {statistics.median(thread_cpu):.3f} ms; transport kept "
        f"after the body's write p50 {statistics.median(kept):.0f} B; paused writing "
        f"{paused}/{len(pages)}; GC p50 {statistics.median(p['gc_ms'] for p in pages):.3f} "
        f"ms, mean {statistics.mean(p['gc_ms'] for p in pages):.3f}; reads p50 "
        f"{statistics.median(p['reads'] for p in pages):.0f}"
    )


async def one_server(
    code: str, database: str, args: argparse.Namespace, out: Path
) -> list[dict[str, Any]]:
    from calsync.bootstrap import bootstrap
    from calsync.config import Settings
    from calsync.web.auth.tokens import issue_token
    from tests.perf.bench_emulator import free_port
    from tests.perf.month_pages import _serving
    from tests.perf.profile_page import _environment, _state_file

    state = json.loads(_state_file(database).read_text())
    port = free_port()
    env = _environment("http://127.0.0.1:9", state["url"], state)
    env |= {"CALSYNC_PUBLIC_URL": f"http://127.0.0.1:{port}", OUT: str(out)}
    root = str(Path(code).resolve())
    env["PYTHONPATH"] = root
    serve = [sys.executable, str(Path(__file__).resolve()), "--serve-probed", "serve"]
    serve += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-access-log"]
    services = bootstrap(Settings.from_env(env))
    token = issue_token(services.jwt, subject=state["user"], email=state["email"], role="user")
    services.close()
    worker = [sys.executable, "-m", "calsync.cli", "worker", "--processes", "1"]
    worker += ["--threads", "4", "--metrics-port", "0"]
    with contextlib.ExitStack() as stack:
        if args.worker:  # as bench_months runs one beside the API
            stack.enter_context(_worker(worker, env, root))
        pid = stack.enter_context(_serving(serve, env, root, port))
        await asyncio.sleep(1.0)
        pages = await list_months(port, token, args.client, args.gap, Sched(pid, database))
    place(pages, json.loads(out.read_text()))
    return pages


async def main_async(args: argparse.Namespace) -> None:
    gc.collect()
    gc.freeze()
    found: dict[str, list[dict[str, Any]]] = {code: [] for code in args.code}
    for round_ in range(args.rounds):
        for code in args.code if round_ % 2 == 0 else list(reversed(args.code)):
            load = os.getloadavg()[0]
            out = Path(tempfile.gettempdir()) / f"page_wall_{os.getpid()}.json"
            pages = await one_server(code, args.database, args, out)
            warm = [p for p in pages if p["run"] == 1]
            month = [p for p in pages if p["run"] == 0 and p["month"] == 1]
            print(
                f"round {round_ + 1} {code}: load {load:.2f}; warm last byte p50 "
                f"{statistics.median(p['at']['client.last'] for p in warm):.2f} ms; cold "
                f"first page {pages[0]['at']['client.last']:.2f} ms; first month "
                f"{sum(p['at']['client.last'] for p in month):.1f} ms"
                f"; first page API CPU {pages[0]['used']['api.cpu']:.2f} ms, PG "
                f"{pages[0]['used']['pg.cpu']:.2f}; first month API CPU "
                f"{sum(p['used']['api.cpu'] for p in month):.1f}",
                flush=True,
            )
            found[code] += pages
    if args.dump:
        Path(args.dump).write_text(json.dumps(found))
    for code, pages in found.items():
        print(f"== {code} ({args.rounds} rounds, client {args.client}, gap {args.gap}, ", end="")
        print(f"worker {args.worker})")
        report("warm pages of 200", [p for p in pages if p["run"] == 1 and p["items"] == 200])
        report("cold process's first page", [p for p in pages if p is pages_first(pages, p)])
    print(f"load average at the end {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


@contextlib.contextmanager
def _worker(argv: list[str], env: dict[str, str], root: str) -> Iterator[None]:
    child = subprocess.Popen(argv, env={**os.environ, **env}, cwd=root)
    try:
        yield
    finally:
        child.terminate()
        child.wait(30)


def pages_first(pages: list[dict[str, Any]], page: dict[str, Any]) -> dict[str, Any] | None:
    """`page` if it is a server's first page (run 0, January, index 0)."""
    return page if page["run"] == 0 and page["month"] == 1 and page["index"] == 0 else None


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-probed":
        raise SystemExit(serve_probed(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "--wake-ups":
        for pause in (0.0, 0.001, 0.005):
            wake_ups(2000, pause)
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database", default="calsync_profile_page")
    parser.add_argument("--code", action="append", help="a source tree (default: this one)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--dump", help="write every page's marks to this JSON file")
    parser.add_argument("--gap", type=float, default=0.003, help="seconds between pages")
    parser.add_argument("--worker", action="store_true", help="a calsync worker beside")
    parser.add_argument("--client", choices=["aiohttp", "raw"], default="aiohttp")
    args = parser.parse_args()
    args.code = args.code or ["."]
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
