"""Embedded mode's writes under a mix: how long each waits for SQLite's write lock, and
behind whom.

Run: ``.venv/bin/python -m tests.perf.embedded_writes [--users 6] [--seconds 20]
[--events 150] [--clients 6]``

The stack as the embedded tests run it (`tests.integration.sync.conftest.running_stack`:
the API on a thread, Dramatiq's worker threads on the in-process broker, plus the
scheduler's thread as ``calsync dev`` runs it) on a fresh SQLite file, against the
in-process emulator with push notifications. `--users` users are connected with
`--events` events each (a fifth of them weekly series), then for `--seconds` seconds
`--clients` client threads, each for a user in turn, send API writes (``PUT
/me/preferences``, ``POST /events``, ``PATCH /events/{id}``) while another client edits
events at Google (each edit notifies calsync, whose workers pull), and the scheduler
ticks (read model upkeep, reminders, outbox, sweeps).

Prints the writes' waits for the lock (p50/p99/max, the first write statement's time,
`tests.sqlite_writes`), the API requests' wall times, the longest holds by caller, the
longest waits with who held the lock meanwhile, and the "database is locked" errors.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx

from calsync.config import Settings
from calsync.emulator.server import EmulatorServer
from calsync.emulator.testing import EmulatorControl
from calsync.runtime import scheduler_thread
from calsync.store import sqlite_turns
from calsync.sync.channels import ensure_channels
from tests.conftest import FakeGoogle
from tests.integration.sync.conftest import SyncStack, migrated, running_stack, sync_settings
from tests.sqlite_writes import Write, WriteLockLog


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _bodies(email: str, n: int) -> list[dict[str, Any]]:
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    bodies = []
    for i in range(n):
        start = base + timedelta(hours=7 * i - 24 * 30)
        body: dict[str, Any] = {
            "summary": f"{email} {i}",
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
        }
        if i % 5 == 0:
            body["recurrence"] = ["RRULE:FREQ=WEEKLY;COUNT=40"]
            body["start"]["timeZone"] = body["end"]["timeZone"] = "Europe/Paris"
        bodies.append(body)
    return bodies


def _stack(folder: Path, google: FakeGoogle) -> Iterator[SyncStack]:
    settings = migrated(Settings.embedded(folder))
    yield from running_stack(sync_settings(settings, google), google)


def _client(stack: SyncStack, users: list[tuple[str, Any]], stop: threading.Event,
            walls: dict[str, list[float]], errors: list[str], seed: int) -> None:  # fmt: skip
    created: dict[Any, list[str]] = defaultdict(list)
    with httpx.Client(base_url=stack.url, timeout=120) as client:
        for n in itertools.count(seed):
            if stop.is_set():
                return
            _email, user = users[n % len(users)]
            headers = stack.headers(user)
            kind = ("preferences", "create", "patch")[n % 3]
            started = time.monotonic()
            if kind == "preferences":
                body = {"reminder_minutes": [10 + n % 50]}
                answer = client.put("/me/preferences", json=body, headers=headers)
            elif kind == "create" or not created[user]:
                kind = "create"
                start = datetime.now(UTC) + timedelta(days=1 + n % 20, hours=n % 7)
                body = {"title": f"api {n}", "start_time": start.isoformat(),
                        "end_time": (start + timedelta(hours=1)).isoformat()}  # fmt: skip
                answer = client.post("/events", json=body, headers=headers)
                if answer.status_code in (200, 201):
                    created[user].append(answer.json()["id"])
            else:
                event_id = created[user][n % len(created[user])]
                answer = client.patch(f"/events/{event_id}", json={"title": f"edit {n}"},
                                      headers=headers)  # fmt: skip
            walls[kind].append(time.monotonic() - started)
            if answer.status_code >= 500:
                errors.append(f"{kind} {answer.status_code} {answer.text[:200]}")


def _google_editor(stack: SyncStack, emails: list[str], stop: threading.Event) -> None:
    ids = {e: [i["id"] for i in stack.google_as(e).events().list(calendarId=e).execute()["items"]]
           for e in emails}  # fmt: skip
    for n in itertools.count():
        if stop.wait(0.2):
            return
        email = emails[n % len(emails)]
        event_id = ids[email][n % len(ids[email])]
        stack.google_as(email).events().patch(
            calendarId=email, eventId=event_id, body={"summary": f"google edit {n}"}
        ).execute()


def run(args: argparse.Namespace) -> None:
    with ExitStack() as stack_of, tempfile.TemporaryDirectory(prefix="je-embedded-") as tmp:
        emulator = stack_of.enter_context(EmulatorServer())
        control = stack_of.enter_context(EmulatorControl(emulator.url))
        control.reset()
        google = FakeGoogle(emulator.url, control)
        stacks = _stack(Path(tmp), google)
        stack = next(stacks)
        emails = [f"user{i}@example.com" for i in range(args.users)]
        users = []
        for email in emails:
            user = stack.connect_pulled(email)
            stack.insert_many(email, _bodies(email, args.events), email)
            ensure_channels(stack.services, user)
            users.append((email, user))
        log = WriteLockLog()
        log.attach(stack.services.engine)
        stop = threading.Event()
        walls: dict[str, list[float]] = defaultdict(list)
        errors: list[str] = []
        with scheduler_thread(stack.services):
            threads = [threading.Thread(target=_client, args=(stack, users, stop, walls, errors, i))
                       for i in range(args.clients)]  # fmt: skip
            threads.append(threading.Thread(target=_google_editor, args=(stack, emails, stop)))
            for thread in threads:
                thread.start()
            time.sleep(args.seconds)
            stop.set()
            for thread in threads:
                thread.join()
        log.detach(stack.services.engine)
        _report(log, walls, errors)
        passes = sum(line._passes for line in sqlite_turns._LINES.values())
        print(f"turns handed to a later comer while an earlier one waited: {passes}")
        next(stacks, None)


def _report(log: WriteLockLog, walls: dict[str, list[float]], errors: list[str]) -> None:
    writes = list(log.writes)
    waits = [w.waited * 1000 for w in writes]
    print(f"writing transactions: {len(writes)}; 'database is locked': {len(log.locked_errors)}; "
          f"5xx: {len(errors)}")  # fmt: skip
    print(f"lock wait ms p50 {_pct(waits, 0.5):.1f} p99 {_pct(waits, 0.99):.1f} "
          f"max {max(waits, default=0):.1f}; "
          f"longest hold {log.longest_hold() * 1000:.1f} ms")  # fmt: skip
    for kind, values in sorted(walls.items()):
        ms = [v * 1000 for v in values]
        print(f"API {kind}: n={len(ms)} wall ms p50 {_pct(ms, 0.5):.1f} p99 {_pct(ms, 0.99):.1f}"
              f" max {max(ms):.1f}")  # fmt: skip
    by_who: dict[str, list[Write]] = defaultdict(list)
    for w in writes:
        by_who[w.who].append(w)
    print("holds by caller (n, total ms, max ms, max wait ms):")
    for who, ws in sorted(by_who.items(), key=lambda kv: -max(w.held for w in kv[1]))[:14]:
        longest, waited = max(w.held for w in ws), max(w.waited for w in ws)
        print(f"  {len(ws):5d} {sum(w.held for w in ws) * 1000:9.0f} "
              f"{longest * 1000:8.1f} {waited * 1000:8.1f}  {who}")  # fmt: skip
    print("longest waits (wait ms, who; holders meanwhile: held ms, who):")
    for w in sorted(writes, key=lambda w: -w.waited)[:6]:
        held = log.holders_during(w)
        biggest, total = max((h.held for h in held), default=0.0), sum(h.held for h in held)
        print(f"  {w.waited * 1000:8.1f} {w.who} [{w.thread}] - {len(held)} holders, "
              f"longest {biggest * 1000:.1f} ms, sum {total * 1000:.1f} ms")  # fmt: skip
        for h in sorted(held, key=lambda h: -h.held)[:3]:
            print(f"      {h.held * 1000:8.1f} {h.who} [{h.thread}]")
    for text in log.locked_errors[:5]:
        print("  locked:", text[:200])
    for text in errors[:5]:
        print("  5xx:", text)
    if waits:
        print(f"mean wait {statistics.mean(waits):.1f} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--events", type=int, default=150)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument(
        "--line", choices=["on", "off", "strict"], default="on",
        help="off: writers do not take turns (as main before JE1: SQLite's busy handler); "
        "on: the line as it ships (JG1: latest waiter first, bounded); "
        "strict: first come, first served (JE2)",
    )  # fmt: skip
    parser.add_argument("--overtakes", type=int, help="the line's MAX_OVERTAKES")
    parser.add_argument("--max-wait-ms", type=float, help="the line's MAX_WAIT in ms")
    args = parser.parse_args(argv)
    if args.line == "off":
        sqlite_turns.join_line = lambda _path, _timeout: lambda _conn, _record: None
    elif args.line == "strict":
        sqlite_turns.MAX_OVERTAKES = 0
    if args.overtakes is not None:
        sqlite_turns.MAX_OVERTAKES = args.overtakes
    if args.max_wait_ms is not None:
        sqlite_turns.MAX_WAIT = args.max_wait_ms / 1000
    print(f"line {args.line}: overtakes {sqlite_turns.MAX_OVERTAKES}, "
          f"max wait {sqlite_turns.MAX_WAIT * 1000:g} ms")  # fmt: skip
    run(args)


if __name__ == "__main__":
    main()
