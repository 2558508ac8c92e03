"""Where a ``/healthz`` answer waits while the API is saturated (issue 21, decision JA).
Prints figures, asserts nothing.

Run: ``.venv/bin/python -m tests.perf.healthz_waits [--switch-interval 0.001]
[--pool-nice 10] -- [bench_api_load's arguments, e.g. --quick --no-analyse --redis URL
--database NAME]``

It runs ``tests.perf.bench_api_load`` unchanged, with a ``sitecustomize`` (a temporary
folder put first on ``PYTHONPATH``) that acts only in its ``calsync serve`` process: it
wraps the app so that a ``/healthz`` answer carries the monotonic times at which the app
was called and answered, samples the event loop's timer lateness (a 10 ms sleep on the
loop) and a bare thread's wake-up lateness (a 10 ms ``time.sleep`` in a thread: the
interpreter lock and a CPU, without the loop's backlog), and optionally sets the
interpreter's switch interval or gives the thread pool's threads a nice value. The
``serve-webhooks`` process (the intake) only reports its port. Beside the benchmark, in a
process of its own with one thread (so that it waits for no interpreter lock), a
raw-socket client asks the API's ``/healthz`` every 20 ms and the intake's ``/healthz``
10 ms after each (the control: an idle process on the same host), and reads the API's
threads' ``schedstat`` (time on a CPU and time runnable but waiting for one) when ``wrk``
starts and stops.

Prints bench_api_load's summary, then for the measured load (the last span ``wrk`` runs):
the probe's latency split into send -> app called (the kernel, the loop's wake-up: a CPU,
the interpreter lock, the callbacks ahead of it), app -> answer started, answer started
-> read by the client (the client's wake-up); the control's latency; the two
latenesses; and each busy API thread's CPU time and run-queue wait. Clocks are
``CLOCK_MONOTONIC`` (``time.perf_counter_ns``), one for every process on the host.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DIR_VARIABLE = "HEALTHZ_WAITS_DIR"
SITE = f"""import sys
sys.path.insert(0, {str(ROOT)!r})
from tests.perf.healthz_waits import install
install()
"""


def install() -> None:
    """In the benchmark's ``serve`` process: note the port and pid, apply the settings
    under test, and time ``/healthz``. In ``serve-webhooks``: note the port."""
    folder, argv = os.environ.get(DIR_VARIABLE), sys.argv[1:]
    if not folder or "--port" not in argv:
        return
    port = argv[argv.index("--port") + 1]
    if "serve-webhooks" in argv:
        Path(folder, "intake").write_text(f"{port} {os.getpid()}")
    elif "serve" in argv:
        if os.environ.get("HEALTHZ_WAITS_SWITCH"):
            sys.setswitchinterval(float(os.environ["HEALTHZ_WAITS_SWITCH"]))
        if os.environ.get("HEALTHZ_WAITS_NICE"):
            _nice_pool(int(os.environ["HEALTHZ_WAITS_NICE"]))
        _time_healthz(Path(folder))
        Path(folder, "api").write_text(f"{port} {os.getpid()}")


def _nice_pool(nice: int) -> None:
    from anyio._backends import _asyncio

    run = _asyncio.WorkerThread.run

    def nice_run(self: Any) -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        run(self)

    _asyncio.WorkerThread.run = nice_run  # type: ignore[method-assign]


def _time_healthz(folder: Path) -> None:
    import asyncio

    import calsync.web.asgi as asgi

    factory = asgi.app_factory
    lateness: dict[str, list[tuple[int, int]]] = {"loop": [], "thread": []}

    def thread_probe() -> None:
        while True:
            started = time.perf_counter_ns()
            time.sleep(0.01)
            lateness["thread"].append((started, time.perf_counter_ns() - started - 10**7))
            if len(lateness["thread"]) % 300 == 0:
                Path(folder, f"lateness-{os.getpid()}.json").write_text(json.dumps(lateness))

    async def loop_probe() -> None:
        while True:
            started = time.perf_counter_ns()
            await asyncio.sleep(0.01)
            lateness["loop"].append((started, time.perf_counter_ns() - started - 10**7))

    def app_factory() -> Any:
        app = factory()
        probes: list[Any] = []

        async def timed_app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http" or scope["path"] != "/healthz":
                return await app(scope, receive, send)
            called = time.perf_counter_ns()
            if not probes:
                probes.append(asyncio.get_running_loop().create_task(loop_probe()))
                threading.Thread(target=thread_probe, daemon=True).start()

            async def send_timed(message: Any) -> None:
                if message["type"] == "http.response.start":
                    times = [(b"x-called-ns", b"%d" % called)]
                    times.append((b"x-answered-ns", b"%d" % time.perf_counter_ns()))
                    message = {**message, "headers": [*message.get("headers", []), *times]}
                await send(message)

            return await app(scope, receive, send_timed)

        return timed_app

    asgi.app_factory = app_factory  # type: ignore[assignment]


def _port_and_pid(folder: Path, name: str) -> tuple[int, int]:
    while not Path(folder, name).exists():
        time.sleep(0.05)
    time.sleep(0.05)
    port, pid = Path(folder, name).read_text().split()
    return int(port), int(pid)


def _connect(port: int) -> socket.socket:
    """A connection once the server listens (the port is noted before it binds)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _wrk_running() -> bool:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path("/proc", entry, "comm").read_text().strip() == "wrk":
                    return True
            except OSError:
                pass
    return False


def _schedstat(pid: int) -> dict[str, list[int]]:
    """Each thread's nanoseconds on a CPU and runnable waiting for one."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            on_cpu, waiting, _ = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
        except OSError:  # the thread ended
            continue
        threads[tid] = [int(on_cpu), int(waiting)]
    return threads


def _ask(sock: socket.socket) -> tuple[int, int, int, int]:
    """One ``GET /healthz``: sent, read, and the server's called and answered times."""
    sent = time.perf_counter_ns()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: probe\r\n\r\n")
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise OSError("closed")
        data += chunk
        head, ended, body = data.partition(b"\r\n\r\n")
        if ended:
            lines = [line.split(b": ", 1) for line in head.split(b"\r\n")[1:]]
            headers = {name.lower(): value for name, value in lines}
            if len(body) >= int(headers.get(b"content-length", b"0")):
                break
    read = time.perf_counter_ns()
    return sent, read, int(headers.get(b"x-called-ns", 0)), int(headers.get(b"x-answered-ns", 0))


def probe(folder: Path) -> None:
    """The single-threaded client: until the API closes, every 20 ms."""
    api_port, api_pid = _port_and_pid(folder, "api")
    api = _connect(api_port)
    intake = _connect(_port_and_pid(folder, "intake")[0])
    rows: list[Any] = []
    control: list[Any] = []
    marks: list[Any] = []
    loaded, checked = False, 0.0
    while True:
        if time.monotonic() - checked > 0.1:
            checked = time.monotonic()
            if _wrk_running() != loaded:
                loaded = not loaded
                marks.append([time.perf_counter_ns(), loaded, _schedstat(api_pid)])
        try:
            rows.append([*_ask(api), loaded])
        except OSError:
            break
        time.sleep(0.01)
        try:
            with_control = _ask(intake)
        except OSError:
            break
        control.append([with_control[0], with_control[1]])
        time.sleep(max(0.0, 0.02 - (time.perf_counter_ns() - rows[-1][0]) / 1e9))
    figures = {"api": rows, "control": control, "marks": marks}
    Path(folder, "probe.json").write_text(json.dumps(figures))


def _quantiles(values: list[int]) -> str:
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return (
        f"p50 {cuts[49] / 1e6:6.2f}  p90 {cuts[89] / 1e6:6.2f}  p99 {cuts[98] / 1e6:6.2f}  "
        f"max {ordered[-1] / 1e6:6.1f} ms ({len(values)})"
    )


def analyse(folder: Path) -> None:
    figures = json.loads(Path(folder, "probe.json").read_text())
    rows = figures["api"]
    last = max(i for i, row in enumerate(rows) if row[4])
    first = last
    while first > 0 and rows[first - 1][4]:
        first -= 1
    rows = rows[first : last + 1]
    low, high = rows[0][0], rows[-1][1]
    print(f"/healthz, single-threaded raw client  {_quantiles([r[1] - r[0] for r in rows])}")
    print(f"  sent -> app called                  {_quantiles([r[2] - r[0] for r in rows])}")
    print(f"  app called -> answer started        {_quantiles([r[3] - r[2] for r in rows])}")
    print(f"  answer started -> read by client    {_quantiles([r[1] - r[3] for r in rows])}")
    control = [c[1] - c[0] for c in figures["control"] if low <= c[0] <= high]
    print(f"control: the intake's /healthz        {_quantiles(control)}")
    for path in folder.glob("lateness-*.json"):
        lateness = json.loads(path.read_text())
        for name, label in (
            ("loop", "event loop's 10 ms timer"),
            ("thread", "a thread's 10 ms sleep"),
        ):
            late = [value for started, value in lateness[name] if low <= started <= high]
            print(f"lateness, {label:26s}  {_quantiles(late)}")
    marks = [m for m in figures["marks"] if low - 2 * 10**8 <= m[0] <= high + 2 * 10**8]
    if len(marks) >= 2:
        (start, _, before), (end, _, after) = marks[0], marks[-1]
        print(f"API threads over {(end - start) / 1e9:.1f} s: seconds on a CPU / runnable, waiting")
        for tid, (on_cpu, waiting) in after.items():
            if tid in before and on_cpu - before[tid][0] > 10**7:
                busy = (on_cpu - before[tid][0]) / 1e9
                print(f"  thread {tid:>8}  {busy:6.2f} / {(waiting - before[tid][1]) / 1e9:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval (s)")
    parser.add_argument("--pool-nice", type=int, help="nice value of the thread pool's threads")
    parser.add_argument("--probe", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("bench", nargs=argparse.REMAINDER, help="bench_api_load's arguments")
    args = parser.parse_args()
    if args.probe:
        probe(args.probe)
        return
    with tempfile.TemporaryDirectory(prefix="healthz-waits-") as temporary:
        folder = Path(temporary)
        Path(folder, "site").mkdir()
        Path(folder, "site", "sitecustomize.py").write_text(SITE)
        env = {**os.environ, "PYTHONPATH": str(folder / "site"), DIR_VARIABLE: str(folder)}
        if args.switch_interval:
            env["HEALTHZ_WAITS_SWITCH"] = str(args.switch_interval)
        if args.pool_nice is not None:
            env["HEALTHZ_WAITS_NICE"] = str(args.pool_nice)
        command = [sys.executable, "-m", "tests.perf.healthz_waits", "--probe", str(folder)]
        client = subprocess.Popen(command)
        bench = [a for a in args.bench if a != "--"]
        subprocess.run([sys.executable, "-m", "tests.perf.bench_api_load", *bench], env=env)
        client.wait()
        analyse(folder)


if __name__ == "__main__":
    main()
