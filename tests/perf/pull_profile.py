"""Where an incremental pull's OWN Python goes, by package: a deterministic profile of
the pulling thread, printed, nothing asserted (issue 19, decision IU1).

Run: ``.venv/bin/python -m tests.perf.pull_profile [--events 10000] [--pulls 40]
[--database NAME] [--redis URL] [--dump FILE] [--top N]``

The set-up is `tests/perf/pull_costs.py`'s (production mode, PostgreSQL, Redis, the read
model on, bench_months' calendar, one user); the pulls are its incremental ones of 10
changes (`patch_ten`; the read model's upkeep runs after each, not measured), each with
the collector paused as the worker runs it. First `--pulls` pulls unprofiled (wall p50
and the thread's CPU, the reference), then `--pulls` more under cProfile with the
thread's CPU clock (``time.thread_time``) as its timer, so that waits for PostgreSQL,
Redis and the emulator do not count: what is left is the thread's own work. cProfile's
own cost inflates functions called often (the profiled CPU a pull is printed beside the
unprofiled one to show by how much); the split is a proportion, not a wall clock.

Printed, in ms a pull (mean):
- *own*: the time spent in each group's functions themselves; a C function's (a
  builtin's) own time goes to the group of the Python function that called it, except
  for the drivers' compiled parts (psycopg's, SQLAlchemy's Cython), which are theirs;
- *cumulative*: the time of the group's functions called from outside the group,
  everything they call included (a group entered twice on one stack, A -> B -> A, is
  counted twice: the cumulative figures do not add up);
- the functions with the most own time.

``--ab N``: instead, pulls as before decisions IU2-IU4 and now, taking turns, N pulls a
way a round, three rounds: the thread's CPU a pull (mean) and of the parts they change.

``--parts N``: instead, N pulls unprofiled with the thread's CPU of each step of the pull
taken around it (`PARTS`: a few dozen clock reads a pull, no profiler), nested as the
steps nest, in ms a pull: the steps' true cost, which cProfile's inflation hides.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import importlib
import itertools
import pstats
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC
from typing import Any

from calsync.bootstrap import bootstrap
from calsync.collector_pause import collector_paused
from calsync.config import Settings
from calsync.emulator.testing import build_calendar_service
from calsync.store import event_bulk_writes, listed_events
from calsync.sync.pull import pull_calendar
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_months import caught_up, patch_ten
from tests.perf.bench_sync import environment
from tests.perf.pull_costs import seeded_and_filled

#: (a part of a file's path, its group), the first that matches wins.
_GROUPS: tuple[tuple[str, str], ...] = (
    ("/sqlalchemy/sql/compiler.py", "sqlalchemy: statement compile"),
    ("/sqlalchemy/sql/cache_key.py", "sqlalchemy: cache key"),
    ("/sqlalchemy/sql/traversals.py", "sqlalchemy: cache key"),
    ("/sqlalchemy/sql/", "sqlalchemy: sql expressions (build, coerce, bind)"),
    ("/sqlalchemy/orm/", "sqlalchemy: ORM (session, query, loading)"),
    ("/sqlalchemy/engine/result.py", "sqlalchemy: result processing"),
    ("/sqlalchemy/engine/cursor.py", "sqlalchemy: result processing"),
    ("/sqlalchemy/engine/row.py", "sqlalchemy: result processing"),
    ("/sqlalchemy/cyextension/", "sqlalchemy: result processing"),
    ("/sqlalchemy/engine/", "sqlalchemy: engine (execute, connection)"),
    ("/sqlalchemy/pool/", "sqlalchemy: pool"),
    ("/sqlalchemy/dialects/", "sqlalchemy: dialect (psycopg)"),
    ("/sqlalchemy/", "sqlalchemy: other"),
    ("/psycopg", "psycopg"),
    ("/googleapiclient/discovery.py", "googleapiclient: request build"),
    ("/googleapiclient/http.py", "googleapiclient: execute"),
    ("/googleapiclient/model.py", "googleapiclient: model"),
    ("/googleapiclient/", "googleapiclient: other"),
    ("/uritemplate/", "uritemplate"),
    ("/httplib2/", "httplib2"),
    ("/google/auth/", "google-auth"),
    ("/redis/", "redis"),
    ("/dramatiq/", "dramatiq"),
    ("/http/client.py", "stdlib: http.client"),
    ("/email/", "stdlib: email (http headers)"),
    ("/socket.py", "stdlib: socket"),
    ("/logging/", "stdlib: logging"),
    ("/json/", "stdlib: json"),
    ("/urllib/", "stdlib: urllib"),
    ("/prometheus_client/", "prometheus_client"),
)

#: Compiled code of the drivers shows as a builtin named after its module.
_COMPILED: tuple[tuple[str, str], ...] = (
    ("psycopg", "psycopg"),
    ("sqlalchemy", "sqlalchemy: result processing"),
    ("orjson", "orjson"),
)


def group_of(filename: str, name: str) -> str | None:
    """The group of a function (its file and name); None for a builtin of no group."""
    if filename == "~":
        for part, group in _COMPILED:
            if part in name:
                return group
        return None
    for part, group in _GROUPS:
        if part in filename:
            return group
    if "/calsync/" in filename:
        module = filename.rsplit("/calsync/", 1)[1].removesuffix(".py").replace("/", ".")
        return "calsync." + module.removesuffix(".__init__")
    if "/tests/" in filename:
        return "tests (the script)"
    if "site-packages" in filename:
        return "other package: " + filename.split("site-packages/", 1)[1].split("/", 1)[0]
    return "stdlib: other"


@dataclasses.dataclass
class Split:
    own: dict[str, float] = dataclasses.field(default_factory=lambda: defaultdict(float))
    cumulative: dict[str, float] = dataclasses.field(default_factory=lambda: defaultdict(float))
    functions: list[tuple[float, int, str]] = dataclasses.field(default_factory=list)
    total: float = 0.0


def split(stats: pstats.Stats) -> Split:
    """Own and cumulative seconds by group (see the module's docstring)."""
    found = Split()
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, line, name), (_cc, calls, own, _ct, callers) in table.items():
        group = group_of(filename, name)
        found.functions.append((own, calls, f"{filename.rsplit('/', 2)[-1]}:{line}({name})"))
        found.total += own
        for (caller_file, _line, caller_name), edge in callers.items():
            caller = group_of(caller_file, caller_name)
            mine = group if group is not None else caller
            if mine is None:
                mine = "stdlib: other"
            found.own[mine] += edge[2]
            if group is not None and caller != group:
                found.cumulative[group] += edge[3]
        if not callers:
            found.own[group or "stdlib: other"] += own
    return found


def report(found: Split, pulls: int, top: int) -> None:
    print(f"profiled thread CPU a pull (sum of own times): {found.total / pulls * 1000:.2f} ms")
    print(f"  {'group':58s} {'own ms':>7s} {'own %':>6s} {'cum ms':>7s}")
    for group, seconds in sorted(found.own.items(), key=lambda item: -item[1]):
        print(
            f"  {group:58s} {seconds / pulls * 1000:7.3f} {seconds / found.total * 100:5.1f}%"
            f" {found.cumulative.get(group, 0.0) / pulls * 1000:7.3f}"
        )
    print(f"the {top} functions with the most own time (ms a pull, calls a pull):")
    for own, calls, where in sorted(found.functions, reverse=True)[:top]:
        print(f"  {own / pulls * 1000:6.3f} {calls / pulls:7.1f}  {where}")


#: (depth, module or class path, attribute): the steps `--parts` times, patched where
#: the pull calls them from; nested steps follow their parent.
PARTS: tuple[tuple[int, str, str], ...] = (
    (0, "calsync.store.pull_leases", "start_pull"),
    (0, "calsync.sync.pending_pulls", "pull_starting"),
    (0, "calsync.sync.pull", "_list_everything_changed"),
    (1, "calsync.providers.google.calls:GoogleCalls", "_current_token"),
    (1, "calsync.providers.quota:QuotaLimiter", "acquire"),
    (1, "calsync.providers.google.calls:GoogleCalls", "_send"),
    (2, "googleapiclient.http:HttpRequest", "execute"),
    (3, "httplib2:Http", "request"),
    (4, "httplib2", "iri2uri"),
    (3, "calsync.providers.google.api:OrjsonModel", "deserialize"),
    (1, "calsync.providers.google.event_listing", "mapped_events"),
    (0, "calsync.sync.pull", "_store"),
    (1, "calsync.store.pull_leases", "finish_pull"),
    (1, "calsync.sync.pull", "apply_changes"),
    (2, "calsync.sync.reconcile", "_existing_rows"),
    (2, "calsync.sync.reconcile", "plan"),
    (2, "calsync.sync.reconcile", "take_attendees"),
    (2, "calsync.sync.reconcile", "_steps_applied"),
    (2, "calsync.sync.reconcile", "events_changed"),
    (2, "calsync.sync.reconcile", "_write"),
    (2, "calsync.sync.reconcile", "insert_attendees"),
    (2, "calsync.sync.reconcile", "reminder_candidates"),
    (2, "calsync.sync.reconcile", "reschedule_many"),
    (1, "calsync.sync.pull", "_record_run"),
    (1, "sqlalchemy.orm.session:SessionTransaction", "commit"),
    # across the pull (these nest in the steps above and in each other)
    (0, "sqlalchemy.orm:Session", "execute"),
    (0, "sqlalchemy.engine:Connection", "execute"),
    (0, "psycopg:Cursor", "execute"),
    (0, "psycopg:Cursor", "fetchall"),
    (0, "psycopg:Cursor", "fetchone"),
    (0, "redis.connection:AbstractConnection", "send_packed_command"),
    (0, "redis.connection:AbstractConnection", "read_response"),
)


@contextlib.contextmanager
def parts_timed(spent: dict[str, float]) -> Iterator[None]:
    """Each of `PARTS` wrapped: the thread's CPU inside it added to `spent`."""
    with _parts_of(PARTS, spent):
        yield


@contextlib.contextmanager
def _parts_of(parts: Iterable[tuple[int, str, str]], spent: dict[str, float]) -> Iterator[None]:
    originals = []
    for _depth, where, name in parts:
        module, _, cls = where.partition(":")
        owner: Any = importlib.import_module(module)
        if cls:
            owner = getattr(owner, cls)
        original = getattr(owner, name)
        originals.append((owner, name, original))
        setattr(owner, name, _timed(f"{where}.{name}", original, spent))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def _timed(key: str, original: Any, spent: dict[str, float]) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        if not spent["on"]:
            return original(*args, **kwargs)
        started = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent[key] += time.thread_time() - started
            spent[key + "#"] += 1

    return timed


def parts(services: Any, google: Any, side: Any, pulls: int, changed: Any) -> None:
    """`pulls` pulls with `PARTS` timed: the thread's CPU of each, ms a pull (mean)."""
    spent: dict[str, float] = defaultdict(float)
    total = 0.0
    with parts_timed(spent):
        for _ in range(pulls):
            patch_ten(google, side.email, next(changed))
            with collector_paused():
                spent["on"] = 1.0
                cpu = time.thread_time()
                outcome = pull_calendar(services, side.calendar_id)
                total += time.thread_time() - cpu
                spent["on"] = 0.0
            assert outcome.report is not None, outcome
            assert outcome.report.updated == 10, outcome
            caught_up(services)
    print(f"parts: {pulls} pulls, the thread's CPU a pull {total / pulls * 1000:.2f} ms")
    for depth, where, name in PARTS:
        if (where, name) == ("sqlalchemy.orm:Session", "execute"):
            print("  across the pull:")
        seconds = spent[f"{where}.{name}"]
        print(
            f"  {'  ' * depth}{where.rsplit('.', 1)[-1]}.{name}: {seconds / pulls * 1000:.3f}"
            f" (x{spent[f'{where}.{name}#'] / pulls:.1f})"
        )


def _utc_as_before(row: Any) -> Any:
    """`event_bulk_writes._utc` as before IU2."""
    moved = {
        name: value.astimezone(UTC)
        for name, value in row._asdict().items()
        if name in event_bulk_writes._INSTANTS and value is not None
    }
    return row._replace(**moved) if moved else row


def _rows_as_before(session: Any, calendar_id: Any, google_ids: Any) -> dict[str, Any]:
    """`listed_events.rows_by_google_ids` as before IU4 (PostgreSQL): `Session.execute`."""
    found: dict[str, Any] = {}
    if google_ids:
        parameters = {"calendar_id": calendar_id, "google_ids": list(google_ids)}
        for row in session.execute(listed_events._PG_ROWS_BY_GOOGLE_ID, parameters):
            found[row.google_event_id] = row
    return found


#: (owner, name, as before IU2 and IU4): what `--ab` swaps for its "as before" pulls
#: (IU3, httplib2's `iri2uri` replaced, was not merged).
AS_BEFORE: tuple[tuple[Any, str, Any], ...] = (
    (event_bulk_writes, "_update_text", event_bulk_writes._text_of),
    (event_bulk_writes, "_utc", _utc_as_before),
    (listed_events, "rows_by_google_ids", _rows_as_before),
)

#: The parts `--ab` prints beside the whole pull.
_AB_PARTS: tuple[tuple[str, str], ...] = (
    ("calsync.sync.reconcile", "_write"),
    ("calsync.sync.reconcile", "_existing_rows"),
    ("httplib2:Http", "request"),
)


def as_before_and_now(services: Any, google: Any, side: Any, pulls: int, changed: Any) -> None:
    """Pulls as before IU2-IU4 (`AS_BEFORE`) and now, taking turns, three rounds."""
    now = [(owner, name, getattr(owner, name)) for owner, name, _ in AS_BEFORE]
    ways = {"as before IU2-IU4": [(o, n, f) for o, n, f in AS_BEFORE], "now": now}
    timed = [p for p in PARTS if (p[1], p[2]) in _AB_PARTS]
    try:
        for round_ in range(3):
            found = {name: defaultdict(float) for name in ways}
            for _ in range(pulls):
                for name, swaps in ways.items():
                    for owner, attr, value in swaps:
                        setattr(owner, attr, value)
                    spent = found[name]
                    with _parts_of(timed, spent):
                        patch_ten(google, side.email, next(changed))
                        with collector_paused():
                            spent["on"] = 1.0
                            cpu = time.thread_time()
                            outcome = pull_calendar(services, side.calendar_id)
                            spent["pull"] += time.thread_time() - cpu
                            spent["on"] = 0.0
                    assert outcome.report is not None, outcome
                    assert outcome.report.updated == 10, outcome
                    caught_up(services)
            print(f"  round {round_ + 1} ({pulls} pulls a way):", flush=True)
            for name, spent in found.items():
                shown = ", ".join(
                    f"{n} {spent[f'{w}.{n}'] / pulls * 1000:.3f}" for _d, w, n in timed
                )
                print(
                    f"    {name}: thread CPU a pull {spent['pull'] / pulls * 1000:.2f} ms"
                    f" ({shown})",
                    flush=True,
                )
    finally:
        for owner, attr, value in now:
            setattr(owner, attr, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--pulls", type=int, default=40)
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--database", default="iu_pull_profile")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--dump", help="also write the cProfile stats to this file")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--parts", type=int, default=0, help="time the steps of N pulls")
    parser.add_argument("--ab", type=int, default=0, help="N pulls as before IU2-IU4 and now")
    args = parser.parse_args()
    emulator_port, api_port = free_port(), free_port()
    emulator = start_emulator(emulator_port)
    base = f"http://127.0.0.1:{emulator_port}"
    env = environment(base, api_port, args.database, args.redis) | {"CALSYNC_READ_MODEL": "true"}
    settings = dataclasses.replace(Settings.from_env(env), sync_min_interval_seconds=0.0)
    services = bootstrap(settings)
    try:
        side = seeded_and_filled(services, base, "profile@example.com", args.seed, args.events)
        pull_calendar(services, side.calendar_id)
        google = build_calendar_service(base, side.token)
        changed = itertools.count(100)
        if args.parts:
            parts(services, google, side, args.parts, changed)
            return
        if args.ab:
            as_before_and_now(services, google, side, args.ab, changed)
            return
        profile = cProfile.Profile(time.thread_time)
        for profiled in (False, True):
            walls, cpus = [], []
            for _ in range(args.pulls):
                patch_ten(google, side.email, next(changed))
                with collector_paused():
                    started, cpu = time.perf_counter(), time.thread_time()
                    if profiled:
                        profile.enable()
                    outcome = pull_calendar(services, side.calendar_id)
                    if profiled:
                        profile.disable()
                    cpus.append(time.thread_time() - cpu)
                    walls.append(time.perf_counter() - started)
                assert outcome.report is not None, outcome
                assert outcome.report.updated == 10, outcome
                caught_up(services)
            print(
                f"{'profiled' if profiled else 'unprofiled'}: {args.pulls} pulls of 10 changes:"
                f" wall p50 {statistics.median(walls) * 1000:.2f} ms, thread CPU mean"
                f" {statistics.mean(cpus) * 1000:.2f} ms",
                flush=True,
            )
        if args.dump:
            profile.dump_stats(args.dump)
        report(split(pstats.Stats(profile)), args.pulls, args.top)
    finally:
        services.close()
        emulator.terminate()
        emulator.wait(10)


if __name__ == "__main__":
    main()
