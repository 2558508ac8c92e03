"""Where a pull's time goes: CPU and round trips per pull, printed, nothing asserted.

Run: ``.venv/bin/python -m tests.perf.pull_costs [--events 10000] [--profile DIR]
[--database NAME] [--redis URL]``

Production mode (PostgreSQL, Redis, the read model on), the calendar of
``tests/perf/bench_months.py`` (its generator, seeded through google-api-python-client),
one user, the tables analysed and the read model filled as there (its upkeep after
each pull is run but not measured). For a full sync (rows deleted first, as
bench_months does) and for incremental pulls of 10 changes it prints, per pull (median of the runs):
- wall time, this process's CPU (``time.process_time``), the PostgreSQL backends' CPU
  and the emulator's CPU (from ``/proc``: the three processes share the 2 cores);
- PostgreSQL round trips as psycopg sends them: statements (the pool's pre-ping
  included) and ``BEGIN``/``COMMIT``/``ROLLBACK``; the statements SQLAlchemy executes;
  Redis round trips (commands or pipelines sent); Google calls.
``--profile DIR`` writes cProfile stats of the pulls (``full.prof``, ``incremental.prof``);
``--parts N`` then times the cut of decision HD2 alone, and pulls as before decisions
HP1 and HP2, and as before IC1, against now, N times each way, interleaved;
``--ih-parts N`` pulls as before decisions IH1 and IH3 against now (``--upcoming``: the
10 changes move events into the next days, so that their reminders are planned).
The profiles count CPU time (``time.process_time``), not time waiting for answers.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import itertools
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import redis.connection
import sqlalchemy as sa

from calsync.bootstrap import Services, bootstrap
from calsync.collector_pause import collector_paused
from calsync.config import Settings
from calsync.emulator.testing import EmulatorControl, build_calendar_service
from calsync.events import read_model
from calsync.store import credentials, pull_leases
from calsync.store.migrate import upgrade
from calsync.store.tables import Calendar, Event
from calsync.sync.pull import pull_calendar
from tests.perf import before_ih
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_months import analyse, caught_up, generate, patch_ten, seed_through_google
from tests.perf.bench_peer import Side, connect
from tests.perf.bench_sync import environment

_TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) process `pid` used so far; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


@dataclasses.dataclass
class Counts:
    statements: int = 0
    round_trips: int = 0
    redis: int = 0


def count_sends(counts: Counts) -> None:
    """Count what psycopg and redis-py send from now on in `counts` (this process only).

    psycopg sends ``BEGIN``/``COMMIT``/``ROLLBACK`` through a private method
    (`Connection._exec_command`, psycopg 3.3): a benchmark may lean on it."""
    execute = psycopg.Cursor.execute
    command = psycopg.Connection._exec_command
    send = redis.connection.AbstractConnection.send_packed_command

    def counted_execute(cursor: Any, *args: Any, **kwargs: Any) -> Any:
        counts.round_trips += 1
        return execute(cursor, *args, **kwargs)

    def counted_command(connection: Any, *args: Any, **kwargs: Any) -> Any:
        counts.round_trips += 1
        return command(connection, *args, **kwargs)

    def counted_send(connection: Any, packed: Any, check_health: bool = True) -> None:
        counts.redis += 1
        send(connection, packed, check_health)  # type: ignore[no-untyped-call]

    setattr(psycopg.Cursor, "execute", counted_execute)  # noqa: B010 - untyped on purpose
    setattr(psycopg.Connection, "_exec_command", counted_command)  # noqa: B010
    setattr(redis.connection.AbstractConnection, "send_packed_command", counted_send)  # noqa: B010


class Meter:
    """Counts PostgreSQL statements and transactions of `services.engine` and the Redis
    round trips of this process, and the CPU of this process, the database's backends
    and the emulator around each measured call."""

    def __init__(self, services: Services, emulator_pid: int, database: str) -> None:
        self.counts = Counts()
        self.services, self.emulator_pid, self.database = services, emulator_pid, database
        self.rows: list[dict[str, float]] = []
        sa.event.listen(services.engine, "before_cursor_execute", self._statement)
        count_sends(self.counts)

    def _statement(self, *_: object) -> None:
        self.counts.statements += 1

    def _backends(self) -> list[int]:
        """The PostgreSQL server processes of the benchmark's database (their psycopg
        sends are not counted: another engine)."""
        admin = sa.create_engine(
            str(self.services.engine.url).rsplit("/", 1)[0] + "/postgres", poolclass=sa.NullPool
        )
        with admin.connect() as connection:
            pids = connection.scalars(
                sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :d"),
                {"d": self.database},
            ).all()
        admin.dispose()
        return list(pids)

    @contextmanager
    def measure(self, profile: cProfile.Profile | None) -> Iterator[None]:
        backends = self._backends()
        before = dataclasses.replace(self.counts)
        pg = sum(proc_cpu(p) for p in backends)
        emu = proc_cpu(self.emulator_pid)
        wall, cpu = time.perf_counter(), time.process_time()
        if profile is not None:
            profile.enable()
        yield
        if profile is not None:
            profile.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        self.rows.append(
            {
                "wall": wall,
                "cpu": cpu,
                "pg_cpu": sum(proc_cpu(p) for p in backends) - pg,
                "emulator_cpu": proc_cpu(self.emulator_pid) - emu,
                "statements": self.counts.statements - before.statements,
                "round_trips": self.counts.round_trips - before.round_trips,
                "redis": self.counts.redis - before.redis,
            }
        )

    def report(self, name: str, api_calls: list[int]) -> None:
        def med(key: str) -> float:
            return statistics.median(r[key] for r in self.rows)

        print(
            f"{name} (median of {len(self.rows)}): wall {med('wall') * 1000:.1f} ms; CPU: "
            f"calsync {med('cpu') * 1000:.1f} ms, PostgreSQL {med('pg_cpu') * 1000:.0f} ms, "
            f"emulator {med('emulator_cpu') * 1000:.0f} ms (clock tick "
            f"{1000 / _TICK:.0f} ms); PostgreSQL {med('round_trips'):.0f} round trips "
            f"({med('statements'):.0f} statements of SQLAlchemy); Redis {med('redis'):.0f} "
            "round trips; "
            f"Google {statistics.median(api_calls):.0f} calls",
            flush=True,
        )
        self.rows.clear()


def full_syncs(
    services: Services, calendar_id: Any, runs: int, meter: Meter, profile: Any
) -> list[int]:
    calls = []
    for _ in range(runs):
        with services.sessions.begin() as session:
            session.execute(sa.delete(Event).where(Event.calendar_id == calendar_id))
            session.execute(
                sa.update(Calendar).where(Calendar.id == calendar_id).values(sync_token=None)
            )
        with meter.measure(profile), collector_paused():
            outcome = pull_calendar(services, calendar_id)
        assert outcome.full, outcome
        assert outcome.report is not None, outcome
        calls.append(outcome.api_calls)
        caught_up(services)
    return calls


def incrementals(
    services: Services,
    calendar_id: Any,
    change: Callable[[int], None],
    runs: int,
    meter: Meter,
    profile: Any,
) -> list[int]:
    calls = []
    for run in range(runs):
        change(run)
        with meter.measure(profile), collector_paused():
            outcome = pull_calendar(services, calendar_id)
        assert outcome.report is not None, outcome
        assert outcome.report.updated == 10, outcome.report
        calls.append(outcome.api_calls)
        caught_up(services)  # the read model's upkeep after it, as in bench_months
    return calls


def alternating(runs: int, ways: dict[str, Callable[[], object]]) -> None:
    """Each of `ways` `runs` times, interleaved (so that the host's load falls on all
    alike): median wall and CPU per call."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    for _ in range(runs):
        for name, way in ways.items():
            wall, cpu = time.perf_counter(), time.process_time()
            way()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    for name, measured in times.items():
        wall = statistics.median(w for w, _ in measured) * 1000
        cpu = statistics.mean(c for _, c in measured) * 1000
        print(f"  {name}: wall p50 {wall:.3f} ms, CPU mean {cpu:.3f} ms", flush=True)


def parts(
    services: Services,
    user_id: Any,
    calendar_id: Any,
    change: Callable[[int], None],
    runs: int,
) -> None:
    """The cut of decision HD2 (the token's read) alone, and pulls as before decisions
    HP1 and HP2, with HP1 only, and now, each way interleaved."""
    box = services.secrets

    def in_session() -> object:
        with services.sessions() as session:
            return credentials.load_credentials(session, box, user_id)

    print(f"the access token's read, {runs} times each way:", flush=True)
    alternating(
        runs,
        {
            "in a session (before HD2)": in_session,
            "one statement, no transaction (HD2)": lambda: credentials.read_credentials(
                services.engine, box, user_id
            ),
        },
    )

    print(f"incremental pulls of 10 changes, {runs} times each way, interleaved:", flush=True)
    ways: dict[str, Callable[[], Any]] = {
        "as before HP1 and HP2 (a ping per checkout, the lease synchronous, SET LOCAL)": (
            lambda: as_before_hp(services.engine)
        ),
        "the lease's commit waits for the flush (HP1 only)": lease_waits,
        "as before IC1 (the notices read the users)": as_before_ic1,
        "now (HP1, HP2, IC1)": contextlib.nullcontext,
    }
    interleaved(services, calendar_id, change, runs, ways)


def ih_parts(
    services: Services, calendar_id: Any, change: Callable[[int], None], runs: int
) -> None:
    """Pulls as before decisions IH1 and IH3, as before IH1 alone, and now, each way
    interleaved (IH3 is the difference between the first two)."""
    print(f"incremental pulls of 10 changes, {runs} times each way, interleaved:", flush=True)
    ways: dict[str, Callable[[], Any]] = {
        "as before IH1 and IH3 (the preferences read apart)": before_ih.preferences_before_ih3,
        "the reminders' read as before IH1 (upcoming twice)": before_ih.replanning_before_ih1,
        "now": contextlib.nullcontext,
    }
    interleaved(services, calendar_id, change, runs, ways)


def interleaved(
    services: Services,
    calendar_id: Any,
    change: Callable[[int], None],
    runs: int,
    ways: dict[str, Callable[[], Any]],
) -> None:
    """Incremental pulls of 10 changes, `runs` times each of `ways` (context managers
    around the pull), taking turns: p50, p90 and mean CPU per way."""
    walls: dict[str, list[float]] = {name: [] for name in ways}
    cpus: dict[str, list[float]] = {name: [] for name in ways}
    changed = itertools.count(100)  # after the incremental runs; single events "s001000" on
    for _ in range(runs):
        for name, way in ways.items():
            change(next(changed))
            with way(), collector_paused():
                started, cpu = time.perf_counter(), time.process_time()
                pull_calendar(services, calendar_id)
                walls[name].append(time.perf_counter() - started)
                cpus[name].append(time.process_time() - cpu)
    for name, timings in walls.items():
        print(
            f"  {name}: p50 {statistics.median(timings) * 1000:.1f} ms, "
            f"p90 {sorted(timings)[int(0.9 * len(timings))] * 1000:.1f} ms, "
            f"CPU mean {statistics.mean(cpus[name]) * 1000:.2f} ms",
            flush=True,
        )


@contextmanager
def lease_waits() -> Iterator[None]:
    """The lease's statement as before decision HP2: its commit waits for the flush."""
    no_wait = pull_leases._START_PULL_NO_WAIT
    pull_leases._START_PULL_NO_WAIT = pull_leases._START_PULL  # type: ignore[misc]
    try:
        yield
    finally:
        pull_leases._START_PULL_NO_WAIT = no_wait  # type: ignore[misc]


@contextmanager
def as_before_ic1() -> Iterator[None]:
    """A pull as before decision IC1: the statement that ends it as it was (no join of
    the owner's row), so the notices know no owner's email and read the users."""
    finish = pull_leases._FINISH_NO_WAIT
    before = pull_leases.without_flush_wait(pull_leases._FINISH).returning(
        sa.null().label("owner_email")
    )
    pull_leases._FINISH_NO_WAIT = before  # type: ignore[misc]
    try:
        yield
    finally:
        pull_leases._FINISH_NO_WAIT = finish  # type: ignore[misc]


@contextmanager
def as_before_hp(engine: sa.Engine) -> Iterator[None]:
    """A pull as before decisions HP1 and HP2: a ping at every checkout (SQLAlchemy's
    ``pool_pre_ping``), the lease's commit waiting for the flush, and the storing
    transaction's mode set by a ``SET LOCAL`` statement of its own (HD1); and as before
    IC1."""
    finish, finish_no_wait = pull_leases.finish_pull, pull_leases._FINISH_NO_WAIT

    def ping(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        engine.dialect.do_ping(dbapi_connection)

    def finish_as_before(session: Any, *args: Any, **kwargs: Any) -> Any:
        session.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
        return finish(session, *args, **kwargs)

    sa.event.listen(engine.pool, "checkout", ping)
    # (with no owner's email, as before decision IC1: the notices read the users)
    pull_leases._FINISH_NO_WAIT = pull_leases._FINISH.returning(  # type: ignore[misc]
        sa.null().label("owner_email")
    )
    pull_leases.finish_pull = finish_as_before  # type: ignore[assignment]
    try:
        with lease_waits():
            yield
    finally:
        sa.event.remove(engine.pool, "checkout", ping)
        pull_leases._FINISH_NO_WAIT = finish_no_wait  # type: ignore[misc]
        pull_leases.finish_pull = finish


def move_ten(google: Any, email: str, run: int) -> None:
    """Ten single events of the generated calendar (``s<run>0``-``s<run>9``) retitled and
    moved into the next days, as `patch_ten` retitles them: changes whose reminders are
    planned (the default preferences: 10 minutes before)."""
    tomorrow = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    for n in range(10):
        start = tomorrow + timedelta(hours=n, minutes=run % 60)
        google.events().patch(
            calendarId=email,
            eventId=f"s{run * 10 + n:06d}",
            body={
                "summary": f"moved {run}",
                "start": {"dateTime": start.isoformat()},
                "end": {"dateTime": (start + timedelta(minutes=30)).isoformat()},
            },
        ).execute()


def seeded_and_filled(services: Services, base: str, email: str, seed: int, events: int) -> Side:
    """A new user `email` whose calendar is `bench_months`' generated one (`seed`,
    `events`), seeded through the emulator at `base` and pulled in full (not measured);
    then, as bench_months does, statistics, the read model filled and caught up (so
    pulls record), statistics again. The schema is migrated first."""
    upgrade(services.engine)
    with EmulatorControl(base) as control:
        side = connect(services, control, email)
    seed_through_google(base, side.token, side.email, generate(seed, events))
    pull_calendar(services, side.calendar_id)
    analyse(services)
    read_model.fill(services.sessions, datetime.now(UTC))
    caught_up(services)
    analyse(services)
    return side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--incremental-runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--database", default="calsync_pull_costs")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/4")
    parser.add_argument("--profile", type=Path)
    parser.add_argument(
        "--parts",
        type=int,
        default=0,
        help="time HD2 alone, and pulls before HP1-HP2, before IC1 and now, N times each",
    )
    parser.add_argument(
        "--ih-parts", type=int, default=0, help="pulls before IH1 and IH3 and now, N times each"
    )
    parser.add_argument(
        "--upcoming",
        action="store_true",
        help="--ih-parts: the 10 changes move their events into the next days (reminders due)",
    )
    args = parser.parse_args()
    emulator_port, api_port = free_port(), free_port()
    emulator = start_emulator(emulator_port)
    base = f"http://127.0.0.1:{emulator_port}"
    env = environment(base, api_port, args.database, args.redis) | {"CALSYNC_READ_MODEL": "true"}
    settings = dataclasses.replace(Settings.from_env(env), sync_min_interval_seconds=0.0)
    services = bootstrap(settings)
    profiles = (
        (cProfile.Profile(time.process_time), cProfile.Profile(time.process_time))
        if args.profile
        else (None, None)
    )
    try:
        side = seeded_and_filled(services, base, "costs@example.com", args.seed, args.events)
        meter = Meter(services, emulator.pid, args.database)
        calls = full_syncs(services, side.calendar_id, args.runs, meter, profiles[0])
        meter.report(f"full sync of {args.events:,} events", calls)
        pull_calendar(services, side.calendar_id)
        google = build_calendar_service(base, side.token)
        calls = incrementals(
            services,
            side.calendar_id,
            lambda run: patch_ten(google, side.email, run),
            args.incremental_runs,
            meter,
            profiles[1],
        )
        meter.report("incremental pull of 10 changes", calls)
        if args.parts:
            parts(
                services,
                side.user_id,
                side.calendar_id,
                lambda run: patch_ten(google, side.email, run),
                args.parts,
            )
        if args.ih_parts:
            ih_parts(
                services,
                side.calendar_id,
                lambda run: (move_ten if args.upcoming else patch_ten)(google, side.email, run),
                args.ih_parts,
            )
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            for name, profile in zip(("full", "incremental"), profiles, strict=True):
                assert profile is not None
                profile.dump_stats(args.profile / f"{name}.prof")
    finally:
        services.close()
        emulator.terminate()
        emulator.wait(10)


if __name__ == "__main__":
    main()
