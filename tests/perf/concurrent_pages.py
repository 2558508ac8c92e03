"""bench_months' concurrent phase alone: ``--users`` users paging their own months at once
through one ``calsync serve --workers 1``, and where the host's CPU goes. Prints figures.

Run: ``.venv/bin/python -m tests.perf.concurrent_pages --seed-data --database D`` once
(one realistic 10,000-event calendar as `tests.perf.bench_months` makes it, shared with
``--users`` - 1 other users who each pull it into their own rows, as bench_months does;
the read model filled and its upkeep run to the end; 2-4 minutes), then
``.venv/bin/python -m tests.perf.concurrent_pages --database D [--code PATH ...]`` as
often as wanted. For each ``--code`` (a source tree run as the server, ``.`` is this one),
round after round in turn: a fresh server, every user lists one month (warm-up, not
counted), then all users page their months at once for ``--seconds`` (each user starts
on a different month and goes on to the next, as bench_months does), every page read and
every instance counted. Printed: pages a second, page p50/p99, and the CPU (user +
system, from ``/proc``) of the API process (and of each of its threads by name), of
PostgreSQL's backends for the database, of the client process(es), and of the host as a
whole, over the measured seconds, in cores and in ms a page.

``--clients K`` runs the users in K client processes (default 1, as bench_months);
``--parse count`` has the client count a page's instances without building its objects
(the page still read whole, its count checked against the full parse on the first page
of each listing); ``--py-spy N`` takes N ``py-spy dump`` samples of the API process
during the run (py-spy in this venv, not a dependency) and tallies what each thread was
doing; ``--threads T`` sets ``CALSYNC_API_THREADS`` for the server.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import sqlalchemy as sa

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.emulator.testing import EmulatorControl
from calsync.events import read_model, upkeep
from calsync.store.migrate import upgrade
from calsync.store.tables import Calendar
from calsync.sync.calendar_list import sync_calendar_list
from calsync.sync.pull import pull_calendar
from calsync.web.auth.tokens import issue_token
from tests.google_users import connect_google_user
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_months import (
    MONTHS,
    PAGE,
    analyse,
    generate,
    month_last,
    seed_through_google,
)
from tests.perf.bench_peer import connect
from tests.perf.bench_sync import fresh_database
from tests.perf.month_pages import _serving
from tests.perf.process_cpu import host_busy
from tests.perf.profile_page import _environment, _state_file

TICK = os.sysconf("SC_CLK_TCK")


# --- seeding ----------------------------------------------------------------------------


def seed_data(args: argparse.Namespace) -> None:
    """One calendar, seeded through the emulator, read by `args.users` users (each its
    own rows, pulled), the read model filled and kept up to the end."""
    import uuid

    from cryptography.fernet import Fernet

    state: dict[str, Any] = {
        "redis": args.redis,
        "jwt": uuid.uuid4().hex * 2,
        "fernet": Fernet.generate_key().decode(),
    }
    emulator_port = free_port()
    emulator = start_emulator(emulator_port)
    base = f"http://127.0.0.1:{emulator_port}"
    url = fresh_database(args.database)
    services = bootstrap(Settings.from_env(_environment(base, url, state)))
    started = time.perf_counter()
    try:
        upgrade(services.engine)
        users: list[tuple[str, str]] = []
        calendars = []
        with EmulatorControl(base) as control:
            main = connect(services, control, "months0@example.com")
            seed_through_google(base, main.token, main.email, generate(args.seed, args.events))
            users.append((str(main.user_id), main.email))
            calendars.append(main.calendar_id)
            for k in range(1, args.users):
                email = f"months{k}@example.com"
                account, _granted = connect_google_user(services, control, email)
                control.share(main.email, email, "reader")
                sync_calendar_list(services, account.id)
                with services.sessions() as session:
                    calendars.append(
                        session.scalars(
                            sa.select(Calendar.id).where(
                                Calendar.user_id == account.id,
                                Calendar.provider_calendar_id == main.email,
                            )
                        ).one()
                    )
                users.append((str(account.id), email))
        for calendar_id in calendars:
            assert pull_calendar(services, calendar_id).full
        analyse(services)  # as bench_months does: the upkeep's plans need statistics
        read_model.fill(services.sessions, datetime.now(UTC))
        while upkeep.catch_up(services.sessions, run_for=3600.0).more:  # as the workers would
            pass
        analyse(services)  # as autovacuum would (decision IP1)
        state |= {"url": url, "users": users, "user": users[0][0], "email": users[0][1]}
        _state_file(args.database).write_text(json.dumps(state))
        print(f"seeded {len(users)} users in {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        services.close()
        emulator.terminate()
        emulator.wait(10)


# --- the client -------------------------------------------------------------------------


def _count(body: bytes) -> tuple[int, str | None]:
    """A page's instance count and next cursor without building its objects: every
    item carries one top-level ``"sync_state":`` key (checked against the full parse of
    each listing's first page; a metadata key of that name would fail the check)."""
    items = body.count(b'"sync_state":')
    at = body.rfind(b'"next_cursor":')
    if at < 0:
        raise ValueError("no next_cursor in the page")
    rest = body[at + 14 :].lstrip()
    if rest.startswith(b"null"):
        return items, None
    return items, orjson.loads(rest[: rest.index(b'"', 1) + 1])


async def _list(
    http: aiohttp.ClientSession, api: str, token: str, month: int, parse: str, pages: list[float]
) -> int:
    first, after = MONTHS[month % 12]
    params = {
        "start_date": first.isoformat(),
        "end_date": month_last((first, after)).isoformat(),
        "expand": "true",
        "limit": str(PAGE),
    }
    headers = {"Authorization": f"Bearer {token}"}
    items, checked = 0, False
    while True:
        started = time.perf_counter()
        async with http.get(f"{api}/events", params=params, headers=headers) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(f"{response.status}: {body[:300]!r}")
        pages.append(time.perf_counter() - started)
        if parse == "full" or not checked:
            answer = orjson.loads(body)
            got, cursor = len(answer["events"]), answer.get("next_cursor")
            if parse == "count":
                assert _count(body) == (got, cursor), (_count(body), got, cursor)
                checked = True
        else:
            got, cursor = _count(body)
        items += got
        if not cursor:
            return items
        params["cursor"] = cursor


async def _clients(
    api: str, tokens: list[tuple[int, str]], seconds: float, parse: str, gate: Any
) -> dict[str, Any]:
    """The users of `tokens` (index, token): each lists one month (warm-up, not
    counted), then, once `gate` (ready queue, go event) lets them, all page for
    `seconds` (a listing under way then is finished and counted)."""
    gc.collect()
    gc.freeze()  # this client's full collections stalled a page's parse (decision HZ3)
    pages: list[float] = []
    counts = {"pages": 0, "items": 0, "months": 0}
    ready, go = gate
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as http:
        for k, token in tokens:
            await _list(http, api, token, k, parse, [])
        ready.put(os.getpid())
        await asyncio.to_thread(go.wait)
        cpu = time.process_time()
        stop = time.perf_counter() + seconds

        async def user(k: int, token: str) -> None:
            n = k
            while time.perf_counter() < stop:
                mine: list[float] = []
                got = await _list(http, api, token, n, parse, mine)
                counts["items"] += got  # after the await: `+= await` would lose updates
                pages.extend(mine)
                counts["pages"] += len(mine)
                counts["months"] += 1
                n += 1

        started = time.perf_counter()
        await asyncio.gather(*(user(k, token) for k, token in tokens))
        elapsed = time.perf_counter() - started
    return counts | {"seconds": elapsed, "cpu": time.process_time() - cpu, "walls": pages}


def _client_process(
    api: str, tokens: list[tuple[int, str]], seconds: float, parse: str, gate: Any, out: Any
) -> None:
    out.put(asyncio.run(_clients(api, tokens, seconds, parse, gate)))


# --- measuring --------------------------------------------------------------------------


def _thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of `pid`, keyed by name and thread id."""
    found: dict[str, float] = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{task}/comm").read_text().strip()
            fields = Path(f"/proc/{pid}/task/{task}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[f"{name}:{task}"] = (int(fields[11]) + int(fields[12])) / TICK
    return found


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / TICK


def _backends(database: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                title = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"postgres: ") and f" {database} ".encode() in title:
                found.append(int(entry))
    return found


def _sample(api: int, database: str, clients: list[int]) -> dict[str, Any]:
    return {
        "threads": _thread_cpu(api),
        "api": _proc_cpu(api),
        "pg": {pid: _proc_cpu(pid) for pid in _backends(database)},
        "clients": sum(_proc_cpu(pid) for pid in clients),
        "host": host_busy(),
        "wall": time.perf_counter(),
    }


def _spy(pid: int, samples: int, seconds: float) -> collections.Counter[str]:
    """What each API thread was doing, `samples` ``py-spy dump`` over `seconds`: its
    innermost frame of calsync's or the library's, or idle."""
    tally: collections.Counter[str] = collections.Counter()
    # py-spy dump prints each thread's stack innermost first
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        raise RuntimeError("--py-spy needs py-spy in this venv")
    for _ in range(samples):
        dumped = subprocess.run(
            [spy, "dump", "--pid", str(pid), "--nonblocking"], capture_output=True, text=True
        ).stdout
        thread, top = "", True
        for line in dumped.splitlines():
            if line.startswith("Thread "):
                thread = line.replace(" (", " ").replace("):", ":")
                top = True
            elif line.startswith("    ") and top:
                tally[f"{thread} | {line.strip()}"] += 1
                top = False
        time.sleep(seconds / samples)
    return tally


def one_server(
    code: str, threads: int, state: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    port = free_port()
    env = _environment("http://127.0.0.1:9", state["url"], state)
    env |= {"CALSYNC_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    if threads:
        env["CALSYNC_API_THREADS"] = str(threads)
    root = str(Path(code).resolve())
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
    serve = [sys.executable, "-m", "calsync.cli", "serve", "--host", "127.0.0.1"]
    serve += ["--port", str(port), "--workers", "1", "--no-access-log"]
    services = bootstrap(Settings.from_env(env))
    tokens = [
        (k, issue_token(services.jwt, subject=user, email=email, role="user"))
        for k, (user, email) in enumerate(state["users"][: args.users])
    ]
    services.close()
    api = f"http://127.0.0.1:{port}"
    with _serving(serve, env, root, port) as pid:
        time.sleep(1.0)
        rss_before = _rss(pid)
        context = multiprocessing.get_context("spawn")
        ready, go, out = context.Queue(), context.Event(), context.Queue()
        clients = [
            context.Process(
                target=_client_process,
                args=(api, tokens[c :: args.clients], args.seconds, args.parse, (ready, go), out),
            )
            for c in range(args.clients)
        ]
        for client in clients:
            client.start()
        children = [ready.get(timeout=600) for _ in clients]
        load = os.getloadavg()[0]
        before = _sample(pid, args.database, children)
        go.set()
        spied = _spy(pid, args.py_spy, args.seconds * 0.9) if args.py_spy else None
        done = [out.get(timeout=600) for _ in clients]
        after = _sample(pid, args.database, children)
        for client in clients:
            client.join()
        rss_after = _rss(pid)
    return {
        "done": done,
        "before": before,
        "after": after,
        "load": load,
        "rss": (rss_before, rss_after),
        "spied": spied,
    }


def _rss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _q(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def summary(found: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """The run's figures, and each API thread's CPU seconds over it."""
    done, before, after = found["done"], found["before"], found["after"]
    pages = sum(d["pages"] for d in done)
    seconds = max(d["seconds"] for d in done)
    walls = [w for d in done for w in d["walls"]]
    span = after["wall"] - before["wall"]
    threads = {
        name: cpu - before["threads"].get(name, 0.0) for name, cpu in after["threads"].items()
    }
    pg = sum(cpu - before["pg"].get(p, 0.0) for p, cpu in after["pg"].items())
    api = after["api"] - before["api"]  # the process's: threads gone since count too
    figures = {
        "pages/s": pages / seconds,
        "pages": pages,
        "items": sum(d["items"] for d in done),
        "p50 ms": _q(walls, 0.5) * 1000,
        "p99 ms": _q(walls, 0.99) * 1000,
        "span s": span,
        "api cores": api / span,
        "api main cores": max(threads.values()) / span,
        "pg cores": pg / span,
        "client cores": (after["clients"] - before["clients"]) / span,
        "host cores": (after["host"] - before["host"]) / span,
        "api ms/page": api * 1000 / pages,
        "pg ms/page": pg * 1000 / pages,
        "client ms/page": (after["clients"] - before["clients"]) * 1000 / pages,
        "host ms/page": (after["host"] - before["host"]) * 1000 / pages,
        "load": found["load"],
        "rss before": found["rss"][0],
        "rss after": found["rss"][1],
    }
    return figures, threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-data", action="store_true")
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--database", default="calsync_concurrent_pages")
    parser.add_argument("--code", action="append", help="a source tree (default: this one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--parse", choices=("full", "count"), default="full")
    parser.add_argument(
        "--threads", type=int, action="append", help="CALSYNC_API_THREADS (each, in turn)"
    )
    parser.add_argument("--py-spy", type=int, default=0, help="py-spy dumps of the API")
    args = parser.parse_args()
    if args.seed_data:
        seed_data(args)
        return
    state = json.loads(_state_file(args.database).read_text())
    sides = [(code, threads) for code in args.code or ["."] for threads in args.threads or [0]]
    for round_ in range(args.rounds):
        for code, threads in sides if round_ % 2 == 0 else list(reversed(sides)):
            found = one_server(code, threads, state, args)
            figures_spied = found["spied"]
            figures, by_thread = summary(found)
            print(
                f"round {round_ + 1} {code} threads {threads or 'default'} ({args.users} users, "
                f"{args.clients} client process(es), parse {args.parse}): "
                + ", ".join(f"{k} {v:,.2f}" for k, v in figures.items()),
                flush=True,
            )
            busy = sorted(by_thread.items(), key=lambda kv: -kv[1])[:8]
            span = figures["span s"]
            print(
                "  API threads (cores): "
                + ", ".join(f"{n} {v / span:.2f}" for n, v in busy if v > 0),
                flush=True,
            )
            for what, n in figures_spied.most_common(40) if figures_spied else []:
                print(f"    {n:4d} {what}")
    print(f"load average at the end {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
