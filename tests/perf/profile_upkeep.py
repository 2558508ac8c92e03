"""The read model's upkeep for one realistic calendar: CPU time and a profile. Prints
figures only.

Run: ``.venv/bin/python -m tests.perf.profile_upkeep --seed-data`` once (seeds one user's
10,000-event calendar as `tests.perf.bench_months` does, through the emulator, into the
scratch database ``upkeep_profile`` (``--database``), and fills the read model, with
``ANALYZE`` after the pull and after the fill as autovacuum makes it in production:
``--no-analyze`` to leave it out, ``--schema 0017`` for an older schema), then
``.venv/bin/python -m tests.perf.profile_upkeep [--profile out.prof]`` as often as wanted:

- *all owners*: a change recorded for every owner of the user (what a full sync's
  upkeep re-expands: every single and series master), then `upkeep.catch_up`;
- *10 series*: a change recorded for 10 series masters (an incremental pull of 10
  changes, as the benchmark patches them), then `upkeep.catch_up`;

each ``--rounds`` times, printing this process's CPU (`time.process_time`: the machine is
shared) and wall time, the rows written and the load average.
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import sqlalchemy as sa
from cryptography.fernet import Fernet

from calsync.bootstrap import Services, bootstrap
from calsync.config import Settings
from calsync.emulator.testing import EmulatorControl
from calsync.events import read_model
from calsync.events.upkeep import CatchUp, catch_up
from calsync.store.tables import Event, event_instances, instance_dirty
from calsync.sync.pull import pull_calendar
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_months import analyse, generate, seed_through_google
from tests.perf.bench_peer import connect
from tests.perf.bench_sync import fresh_database
from tests.perf.profile_page import _environment

_TWO_STEPS: Final = "far" in inspect.signature(catch_up).parameters

STATE = Path(tempfile.gettempdir()) / "calsync_profile_upkeep.json"


def seed_data(
    seed: int, events: int, redis: str, database: str, *, analyze: bool, schema: str
) -> None:
    state = {"redis": redis, "jwt": uuid.uuid4().hex * 2, "fernet": Fernet.generate_key().decode()}
    port = free_port()
    emulator = start_emulator(port)
    base = f"http://127.0.0.1:{port}"
    url = fresh_database(database)
    services = bootstrap(Settings.from_env(_environment(base, url, state)))
    try:
        from calsync.store.migrate import upgrade

        upgrade(services.engine, schema)
        with EmulatorControl(base) as control:
            side = connect(services, control, "upkeep0@example.com")
            seed_through_google(base, side.token, side.email, generate(seed, events))
        pull_calendar(services, side.calendar_id)
        analyse(services, analyze)
        read_model.fill(services.sessions, datetime.now(UTC))
        catch_up(services.sessions, run_for=3600.0)
        analyse(services, analyze)
        state |= {"url": url, "user": str(side.user_id), "email": side.email}
        STATE.write_text(json.dumps(state))
    finally:
        services.close()
        emulator.terminate()
        emulator.wait(10)


def record(services: Services, user_id: uuid.UUID, *, series: int | None) -> int:
    """Record a change of every owner of the user (or of `series` masters); how many."""
    e = Event
    live = sa.select(e.user_id, e.id, e.calendar_id, sa.null()).where(
        e.user_id == user_id,
        e.deleted_at.is_(None),
        sa.or_(e.recurring_event_id.is_(None), e.is_recurring.is_(True)),
    )
    if series is not None:
        live = live.where(e.is_recurring.is_(True)).order_by(e.id).limit(series)
    columns = ["user_id", "event_id", "calendar_id", "series_ref"]
    with services.sessions.begin() as session:
        session.execute(sa.insert(instance_dirty).from_select(columns, live))
        return int(session.scalar(sa.select(sa.func.count()).select_from(instance_dirty)) or 0)


def replace_all(services: Services, user_id: uuid.UUID) -> int:
    """What a full sync leaves for the upkeep (as `tests.perf.bench_months` runs one: the
    rows deleted, then stored again under new ids), without the emulator: the user's
    events copied under new ids, the old ones deleted, in one transaction (PostgreSQL);
    the records it left."""
    with services.sessions.begin() as session:
        session.execute(
            sa.text(
                "CREATE TEMP TABLE nu_copy ON COMMIT DROP AS "
                "SELECT * FROM events WHERE user_id = :u"
            ),
            {"u": user_id},
        )
        session.execute(sa.delete(Event).where(Event.user_id == user_id))
        session.execute(sa.text("UPDATE nu_copy SET id = gen_random_uuid()"))
        session.execute(sa.text("INSERT INTO events SELECT * FROM nu_copy"))
        return int(session.scalar(sa.select(sa.func.count()).select_from(instance_dirty)) or 0)


def _timed(run: Callable[[], CatchUp], profiler: cProfile.Profile | None) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    done = profiler.runcall(run) if profiler is not None else run()
    assert not done.more, done
    assert not done.failed, done
    return time.process_time() - cpu, time.perf_counter() - wall


def rounds(
    label: str,
    services: Services,
    user_id: uuid.UUID,
    series: int | None,
    count: int,
    profiler: cProfile.Profile | None,
) -> None:
    """`count` times: record the changes, then time the upkeep's two steps (decision
    HC2): the near part (the user's near windows read from the model after it), then the
    rest (every window after it)."""
    near: list[tuple[float, float]] = []
    rest: list[tuple[float, float]] = []
    for _ in range(count):
        if series == 0:
            recorded = replace_all(services, user_id)
        else:
            recorded = record(services, user_id, series=series)
        if _TWO_STEPS:
            first = lambda: catch_up(services.sessions, run_for=3600.0, far=False)  # noqa: E731
        else:  # the code before decision HC2 (run from an older checkout): one step
            first = lambda: catch_up(services.sessions, run_for=3600.0)  # noqa: E731
        near.append(_timed(first, profiler))
        rest.append(_timed(lambda: catch_up(services.sessions, run_for=3600.0), profiler))
    with services.sessions() as session:
        rows = session.scalar(sa.select(sa.func.count()).select_from(event_instances))

    def show(step: str, found: list[tuple[float, float]]) -> str:
        cpus = [c * 1000 for c, _ in found]
        walls = [w * 1000 for _, w in found]
        return (
            f"  {step}: CPU median {statistics.median(cpus):,.1f} ms (all: "
            f"{', '.join(f'{c:,.0f}' for c in cpus)}), wall median "
            f"{statistics.median(walls):,.1f} ms"
        )

    print(f"{label}: {recorded} records; {rows:,} rows in event_instances after", flush=True)
    print(show("upkeep, near part", near), flush=True)
    print(show("upkeep, the rest", rest), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed-data", action="store_true")
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/10")
    parser.add_argument("--database", default="upkeep_profile")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["all", "ten", "full"], default=None)
    parser.add_argument("--profile", help="write a cProfile of the runs to this file")
    parser.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="with --seed-data: no ANALYZE after the pull and the fill (autovacuum's)",
    )
    parser.add_argument("--schema", default="head", help="with --seed-data: this revision")
    args = parser.parse_args()
    if args.seed_data:
        seed_data(
            args.seed,
            args.events,
            args.redis,
            args.database,
            analyze=args.analyze,
            schema=args.schema,
        )
        return
    state = json.loads(STATE.read_text())
    settings = Settings.from_env(_environment("http://127.0.0.1:9", state["url"], state))
    services = bootstrap(settings)
    profiler = cProfile.Profile() if args.profile else None
    user = uuid.UUID(state["user"])
    try:
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        if args.only in (None, "all"):
            rounds("all owners (a full sync's)", services, user, None, args.rounds, profiler)
        if args.only in (None, "ten"):
            rounds("10 series (a pull of 10)", services, user, 10, args.rounds * 3, profiler)
        if args.only == "full":
            rounds("a full sync's (rows stored anew)", services, user, 0, args.rounds, profiler)
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    finally:
        services.close()
    if profiler is not None:
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
